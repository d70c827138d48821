/**
 * ONNX Runtime engines: the native onnxruntime-node (CPU execution provider), preferred where it installs, and
 * (in onnxruntime-web-engine.ts) the WebAssembly build of onnxruntime-web, which needs no install script and is
 * always present. Both run a bundle's `model.onnx` through the same session code here.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBundleError, bundlePath, readModelManifest, type ModelManifest } from '@brats/io';
import type * as OnnxRuntime from 'onnxruntime-node';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError, firstLine } from './errors.js';
import { checkOrtSession, runOrtSession, type OrtModule, type OrtSession, type OrtSessionOptions } from './ort-session.js';
import { ortThreadEntry, startOrtThread } from './ort-thread.js';

/** Registered name of the ONNX Runtime engine. */
export const ONNXRUNTIME_ENGINE = 'onnxruntime';

const REMEDY =
  'Install it with ONNXRUNTIME_NODE_INSTALL=skip set, e.g. `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (for the CLI: `ONNXRUNTIME_NODE_INSTALL=skip npm install -g @brats/cli`): its CPU build ships in the package, the script only fetches GPU libraries';

let ortModule: Promise<typeof OnnxRuntime> | undefined;

/** Loads onnxruntime-node once; a missing or broken native binding becomes an EngineUnavailableError. */
async function loadOrt(): Promise<typeof OnnxRuntime> {
  ortModule ??= import('onnxruntime-node');
  try {
    return await ortModule;
  } catch (error) {
    ortModule = undefined;
    // npm drops an optional dependency whose install script fails (offline, its script downloads GPU libraries).
    const missing = (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(firstLine(error));
    const reason = missing ? 'onnxruntime-node is not installed (optional: npm leaves it out when its install script cannot download)' : `onnxruntime-node did not load: ${firstLine(error)}`;
    throw new EngineUnavailableError(ONNXRUNTIME_ENGINE, reason, REMEDY, { cause: error });
  }
}

/** The `brats export` command line that writes the INT8 model of `bundle`. */
function int8ExportCommand(bundle: string): string {
  return `brats export ${bundle} --precision int8 --data DATASET`;
}

/**
 * The ONNX file of a bundle, as its manifest lists it: `files.onnx`, or with `int8` the INT8 model `files.onnxInt8`
 * (never the other one in its place: INT8 asked and FP32 run would mislabel every figure). The ONNX Runtime and
 * OpenVINO engines both load through it.
 * @throws {ModelBundleError} when the bundle has no such model, or its folder lost the file.
 */
export function onnxModelFile(bundle: string, manifest: ModelManifest, options: { int8?: boolean } = {}): string {
  const int8 = options.int8 === true;
  const file = int8 ? manifest.files.onnxInt8 : manifest.files.onnx;
  if (file === undefined) {
    throw new ModelBundleError(
      bundle,
      int8
        ? `has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`${int8ExportCommand(bundle)}\`, or leave --precision at fp32`
        : 'has no ONNX model (files.onnx in brats-model.json); export it first with exportBundleToOnnx from @brats/unet',
    );
  }
  const absolute = bundlePath(bundle, file);
  if (!existsSync(absolute)) {
    throw new ModelBundleError(
      bundle,
      int8
        ? `brats-model.json lists the INT8 model ${file}, which is missing; write it again with \`${int8ExportCommand(bundle)}\``
        : `brats-model.json lists the ONNX model ${file}, which is missing; export it again with \`brats export ${bundle}\``,
    );
  }
  return absolute;
}

/**
 * Reads the ONNX file ({@link onnxModelFile}) and layout of a bundle from its manifest.
 * @throws {ModelBundleError} when the bundle has no such model.
 */
export async function readOnnxLayout(bundle: string, options: { int8?: boolean } = {}): Promise<ModelLayout> {
  const manifest = await readModelManifest(bundle);
  return {
    layout: 'NHWC',
    input: manifest.model.inputShape,
    outputChannels: manifest.model.outputChannels,
    file: onnxModelFile(bundle, manifest, options),
    format: 'onnx',
  };
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
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
  private session: OrtSession | undefined;
  private profileDir: string | undefined;
  private runs = 0;

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
    const layout = await readOnnxLayout(bundle, { int8: this.options.int8 === true });
    await this.session?.release();
    this.session = undefined;
    const sessionOptions = this.flavour.sessionOptions(this.options);
    if (this.options.perfCounters === true && this.flavour.profiling) {
      this.profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-profile-'));
      sessionOptions.enableProfiling = true;
      sessionOptions.profileFilePrefix = path.join(this.profileDir, 'profile');
    }
    try {
      this.session = await this.ort.InferenceSession.create(layout.file, sessionOptions);
    } catch (error) {
      throw new EngineError(this.name, `cannot load ${layout.file}: ${firstLine(error)}`, { cause: error });
    }
    checkOrtSession(this.name, layout.file, this.session);
    this.layout = layout;
    this.runs = 0;
    return layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const output = await runOrtSession(this.ort, this.session, this.name, this.layout, input, batch);
    this.runs += 1;
    return output;
  }

  async perfCounters(): Promise<readonly LayerPerfCounter[] | undefined> {
    if (this.profileDir === undefined || this.session === undefined || this.runs === 0) return undefined;
    // ONNX Runtime writes its per-node trace (Chrome trace format) only when profiling ends.
    this.session.endProfiling();
    const files = (await fs.readdir(this.profileDir)).filter((name) => name.endsWith('.json'));
    const totals = new Map<string, { type: string; microseconds: number }>();
    for (const file of files) {
      const events = JSON.parse(await fs.readFile(path.join(this.profileDir, file), 'utf8')) as ProfileEvent[];
      for (const event of events) {
        if (event.cat !== 'Node' || event.name?.endsWith('_kernel_time') !== true) continue;
        const name = event.name.slice(0, -'_kernel_time'.length);
        const entry = totals.get(name) ?? { type: event.args?.op_name ?? '', microseconds: 0 };
        entry.microseconds += event.dur ?? 0;
        totals.set(name, entry);
      }
    }
    return [...totals].map(([name, { type, microseconds }]) => ({ name, type, realTimeMs: microseconds / 1000 / this.runs, runs: this.runs }));
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    this.session = undefined;
    this.layout = undefined;
    if (this.profileDir !== undefined) await fs.rm(this.profileDir, { recursive: true, force: true });
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

/** The native engine's sessions: CPU execution provider, full graph optimisation, `threads` intra-op threads that do not spin. */
function nativeFlavour(ort: typeof OnnxRuntime): OrtFlavour {
  return {
    name: ONNXRUNTIME_ENGINE,
    device: 'CPU',
    version: `onnxruntime-node ${ort.env.versions.node ?? 'unknown'}`,
    profiling: true,
    sessionOptions: (options) => ({
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(options.threads === undefined ? {} : { intraOpNumThreads: options.threads }),
      // Idle intra-op threads sleep instead of spinning: the calling process decodes and writes other cases on the
      // same cores while a batch computes (a cohort of 20 scans, --jobs 2: 0.82 against 0.80 scans/s; one scan's
      // forward pass unchanged). It changes no arithmetic.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    }),
  };
}

/**
 * The native ONNX Runtime engine on the calling thread: what {@link onnxRuntimeFactory} creates with
 * `ownThread: false`, and what its worker thread runs inside (ort-thread.ts).
 * @throws {EngineUnavailableError} when onnxruntime-node cannot load; {@link EngineError} for a bad option.
 */
export async function createInThreadOrtEngine(options: EngineOptions): Promise<InferenceEngine> {
  checkOrtOptions(ONNXRUNTIME_ENGINE, 'onnxruntime-node', options);
  const ort = await loadOrt();
  return new OrtSessionEngine(ort, nativeFlavour(ort), options);
}

/**
 * Factory of the native ONNX Runtime engine: CPU only (the CPU execution provider ships in onnxruntime-node). The
 * session runs on a worker thread of its own (ort-thread.ts) unless `ownThread` is false or the package runs from
 * its TypeScript sources.
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
      return { name: ONNXRUNTIME_ENGINE, installed: true, version: `onnxruntime-node ${ort.env.versions.node ?? 'unknown'}`, devices: ['CPU'] };
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
