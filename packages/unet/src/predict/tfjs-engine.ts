/** The TensorFlow.js inference engine: the bundle's layers model on the best installed tfjs backend. */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError, bundlePath, readModelManifest, type ModelManifest } from '@brats/io';
import { initBackend, type BackendChoice, type BackendSelection } from '../backend.js';
import { loadLayersModel } from '../model-files.js';
import { TFJS_MODEL_FILE } from '../model-files.js';
import type { SliceRunner } from './predictor.js';
import path from 'node:path';

/** Runs a bundle's TensorFlow.js model; the same surface as the runtime engines of @brats/ncs2-runtime. */
export class TfjsEngine implements SliceRunner {
  readonly name = 'tfjs';
  #model: tf.LayersModel | undefined;
  #backend: BackendSelection | undefined;
  #manifest: ModelManifest | undefined;
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

  /** Input layout of the loaded model. */
  get layout(): { layout: 'NHWC'; height: number; width: number; channels: number; outputChannels: number } | undefined {
    const manifest = this.#manifest;
    if (manifest === undefined) return undefined;
    const [height, width, channels] = manifest.model.inputShape;
    return { layout: 'NHWC', height, width, channels, outputChannels: manifest.model.outputChannels };
  }

  /**
   * Loads the bundle's TensorFlow.js model.
   * @throws {ModelBundleError} when the bundle or its model files are missing; {@link BackendError} when a forced backend cannot load.
   */
  async load(bundle: string): Promise<NonNullable<TfjsEngine['layout']>> {
    this.#manifest = await readModelManifest(bundle);
    this.#backend = await initBackend(this.#choice);
    const modelFile = this.#manifest.files.tfjs ?? TFJS_MODEL_FILE;
    const file = bundlePath(bundle, modelFile);
    this.#model = await loadLayersModel(path.dirname(file), path.basename(file));
    return this.layout!;
  }

  /** One batch of NHWC slices → NHWC probabilities. @throws {ArgumentError} before load or for a wrong input length. */
  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const model = this.#model;
    const layout = this.layout;
    if (model === undefined || layout === undefined) throw new ArgumentError('TfjsEngine.run', 'engine', 'has no model: call load() first');
    if (input.length !== batch * layout.height * layout.width * layout.channels) {
      throw new ArgumentError('TfjsEngine.run', 'input', `has ${input.length} values for ${batch} slices of [${layout.height}, ${layout.width}, ${layout.channels}]`);
    }
    const output = tf.tidy(() => model.predict(tf.tensor4d(input, [batch, layout.height, layout.width, layout.channels])) as tf.Tensor);
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
