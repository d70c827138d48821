/**
 * ONNX Runtime engine (onnxruntime-node, CPU execution provider): runs a bundle's `model.onnx`.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBundleError, bundlePath, readModelManifest } from '@brats/io';
import type * as OnnxRuntime from 'onnxruntime-node';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError, firstLine } from './errors.js';
import { checkBatch } from './shape.js';

type OrtModule = typeof OnnxRuntime;
type OrtSession = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;

/** Registered name of the ONNX Runtime engine. */
export const ONNXRUNTIME_ENGINE = 'onnxruntime';

const REMEDY = 'Install it with `pnpm add onnxruntime-node` (its CPU binding ships in the npm package)';

let ortModule: Promise<OrtModule> | undefined;

/** Loads onnxruntime-node once; a missing or broken native binding becomes an EngineUnavailableError. */
async function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node');
  try {
    return await ortModule;
  } catch (error) {
    ortModule = undefined;
    throw new EngineUnavailableError(ONNXRUNTIME_ENGINE, `onnxruntime-node did not load: ${firstLine(error)}`, REMEDY, { cause: error });
  }
}

/** Reads the ONNX file and layout of a bundle from its manifest. */
export async function readOnnxLayout(bundle: string): Promise<ModelLayout> {
  const manifest = await readModelManifest(bundle);
  if (manifest.files.onnx === undefined) {
    throw new ModelBundleError(bundle, 'has no ONNX model (files.onnx in brats-model.json); export it first with exportBundleToOnnx from @brats/unet');
  }
  return {
    layout: 'NHWC',
    input: manifest.model.inputShape,
    outputChannels: manifest.model.outputChannels,
    file: bundlePath(bundle, manifest.files.onnx),
    format: 'onnx',
  };
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

class OnnxRuntimeEngine implements InferenceEngine {
  readonly name = ONNXRUNTIME_ENGINE;
  readonly device = 'CPU';
  readonly version: string;
  layout: ModelLayout | undefined;
  private session: OrtSession | undefined;
  private profileDir: string | undefined;
  private runs = 0;

  constructor(
    private readonly ort: OrtModule,
    private readonly options: EngineOptions,
  ) {
    this.version = `onnxruntime-node ${ort.env.versions.node ?? 'unknown'}`;
  }

  async load(bundle: string): Promise<ModelLayout> {
    const layout = await readOnnxLayout(bundle);
    await this.session?.release();
    this.session = undefined;
    const sessionOptions: Parameters<OrtModule['InferenceSession']['create']>[1] & object = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
    };
    if (this.options.threads !== undefined) sessionOptions.intraOpNumThreads = this.options.threads;
    if (this.options.perfCounters === true) {
      this.profileDir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-profile-'));
      sessionOptions.enableProfiling = true;
      sessionOptions.profileFilePrefix = path.join(this.profileDir, 'profile');
    }
    try {
      this.session = await this.ort.InferenceSession.create(layout.file, sessionOptions);
    } catch (error) {
      throw new EngineError(this.name, `cannot load ${layout.file}: ${firstLine(error)}`, { cause: error });
    }
    if (this.session.inputNames.length !== 1 || this.session.outputNames.length !== 1) {
      throw new EngineError(this.name, `${layout.file} has ${this.session.inputNames.length} inputs and ${this.session.outputNames.length} outputs; one of each expected`);
    }
    this.layout = layout;
    this.runs = 0;
    return layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const shape = checkBatch(this.name, this.layout, input, batch);
    const session = this.session;
    if (session === undefined) throw new EngineError(this.name, 'the session was disposed');
    const feeds = { [session.inputNames[0]!]: new this.ort.Tensor('float32', input, shape) };
    const results = await session.run(feeds);
    const output = results[session.outputNames[0]!];
    if (output === undefined || output.type !== 'float32') throw new EngineError(this.name, 'the model gave no float32 output');
    this.runs += 1;
    return output.data as Float32Array;
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

/** Factory of the ONNX Runtime engine: CPU only (the CPU execution provider ships in onnxruntime-node). */
export const onnxRuntimeFactory: EngineFactory = {
  async create(options: EngineOptions): Promise<InferenceEngine> {
    const device = (options.device ?? 'CPU').toUpperCase();
    if (device !== 'CPU') {
      throw new EngineError(ONNXRUNTIME_ENGINE, `device '${options.device ?? ''}' is not supported; onnxruntime-node runs on CPU (use --engine openvino for GPU, NPU or AUTO)`);
    }
    if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
      throw new EngineError(ONNXRUNTIME_ENGINE, `threads must be a positive integer, found ${options.threads}`);
    }
    return new OnnxRuntimeEngine(await loadOrt(), options);
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
