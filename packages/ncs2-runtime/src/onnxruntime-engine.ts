/**
 * ONNX Runtime engines: the native onnxruntime-node (CPU execution provider), preferred where it installs, and
 * (in onnxruntime-web-engine.ts) the WebAssembly build of onnxruntime-web, which needs no install script and is
 * always present. Both run a bundle's `model.onnx` through the same engine class here and the same session code
 * (OrtModelSession, ort-native.ts).
 */
import type * as OnnxRuntime from 'onnxruntime-node';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError, firstLine } from './errors.js';
import { ONNXRUNTIME_ENGINE, ORT_NODE_REMEDY, OrtModelSession, OrtSessionFailure, nativeSessionOptions, ortNodeLoadFailure, ortNodeVersion } from './ort-native.js';
import type { OrtModule, OrtSession, OrtSessionOptions } from './ort-session.js';
import { readOnnxLayout } from './onnx-bundle.js';
import { ortThreadEntry } from './ort-prestart.js';
import { startOrtThread } from './ort-thread.js';
import { checkBatch } from './shape.js';

export { ONNXRUNTIME_ENGINE };

let ortModule: Promise<typeof OnnxRuntime> | undefined;

/** Loads onnxruntime-node once; a missing or broken native binding becomes an EngineUnavailableError. */
async function loadOrt(): Promise<typeof OnnxRuntime> {
  ortModule ??= import('onnxruntime-node');
  try {
    return await ortModule;
  } catch (error) {
    ortModule = undefined;
    throw new EngineUnavailableError(ONNXRUNTIME_ENGINE, ortNodeLoadFailure(error), ORT_NODE_REMEDY, { cause: error });
  }
}

/** What tells the two ONNX Runtime engines apart. */
export interface OrtFlavour {
  /** Registered engine name. */
  readonly name: string;
  /** Device as reported, e.g. `CPU`. */
  readonly device: string;
  /** Library and version, e.g. `onnxruntime-node 1.30.0`. */
  readonly version: string;
  /** Session options for one load (threads, execution provider). */
  sessionOptions(options: EngineOptions): OrtSessionOptions;
  /** Whether the runtime writes a profile this engine can read into per-layer timings. */
  readonly profiling: boolean;
}

/** An engine over one ONNX Runtime session; shared by the native and the WebAssembly engines. */
export class OrtSessionEngine implements InferenceEngine {
  readonly name: string;
  readonly device: string;
  readonly version: string;
  layout: ModelLayout | undefined;
  private session: OrtModelSession | undefined;

  constructor(
    private readonly ort: OrtModule,
    private readonly flavour: OrtFlavour,
    private readonly options: EngineOptions,
  ) {
    this.name = flavour.name;
    this.device = flavour.device;
    this.version = flavour.version;
  }

  async load(bundle: string): Promise<ModelLayout> {
    return this.loadLayout(await readOnnxLayout(bundle, { int8: this.options.int8 === true }));
  }

  /**
   * Loads the ONNX file of a layout already read from its bundle (what the engine's worker thread is sent).
   * @throws {EngineError} when the runtime cannot load it, or the model has not one input and one output.
   */
  async loadLayout(layout: ModelLayout): Promise<ModelLayout> {
    await this.session?.dispose();
    this.session = undefined;
    this.layout = undefined;
    const profile = this.options.perfCounters === true && this.flavour.profiling;
    this.session = await this.#engineErrors(() => OrtModelSession.open(this.ort, layout.file, this.flavour.sessionOptions(this.options), profile));
    this.layout = layout;
    return layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const shape = checkBatch(this.name, this.layout, input, batch);
    const session = this.session;
    if (session === undefined) throw new EngineError(this.name, 'the session was disposed');
    return this.#engineErrors(() => session.run(input, shape));
  }

  async perfCounters(): Promise<readonly LayerPerfCounter[] | undefined> {
    return this.session?.perfCounters();
  }

  async dispose(): Promise<void> {
    await this.session?.dispose();
    this.session = undefined;
    this.layout = undefined;
  }

  /** `work`, its session failures as this engine's EngineError. */
  async #engineErrors<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof OrtSessionFailure) throw new EngineError(this.name, error.reason, { cause: error });
      throw error;
    }
  }
}

/**
 * Checks the options an ONNX Runtime engine takes: the CPU device only and a positive thread count.
 * @throws {EngineError} naming `engine` and `library` otherwise.
 */
export function checkOrtOptions(engine: string, library: string, options: EngineOptions): void {
  const device = (options.device ?? 'CPU').toUpperCase();
  if (device !== 'CPU') {
    throw new EngineError(engine, `device '${options.device ?? ''}' is not supported; ${library} runs on CPU (use --engine openvino for GPU, NPU or AUTO)`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
    throw new EngineError(engine, `threads must be a positive integer, found ${options.threads}`);
  }
}

/** The native engine: onnxruntime-node's CPU execution provider with {@link nativeSessionOptions}, profiled on request. */
function nativeFlavour(ort: typeof OnnxRuntime): OrtFlavour {
  return { name: ONNXRUNTIME_ENGINE, device: 'CPU', version: ortNodeVersion(ort), profiling: true, sessionOptions: nativeSessionOptions };
}

/**
 * The native ONNX Runtime engine on the calling thread: what {@link onnxRuntimeFactory} creates with
 * `ownThread: false`, or from TypeScript sources. It runs the same session code (OrtModelSession) as the worker
 * thread of the default engine (ort-worker.ts).
 * @throws {EngineUnavailableError} when onnxruntime-node cannot load; {@link EngineError} for a bad option.
 */
export async function createInThreadOrtEngine(options: EngineOptions): Promise<InferenceEngine> {
  checkOrtOptions(ONNXRUNTIME_ENGINE, 'onnxruntime-node', options);
  const ort = await loadOrt();
  return new OrtSessionEngine(ort, nativeFlavour(ort), options);
}

/**
 * Factory of the native ONNX Runtime engine: CPU only (the CPU execution provider ships in onnxruntime-node). The
 * session runs on a worker thread of its own (ort-thread.ts, ort-worker.ts) unless `ownThread` is false or the
 * package runs from its TypeScript sources.
 */
export const onnxRuntimeFactory: EngineFactory = {
  async create(options: EngineOptions): Promise<InferenceEngine> {
    checkOrtOptions(ONNXRUNTIME_ENGINE, 'onnxruntime-node', options);
    const entry = options.ownThread === false ? undefined : ortThreadEntry();
    return entry === undefined ? createInThreadOrtEngine(options) : startOrtThread(entry, options);
  },
  async probe(): Promise<EngineProbe> {
    try {
      const ort = await loadOrt();
      return { name: ONNXRUNTIME_ENGINE, installed: true, version: ortNodeVersion(ort), devices: ['CPU'] };
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
      return { name: ONNXRUNTIME_ENGINE, installed: false, devices: [], reason: error.reason, remedy: error.remedy };
    }
  },
};

/** A model in memory on the native ONNX Runtime, every output returned: what calibration and quantisation checks use. */
export interface OrtModelRunner {
  /** Library and version, e.g. `onnxruntime-node 1.30.0`. */
  readonly version: string;
  /** Output names, the model's probabilities first. */
  readonly outputNames: readonly string[];
  /** `input` NHWC [batch, ...slice] → every output by name. */
  run(input: Float32Array, batch: number): Promise<Record<string, Float32Array>>;
  dispose(): Promise<void>;
}

/**
 * Opens `model` (ONNX bytes, one NHWC float32 input of slices `slice` = [height, width, channels]) on the native ONNX
 * Runtime with the engine's session options, so that its speed compares with the engine's.
 * @throws {EngineUnavailableError} without onnxruntime-node; {EngineError} for a model it cannot load.
 */
export async function openOrtModelRunner(model: Uint8Array, slice: readonly [number, number, number], options: EngineOptions = {}): Promise<OrtModelRunner> {
  checkOrtOptions(ONNXRUNTIME_ENGINE, 'onnxruntime-node', options);
  const ort = await loadOrt();
  const flavour = nativeFlavour(ort);
  let session: OrtSession | undefined;
  try {
    session = await ort.InferenceSession.create(model, flavour.sessionOptions(options));
  } catch (error) {
    throw new EngineError(ONNXRUNTIME_ENGINE, `cannot load the model: ${firstLine(error)}`, { cause: error });
  }
  const [inputName] = session.inputNames;
  if (session.inputNames.length !== 1 || inputName === undefined) throw new EngineError(ONNXRUNTIME_ENGINE, `the model has ${session.inputNames.length} inputs; one expected`);
  return {
    version: flavour.version,
    outputNames: session.outputNames,
    async run(input, batch) {
      if (session === undefined) throw new EngineError(ONNXRUNTIME_ENGINE, 'the session was disposed');
      const results = await session.run({ [inputName]: new ort.Tensor('float32', input, [batch, ...slice]) });
      return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
    },
    async dispose() {
      await session?.release();
      session = undefined;
    },
  };
}
