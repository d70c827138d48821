/**
 * The native ONNX Runtime engine on a thread of its own. onnxruntime-node computes a batch synchronously on the
 * thread that calls `run` (its promise only wraps a blocking call in setImmediate), and creates a session the same
 * way: on the main thread each batch stops everything else, so a cohort cannot decode, preprocess or write one case
 * while the engine runs another, and a single scan cannot decode while the model loads. Here a worker thread
 * (ort-worker.ts) owns the session and the main thread goes on; batches cross as transferred buffers (one copy of
 * the input, none of the output). The computation is the same session with the same options, so the probabilities
 * are the same bits.
 *
 * Built, the worker's entry is a file of its own beside this package's bundle; from TypeScript sources (tests) there
 * is no entry a worker could load, and the engine runs on the calling thread instead (see `ortThreadEntry` in ort-prestart.ts).
 */
import { Worker } from 'node:worker_threads';
import type { EngineOptions, InferenceEngine, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError } from './errors.js';
import { onnxModelNow, readOnnxLayout } from './onnx-bundle.js';
import { takePrestartedOrtThread } from './ort-prestart.js';
import { ORT_THREAD_ROLE, type OrtThreadData, type Preload, type Ready, type Reply, type Request, type ThreadError } from './ort-thread-protocol.js';
import { checkBatch } from './shape.js';

/** A request before it is numbered (the id left out of each kind of request). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = WithoutId<Request>;

function fromThreadError(error: ThreadError): Error {
  if (error.name === 'EngineUnavailableError') return new EngineUnavailableError(error.engine!, error.reason!, error.remedy!);
  if (error.name === 'EngineError') return new EngineError(error.engine!, error.reason!);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

/** Given-back input arrays kept for reuse: two batches are in flight at most in a segmentation, and one is being filled. */
const SPARE_INPUTS = 3;

/**
 * The native ONNX Runtime engine served by a worker thread; created by {@link startOrtThread}. Its name, device,
 * version and layout are those of the session inside.
 */
class ThreadedOrtEngine implements InferenceEngine {
  layout: ModelLayout | undefined;
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #next = 1;
  #failure: Error | undefined;
  /** Input arrays the worker gave back, to copy the next batches into. */
  readonly #spare: Float32Array[] = [];

  readonly #int8: boolean;

  constructor(
    worker: Worker,
    readonly name: string,
    readonly device: string,
    readonly version: string,
    int8: boolean,
  ) {
    this.#worker = worker;
    this.#int8 = int8;
    worker.on('message', (reply: Reply) => {
      if (reply.ok && reply.returned !== undefined && this.#spare.length < SPARE_INPUTS) this.#spare.push(reply.returned);
      const waiting = this.#pending.get(reply.id);
      if (waiting === undefined) return;
      this.#settled(reply.id);
      if (reply.ok) waiting.resolve(reply.value);
      else waiting.reject(fromThreadError(reply.error));
    });
    const stop = (why: string): void => {
      this.#failure ??= new EngineError(name, `its worker thread stopped (${why})`);
      for (const [id, waiting] of this.#pending) {
        this.#settled(id);
        waiting.reject(this.#failure);
      }
    };
    worker.on('error', (error) => stop(error.message));
    worker.on('exit', (code) => stop(`exit code ${code}`));
    // An idle engine does not keep the process alive, as a session on the main thread would not.
    worker.unref();
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker.unref();
  }

  #ask<T>(request: RequestBody, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#worker.ref();
      this.#worker.postMessage({ ...request, id }, transfer);
    });
  }

  async load(bundle: string): Promise<ModelLayout> {
    this.layout = undefined;
    // The bundle is read here, where its errors are this thread's classes; the worker opens the file it names.
    const layout = await readOnnxLayout(bundle, { int8: this.#int8 });
    await this.#ask<void>({ op: 'load', file: layout.file });
    this.layout = layout;
    return layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    // Checked here so that a wrong size fails with the caller's own error class, as on the main thread.
    const shape = checkBatch(this.name, this.layout, input, batch);
    // The caller keeps its array (segmentation refills it with a later batch): the batch crosses as a copy, into an
    // array the worker gave back when one of the size is there (fresh memory costs a page fault per 4 KiB: one scan's
    // batches took about 4 000 more without this, in the latency bench).
    const spare = this.#spare.findIndex((array) => array.length === input.length);
    const copy = spare < 0 ? input.slice() : this.#spare.splice(spare, 1)[0]!;
    if (spare >= 0) copy.set(input);
    return this.#ask<Float32Array>({ op: 'run', input: copy, shape: [...shape] }, [copy.buffer as ArrayBuffer]);
  }

  perfCounters(): Promise<readonly LayerPerfCounter[] | undefined> {
    return this.#ask<readonly LayerPerfCounter[] | undefined>({ op: 'perf' });
  }

  async dispose(): Promise<void> {
    if (this.#failure === undefined) {
      try {
        await this.#ask<void>({ op: 'dispose' });
      } finally {
        this.#failure = new EngineError(this.name, 'the engine was disposed');
        await this.#worker.terminate();
      }
    }
    this.layout = undefined;
  }
}

/**
 * Starts a worker thread that loads onnxruntime-node and creates the in-thread engine with `options` there.
 * @throws {EngineUnavailableError} when onnxruntime-node cannot load (in the worker, as it would here).
 * @throws {EngineError} when the worker cannot start.
 */
export async function startOrtThread(entry: URL, options: EngineOptions): Promise<InferenceEngine> {
  // The bundle's model file, when the caller named the bundle: the worker opens it as soon as it can. It is read
  // without awaiting: this thread may be about to preprocess a case and not turn again for a while. A bundle that
  // cannot be read here is left to load(), which reports it.
  const { bundle, ...rest } = options;
  const model = bundle === undefined ? undefined : onnxModelNow(bundle, { int8: options.int8 === true });
  const { warmupBatch } = options;
  const preload: Preload | undefined =
    model === undefined ? undefined : { file: model.file, ...(warmupBatch !== undefined && warmupBatch > 0 ? { warmup: [warmupBatch, ...model.input] } : {}) };
  const didNotStart = (error: Error): EngineError => new EngineError('onnxruntime', `its worker thread did not start: ${error.message}`, { cause: error });
  // A thread started ahead (ort-prestart.ts) is this engine's: it is told the options and the file to open.
  const early = takePrestartedOrtThread(entry);
  let worker: Worker;
  let ready: Ready;
  if (early !== undefined) {
    worker = early.worker;
    worker.postMessage({ id: 0, op: 'configure', options: rest, ...(preload === undefined ? {} : { preload }) } satisfies Request);
    const answer = await early.ready;
    if (answer instanceof Error) throw didNotStart(answer);
    ready = answer;
  } else {
    const data: OrtThreadData = { role: ORT_THREAD_ROLE, options: rest, ...(preload === undefined ? {} : { preload }) };
    const started = new Worker(entry, { workerData: data });
    worker = started;
    ready = await new Promise<Ready>((resolve, reject) => {
      const failed = (error: Error): void => reject(didNotStart(error));
      const exited = (code: number): void => failed(new Error(`exit code ${code}`));
      started.once('message', (message: Ready) => {
        started.off('error', failed);
        started.off('exit', exited);
        resolve(message);
      });
      started.once('error', failed);
      started.once('exit', exited);
    });
  }
  if (!ready.ok) {
    await worker.terminate();
    throw fromThreadError(ready.error);
  }
  return new ThreadedOrtEngine(worker, ready.value.name, ready.value.device, ready.value.version, options.int8 === true);
}
