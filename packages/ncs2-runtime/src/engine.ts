/**
 * The inference-engine contract every runtime (OpenVINO, ONNX Runtime, …) implements. Engines take model bundles
 * and run batches of preprocessed slices; they know nothing of TensorFlow.js.
 */

/** How the engine should trade latency for throughput (OpenVINO's performance hints). */
export type PerformanceHint = 'LATENCY' | 'THROUGHPUT';

/** Floating-point precision of an OpenVINO IR. */
export type IrPrecision = 'FP32' | 'FP16';

/** Options of an engine, fixed when it is created. */
export interface EngineOptions {
  /** Device name: `CPU` (default), `GPU`, `NPU`, `AUTO`, … as the engine knows them. */
  readonly device?: string;
  /** Threads for one inference (ONNX Runtime intra-op threads, OpenVINO INFERENCE_NUM_THREADS); engine default when absent. */
  readonly threads?: number;
  /** OpenVINO performance hint (default LATENCY); ignored by engines without one. */
  readonly performanceHint?: PerformanceHint;
  /** Which OpenVINO IR of the bundle to load (an error when the bundle lacks it); the ONNX file when absent. */
  readonly precision?: IrPrecision;
  /** Collect per-layer timings (costs a little speed). */
  readonly perfCounters?: boolean;
  /**
   * Load the bundle's INT8 model (`files.onnxInt8`, written by `brats export --precision int8`) instead of its FP32
   * model: the ONNX Runtime and OpenVINO engines; an error where the bundle has none or the engine cannot.
   */
  readonly int8?: boolean;
  /**
   * ONNX Runtime (native): run the session on a worker thread of its own, so that the calling thread decodes,
   * preprocesses and writes while a batch computes (default true where the package is built; false: on the
   * calling thread, which onnxruntime-node blocks for each batch). Other engines ignore it.
   */
  readonly ownThread?: boolean;
  /**
   * The bundle the engine will load first (openBundleEngine says it): the native ONNX Runtime engine's worker thread
   * opens its model as soon as the runtime is loaded, without waiting for the calling thread, which may be busy
   * preprocessing. `load` still names the bundle; other engines ignore it.
   */
  readonly bundle?: string;
  /**
   * Native ONNX Runtime on its own thread, with `bundle`: as soon as the model is open, run two batches of this many
   * slices of zeros and discard them. ONNX Runtime plans and maps its memory on its first runs of a shape; this way
   * the first real batches run at full speed. Worth it where the engine opens ahead of its work (`brats serve` opens
   * its model at start-up, then waits for uploads); not where work is waiting: one scan through `brats infer` took
   * 60 ms longer with it on two busy cores (the batches of zeros are computed in full). Changes no result. Other
   * engines ignore it.
   */
  readonly warmupBatch?: number;
}

/** What a loaded model takes and gives: NHWC slices in, NHWC probabilities out. */
export interface ModelLayout {
  /** Tensor layout of the input and output: `[batch, height, width, channels]`, channels last. */
  readonly layout: 'NHWC';
  /** One slice: [height, width, channels]. */
  readonly input: readonly [number, number, number];
  /** Probability channels K of the output [batch, height, width, K]. */
  readonly outputChannels: number;
  /** Absolute path of the file the engine loaded. */
  readonly file: string;
  /** Format of that file. */
  readonly format: 'onnx' | 'openvino-ir' | 'tfjs';
}

/** Time spent in one layer (node) of the model, averaged over the runs measured. */
export interface LayerPerfCounter {
  /** Node name in the graph. */
  readonly name: string;
  /** Operator type (Conv, Relu, …). */
  readonly type: string;
  /** Mean wall time per run in milliseconds. */
  readonly realTimeMs: number;
  /** Runs measured. */
  readonly runs: number;
}

/**
 * A loaded inference engine. Create one with `createEngine`, `load` a bundle, `run` batches, `dispose` it.
 */
export interface InferenceEngine {
  /** Registered engine name, e.g. `onnxruntime`. */
  readonly name: string;
  /** Device the engine runs on, e.g. `CPU`. */
  readonly device: string;
  /** Version of the runtime library, e.g. `onnxruntime-node 1.30.0`. */
  readonly version: string;
  /** The loaded model's layout, undefined before {@link InferenceEngine.load}. */
  readonly layout: ModelLayout | undefined;
  /**
   * Loads the model of a bundle folder (its manifest says which file and how to feed it).
   * @throws {ModelBundleError} when the bundle has no file this engine reads.
   */
  load(bundle: string): Promise<ModelLayout>;
  /**
   * Runs one batch: `input` is float32 NHWC [batch, height, width, channels] flat; resolves to float32 NHWC
   * [batch, height, width, K] probabilities. Several calls may be in flight at once. The engine keeps no hold on
   * `input` once the promise settles (it copies or is done with it): the caller may refill it.
   * @throws {ShapeMismatchError} when `input` does not hold `batch` slices; {@link EngineError} before load.
   */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Per-layer timings of the runs so far, or undefined when the engine was not created with perfCounters or cannot give them. */
  perfCounters(): Promise<readonly LayerPerfCounter[] | undefined>;
  /** Frees the native session; the engine cannot run afterwards. */
  dispose(): Promise<void>;
}

/** What an engine's probe found on this machine. */
export interface EngineProbe {
  /** Registered engine name. */
  readonly name: string;
  /** Whether the engine can be created here. */
  readonly installed: boolean;
  /** Runtime version when installed. */
  readonly version?: string;
  /** Devices it can run on here. */
  readonly devices: readonly string[];
  /** Why it is not installed, when it is not. */
  readonly reason?: string;
  /** How to install it, when it is not. */
  readonly remedy?: string;
}

/** Creates engines of one kind and tells whether they can run here. */
export interface EngineFactory {
  /**
   * A new engine with `options`.
   * @throws {EngineUnavailableError} when the runtime is not installed; {@link EngineError} for an unsupported device.
   */
  create(options: EngineOptions): Promise<InferenceEngine>;
  /** Checks installation, version and devices without creating an engine. */
  probe(): Promise<EngineProbe>;
}
