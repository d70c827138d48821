/**
 * The native ONNX Runtime engine's worker thread, started before the code that will use it has loaded. A process
 * that is about to segment a scan spends its first tenth of a second loading its own modules on one core; the
 * worker's start (a Node.js thread, then onnxruntime-node and its native library) needs the other core and
 * nothing from those modules. `startOrtThread` adopts the thread started here, hands it the engine's options and
 * the model file, and it goes on exactly as a thread started then would. An entry of its own (`./ort-prestart`)
 * that imports nothing but `node:worker_threads`, so that calling it costs no module loading either. It takes the
 * engine's start out of the race with reading and preprocessing the case; on two cores that the rest of the work
 * keeps busy, the latency bench shows no difference in time (a core with nothing to do is where it gains).
 */
import { Worker } from 'node:worker_threads';
import { ORT_THREAD_ROLE, type OrtThreadData, type Ready } from './ort-thread-protocol.js';

const HERE = import.meta.url;

/** The module a worker can load to serve a session (ort-worker.js beside the bundle), or undefined when running from TypeScript sources. */
export function ortThreadEntry(): URL | undefined {
  return HERE.endsWith('.ts') ? undefined : new URL('./ort-worker.js', HERE);
}

/** A worker thread started ahead, and what it says once onnxruntime-node has loaded (or why it stopped). */
export interface PrestartedOrtThread {
  worker: Worker;
  ready: Promise<Ready | Error>;
}

let prestarted: { entry: string; thread: PrestartedOrtThread } | undefined;

/**
 * Starts the native ONNX Runtime engine's worker thread now, to be adopted by the engine opened later in this
 * process. It loads onnxruntime-node and waits for its options; unused, it keeps no process alive.
 * @returns false where there is no built worker entry (running from TypeScript sources), true otherwise.
 */
export function prestartOrtThread(): boolean {
  if (prestarted !== undefined) return true;
  const entry = ortThreadEntry();
  if (entry === undefined) return false;
  const data: OrtThreadData = { role: ORT_THREAD_ROLE };
  const worker = new Worker(entry, { workerData: data });
  worker.unref();
  const ready = new Promise<Ready | Error>((resolve) => {
    worker.once('message', (message: Ready) => resolve(message));
    worker.once('error', (error) => resolve(error));
    worker.once('exit', (code) => resolve(new Error(`exit code ${code}`)));
  });
  prestarted = { entry: entry.href, thread: { worker, ready } };
  return true;
}

/** The thread {@link prestartOrtThread} started for `entry`, handed over once; undefined when there is none. */
export function takePrestartedOrtThread(entry: URL): PrestartedOrtThread | undefined {
  if (prestarted?.entry !== entry.href) return undefined;
  const { thread } = prestarted;
  prestarted = undefined;
  return thread;
}
