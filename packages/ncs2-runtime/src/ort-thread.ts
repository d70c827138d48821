/**
 * The native ONNX Runtime engine on a thread of its own. onnxruntime-node computes a batch synchronously on the
 * thread that calls `run` (its promise only wraps a blocking call in setImmediate), and creates a session the same
 * way: on the main thread each batch stops everything else, so a cohort cannot decode, preprocess or write one case
 * while the engine runs another, and a single scan cannot decode while the model loads. Here a worker thread owns
 * the session and the main thread goes on; batches cross as transferred buffers (one copy of the input, none of
 * the output). The computation is the same session with the same options, so the probabilities are the same bits.
 *
 * This module is also the worker's entry: loaded in a worker started with {@link ORT_THREAD_ROLE}, it serves
 * requests. Built, it is part of the package's bundle; from TypeScript sources (tests) there is no entry a worker
 * could load, and the engine runs on the calling thread instead (see {@link ortThreadEntry}).
 */
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { ModelBundleError } from '@brats/io';
import type { EngineOptions, InferenceEngine, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError } from './errors.js';
import { checkBatch } from './shape.js';

/** Marker in `workerData` that makes this module serve an ONNX Runtime session. */
export const ORT_THREAD_ROLE = 'brats-ort-thread';

const ENTRY = import.meta.url;

/** The module a worker can load to serve a session, or undefined when running from TypeScript sources. */
export function ortThreadEntry(): URL | undefined {
  return ENTRY.endsWith('.ts') ? undefined : new URL(ENTRY);
}

type Request =
  | { id: number; op: 'load'; bundle: string }
  | { id: number; op: 'run'; input: Float32Array; batch: number }
  | { id: number; op: 'perf' }
  | { id: number; op: 'dispose' };

/** A request before it is numbered (the id left out of each kind of request). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type RequestBody = WithoutId<Request>;

/** An error as it crosses the thread boundary: enough to rebuild the engine's error classes. */
interface ThreadError {
  name: string;
  message: string;
  engine?: string;
  reason?: string;
  remedy?: string;
  path?: string;
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ThreadError };

/** What the worker says once it has loaded onnxruntime-node (id 0), or why it could not. */
type Ready = { id: 0; ok: true; value: { name: string; device: string; version: string } } | { id: 0; ok: false; error: ThreadError };

function toThreadError(error: unknown): ThreadError {
  if (error instanceof EngineUnavailableError) return { name: 'EngineUnavailableError', message: error.message, engine: error.engine, reason: error.reason, remedy: error.remedy };
  if (error instanceof EngineError) return { name: 'EngineError', message: error.message, engine: error.engine, reason: error.reason };
  if (error instanceof ModelBundleError) return { name: 'ModelBundleError', message: error.message, path: error.path, reason: error.reason };
  return { name: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) };
}

function fromThreadError(error: ThreadError): Error {
  if (error.name === 'EngineUnavailableError') return new EngineUnavailableError(error.engine!, error.reason!, error.remedy!);
  if (error.name === 'EngineError') return new EngineError(error.engine!, error.reason!);
  if (error.name === 'ModelBundleError') return new ModelBundleError(error.path!, error.reason!);
  const rebuilt = new Error(error.message);
  rebuilt.name = error.name;
  return rebuilt;
}

/** The worker side: one in-thread engine, created from the options the thread was started with. */
async function serve(port: MessagePort, options: EngineOptions): Promise<void> {
  const { createInThreadOrtEngine } = await import('./onnxruntime-engine.js');
  let engine: InferenceEngine;
  try {
    engine = await createInThreadOrtEngine(options);
  } catch (error) {
    port.postMessage({ id: 0, ok: false, error: toThreadError(error) } satisfies Ready);
    return;
  }
  port.postMessage({ id: 0, ok: true, value: { name: engine.name, device: engine.device, version: engine.version } } satisfies Ready);
  port.on('message', (request: Request) => {
    const answer = async (): Promise<{ value: unknown; transfer: ArrayBuffer[] }> => {
      switch (request.op) {
        case 'load':
          return { value: await engine.load(request.bundle), transfer: [] };
        case 'run': {
          const output = await engine.run(request.input, request.batch);
          // The session's output buffer is this output's alone: it moves to the caller without a copy.
          const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
          return { value: own, transfer: [own.buffer as ArrayBuffer] };
        }
        case 'perf':
          return { value: await engine.perfCounters(), transfer: [] };
        case 'dispose':
          await engine.dispose();
          return { value: undefined, transfer: [] };
      }
    };
    answer().then(
      ({ value, transfer }) => port.postMessage({ id: request.id, ok: true, value } satisfies Reply, transfer),
      (error: unknown) => port.postMessage({ id: request.id, ok: false, error: toThreadError(error) } satisfies Reply),
    );
  });
}

if (!isMainThread && parentPort !== null && (workerData as { role?: unknown } | undefined)?.role === ORT_THREAD_ROLE) {
  void serve(parentPort, (workerData as { options: EngineOptions }).options);
}

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

  constructor(
    worker: Worker,
    readonly name: string,
    readonly device: string,
    readonly version: string,
  ) {
    this.#worker = worker;
    worker.on('message', (reply: Reply) => {
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
    this.layout = await this.#ask<ModelLayout>({ op: 'load', bundle });
    return this.layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    // Checked here so that a wrong size fails with the caller's own error class, as on the main thread.
    checkBatch(this.name, this.layout, input, batch);
    // The caller keeps its array (often a view into a whole scan): the batch crosses as a copy.
    const copy = input.slice();
    return this.#ask<Float32Array>({ op: 'run', input: copy, batch }, [copy.buffer]);
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
  const worker = new Worker(entry, { workerData: { role: ORT_THREAD_ROLE, options } });
  const ready = await new Promise<Ready>((resolve, reject) => {
    const failed = (error: Error): void => reject(new EngineError('onnxruntime', `its worker thread did not start: ${error.message}`, { cause: error }));
    const exited = (code: number): void => failed(new Error(`exit code ${code}`));
    worker.once('message', (message: Ready) => {
      worker.off('error', failed);
      worker.off('exit', exited);
      resolve(message);
    });
    worker.once('error', failed);
    worker.once('exit', exited);
  });
  if (!ready.ok) {
    await worker.terminate();
    throw fromThreadError(ready.error);
  }
  return new ThreadedOrtEngine(worker, ready.value.name, ready.value.device, ready.value.version);
}
