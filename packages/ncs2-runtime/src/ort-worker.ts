/**
 * The worker thread of the native ONNX Runtime engine (started by ort-thread.ts, built as an entry of its own): one
 * session of the ONNX file the calling thread resolved from the bundle, running the batches sent to it. It imports
 * onnxruntime-node and ort-native.ts only, nothing of @brats/io: the thread is ready sooner, and errors cross as
 * plain descriptions ({@link ThreadError}) that the calling thread turns back into its error classes.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type * as OnnxRuntime from 'onnxruntime-node';
import type { EngineOptions } from './engine.js';
import { ONNXRUNTIME_ENGINE, ORT_NODE_REMEDY, OrtModelSession, OrtSessionFailure, nativeSessionOptions, ortNodeLoadFailure, ortNodeVersion } from './ort-native.js';
import { ORT_THREAD_ROLE, type Ready, type Reply, type Request, type ThreadError } from './ort-thread-protocol.js';

function toThreadError(error: unknown): ThreadError {
  if (error instanceof OrtSessionFailure) return { name: 'EngineError', message: error.reason, engine: ONNXRUNTIME_ENGINE, reason: error.reason };
  return { name: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) };
}

async function serve(port: MessagePort, options: EngineOptions): Promise<void> {
  let ort: typeof OnnxRuntime;
  try {
    ort = await import('onnxruntime-node');
  } catch (error) {
    const reason = ortNodeLoadFailure(error);
    port.postMessage({ id: 0, ok: false, error: { name: 'EngineUnavailableError', message: reason, engine: ONNXRUNTIME_ENGINE, reason, remedy: ORT_NODE_REMEDY } } satisfies Ready);
    return;
  }
  port.postMessage({ id: 0, ok: true, value: { name: ONNXRUNTIME_ENGINE, device: 'CPU', version: ortNodeVersion(ort) } } satisfies Ready);
  let session: OrtModelSession | undefined;
  port.on('message', (request: Request) => {
    const answer = async (): Promise<{ value: unknown; transfer: ArrayBuffer[] }> => {
      switch (request.op) {
        case 'load':
          await session?.dispose();
          session = undefined;
          session = await OrtModelSession.open(ort, request.file, nativeSessionOptions(options), options.perfCounters === true);
          return { value: undefined, transfer: [] };
        case 'run': {
          if (session === undefined) throw new OrtSessionFailure('the session was disposed');
          const output = await session.run(request.input, request.shape);
          // The session's output buffer is this output's alone: it moves to the caller without a copy.
          const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
          return { value: own, transfer: [own.buffer as ArrayBuffer] };
        }
        case 'perf':
          return { value: await session?.perfCounters(), transfer: [] };
        case 'dispose':
          await session?.dispose();
          session = undefined;
          return { value: undefined, transfer: [] };
      }
    };
    answer().then(
      ({ value, transfer }) => port.postMessage({ id: request.id, ok: true, value } satisfies Reply, transfer),
      (error: unknown) => port.postMessage({ id: request.id, ok: false, error: toThreadError(error) } satisfies Reply),
    );
  });
}

if (parentPort !== null && (workerData as { role?: unknown } | undefined)?.role === ORT_THREAD_ROLE) {
  void serve(parentPort, (workerData as { options: EngineOptions }).options);
}
