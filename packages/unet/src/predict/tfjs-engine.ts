/** The TensorFlow.js inference engine: the bundle's layers model on the best installed tfjs backend. */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError, bundlePath, readModelManifest, type ModelManifest } from '@brats/io';
import { initBackend, type BackendChoice, type BackendSelection } from '../backend.js';
import { loadLayersModel } from '../model-files.js';
import { TFJS_MODEL_FILE } from '../model-files.js';
import { registerEngine, type EngineFactory, type EngineOptions, type EngineProbe, type InferenceEngine, type ModelLayout } from '@brats/ncs2-runtime';
import path from 'node:path';

/** What a loaded tfjs model takes and gives: NHWC slices in, NHWC probabilities out, from a model.json. */
export interface TfjsModelLayout extends ModelLayout {
  readonly format: 'tfjs';
}

/** Runs a bundle's TensorFlow.js model; the same surface as the runtime engines of @brats/ncs2-runtime. */
export class TfjsEngine implements InferenceEngine {
  readonly name = 'tfjs';
  #model: tf.LayersModel | undefined;
  #backend: BackendSelection | undefined;
  #manifest: ModelManifest | undefined;
  #file: string | undefined;
  readonly #choice: BackendChoice;

  constructor(options: { backend?: BackendChoice } = {}) {
    this.#choice = options.backend ?? 'auto';
  }

  /** The tfjs backend in use (after load). */
  get device(): string {
    return this.#backend?.name ?? 'not loaded';
  }

  get version(): string {
    return `@tensorflow/tfjs ${tf.version.tfjs}`;
  }

  /** Backend selection with the reasons for fallbacks (after load). */
  get backend(): BackendSelection | undefined {
    return this.#backend;
  }

  /** What the loaded model takes and gives (the same shape as the runtime engines' ModelLayout). */
  get layout(): TfjsModelLayout | undefined {
    const manifest = this.#manifest;
    if (manifest === undefined || this.#file === undefined) return undefined;
    return { layout: 'NHWC', input: manifest.model.inputShape, outputChannels: manifest.model.outputChannels, file: this.#file, format: 'tfjs' };
  }

  /**
   * Loads the bundle's TensorFlow.js model.
   * @throws {ModelBundleError} when the bundle or its model files are missing; {@link BackendError} when a forced backend cannot load.
   */
  async load(bundle: string): Promise<TfjsModelLayout> {
    this.#manifest = await readModelManifest(bundle);
    this.#backend = await initBackend(this.#choice);
    const modelFile = this.#manifest.files.tfjs ?? TFJS_MODEL_FILE;
    const file = bundlePath(bundle, modelFile);
    this.#model = await loadLayersModel(path.dirname(file), path.basename(file));
    this.#file = file;
    return this.layout!;
  }

  /** One batch of NHWC slices → NHWC probabilities. @throws {ArgumentError} before load or for a wrong input length. */
  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const model = this.#model;
    const layout = this.layout;
    if (model === undefined || layout === undefined) throw new ArgumentError('TfjsEngine.run', 'engine', 'has no model: call load() first');
    const [height, width, channels] = layout.input;
    if (input.length !== batch * height * width * channels) {
      throw new ArgumentError('TfjsEngine.run', 'input', `has ${input.length} values for ${batch} slices of [${height}, ${width}, ${channels}]`);
    }
    const output = tf.tidy(() => model.predict(tf.tensor4d(input, [batch, height, width, channels])) as tf.Tensor);
    const values = (await output.data()) as Float32Array;
    output.dispose();
    return values;
  }

  /** tfjs gives no per-layer timings. */
  async perfCounters(): Promise<undefined> {
    return undefined;
  }

  async dispose(): Promise<void> {
    this.#model?.dispose();
    this.#model = undefined;
  }
}

const BACKEND_DEVICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

/** Registered name of the TensorFlow.js engine. */
export const TFJS_ENGINE = 'tfjs';

/**
 * The tfjs engine as a factory of @brats/ncs2-runtime's registry: the device is the tfjs backend (`auto`,
 * `tensorflow`, `wasm`, `cpu`; `CPU` means auto).
 */
export const tfjsEngineFactory: EngineFactory & { create(options?: EngineOptions): Promise<TfjsEngine> } = {
  async create(options: EngineOptions = {}): Promise<TfjsEngine> {
    const device = options.device === undefined || options.device.toUpperCase() === 'CPU' ? 'auto' : options.device.toLowerCase();
    if (!(BACKEND_DEVICES as readonly string[]).includes(device)) {
      throw new ArgumentError('tfjsEngineFactory.create', 'device', `'${options.device}' is not a tfjs backend; known: CPU, ${BACKEND_DEVICES.join(', ')}`);
    }
    if (options.int8 === true) {
      throw new ArgumentError('tfjsEngineFactory.create', 'int8', 'the tfjs engine runs the FP32 weights only; the INT8 model runs on onnxruntime, onnxruntime-web or openvino');
    }
    return new TfjsEngine({ backend: device as BackendChoice });
  },
  async probe(): Promise<EngineProbe> {
    return { name: TFJS_ENGINE, installed: true, version: `@tensorflow/tfjs ${tf.version.tfjs}`, devices: ['wasm', 'cpu', 'tensorflow (with @tensorflow/tfjs-node)'] };
  },
};

/**
 * Registers the tfjs engine with @brats/ncs2-runtime's registry at `priority` (default 0, the lowest: `auto`
 * then uses it only where no runtime engine can run a bundle).
 */
export function registerTfjsEngine(priority = 0): void {
  registerEngine(TFJS_ENGINE, tfjsEngineFactory, priority);
}
