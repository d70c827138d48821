/** The messages between the native ONNX Runtime engine (ort-thread.ts) and its worker thread (ort-worker.ts). */
import type { EngineOptions } from './engine.js';

/** Marker in `workerData` that makes ort-worker.ts serve an ONNX Runtime session. */
export const ORT_THREAD_ROLE = 'brats-ort-thread';

/**
 * What the worker is started with: the engine's options and, when known, the ONNX file to open at once. A thread
 * started ahead of its engine (ort-prestart.ts) has neither: its first message is a `configure` request.
 */
export interface OrtThreadData {
  role: typeof ORT_THREAD_ROLE;
  options?: EngineOptions;
  preload?: Preload;
}

/** The ONNX file to open at once and, when asked, the input shape [batch, height, width, channels] to warm it up with. */
export interface Preload {
  file: string;
  warmup?: number[];
}

/**
 * What the calling thread asks: the options of a thread started ahead and the file to open at once (`configure`,
 * never answered), open the bundle's ONNX file (resolved there), run a batch, read timings, free.
 */
export type Request =
  | { id: 0; op: 'configure'; options: EngineOptions; preload?: Preload }
  | { id: number; op: 'load'; file: string }
  | { id: number; op: 'run'; input: Float32Array; shape: number[] }
  | { id: number; op: 'perf' }
  | { id: number; op: 'dispose' };

/** An error as it crosses the thread boundary: enough to rebuild the engine's error classes. */
export interface ThreadError {
  name: string;
  message: string;
  engine?: string;
  reason?: string;
  remedy?: string;
}

/**
 * The answer to a request. A batch's answer gives its input array back (`returned`): the calling thread copies its
 * next batch into it instead of into fresh memory, which the system had to map page by page.
 */
export type Reply = { id: number; ok: true; value: unknown; returned?: Float32Array } | { id: number; ok: false; error: ThreadError };

/** What the worker says once it has loaded onnxruntime-node (id 0), or why it could not. */
export type Ready = { id: 0; ok: true; value: { name: string; device: string; version: string } } | { id: 0; ok: false; error: ThreadError };
