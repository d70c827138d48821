/**
 * The worker thread of the native ONNX Runtime engine (started by ort-thread.ts, built as an entry of its own): one
 * session of the ONNX file the calling thread resolved from the bundle, running the batches sent to it. It imports
 * onnxruntime-node and ort-native.ts only, nothing of @brats/io: the thread is ready sooner, and errors cross as
 * plain descriptions ({@link ThreadError}) that the calling thread turns back into its error classes.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type * as OnnxRuntime from 'onnxruntime-node';
import { ONNXRUNTIME_ENGINE, ORT_NODE_REMEDY, OrtModelSession, OrtSessionFailure, nativeSessionOptions, ortNodeLoadFailure, ortNodeVersion } from './ort-native.js';
import { ORT_THREAD_ROLE, type OrtThreadData, type Preload, type Ready, type Reply, type Request, type ThreadError } from './ort-thread-protocol.js';

function toThreadError(error: unknown): ThreadError {
  if (error instanceof OrtSessionFailure) return { name: 'EngineError', message: error.reason, engine: ONNXRUNTIME_ENGINE, reason: error.reason };
  return { name: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) };
}

async function serve(port: MessagePort, data: OrtThreadData): Promise<void> {
  // A thread started ahead of its engine gets its options (and the file to preload) in a configure request.
  let options = data.options ?? {};
  let ort: typeof OnnxRuntime;
  try {
    ort = await import('onnxruntime-node');
  } catch (error) {
    const reason = ortNodeLoadFailure(error);
    port.postMessage({ id: 0, ok: false, error: { name: 'EngineUnavailableError', message: reason, engine: ONNXRUNTIME_ENGINE, reason, remedy: ORT_NODE_REMEDY } } satisfies Ready);
    return;
  }
  port.postMessage({ id: 0, ok: true, value: { name: ONNXRUNTIME_ENGINE, device: 'CPU', version: ortNodeVersion(ort) } } satisfies Ready);
  const open = (file: string): Promise<OrtModelSession> => {
    const opening = OrtModelSession.open(ort, file, nativeSessionOptions(options), options.perfCounters === true);
    // Awaited by the requests that need it; a failure is theirs to report.
    opening.catch(() => undefined);
    return opening;
  };
  let session: Promise<OrtModelSession> | undefined;
  // The model the calling thread will ask for first, opened now: the calling thread may be busy preprocessing and
  // only send its request once it is done. The first load of that file takes this session; any other load opens anew.
  let preloaded = data.preload?.file;
  // The warm-up runs under way, which a release waits for (the session is not freed under a run).
  let warming: Promise<void> = Promise.resolve();
  const preload = (what: Preload | undefined): void => {
    preloaded = what?.file;
    if (what === undefined) return;
    const opening = open(what.file);
    session = opening;
    const shape = what.warmup;
    if (shape === undefined) return;
    // Two runs of zeros: ONNX Runtime plans its memory on the first run of a shape and maps it on the second. Their
    // outputs are dropped and their failures too (the first real run reports its own).
    const zeros = new Float32Array(shape.reduce((product, size) => product * size, 1));
    warming = opening
      // Both queued at once: a real batch sent meanwhile runs after them, not between.
      .then(async (opened) => {
        await Promise.all([opened.run(zeros, shape), opened.run(zeros, shape)]);
      })
      .catch(() => undefined);
  };
  preload(data.preload);
  const release = async (): Promise<void> => {
    const previous = session;
    session = undefined;
    await warming;
    await previous?.then((opened) => opened.dispose(), () => undefined);
  };
  port.on('message', (request: Request) => {
    if (request.op === 'configure') {
      options = request.options;
      preload(request.preload);
      return;
    }
    const answer = async (): Promise<{ value: unknown; transfer: ArrayBuffer[]; returned?: Float32Array }> => {
      switch (request.op) {
        case 'load': {
          const reuse = preloaded === request.file && session !== undefined;
          preloaded = undefined;
          if (!reuse) {
            await release();
            session = open(request.file);
          }
          const opening = session!;
          await opening.catch(async (error: unknown) => {
            if (session === opening) session = undefined;
            throw error;
          });
          return { value: undefined, transfer: [] };
        }
        case 'run': {
          if (session === undefined) throw new OrtSessionFailure('the session was disposed');
          const output = await (await session).run(request.input, request.shape);
          // The session's output buffer is this output's alone: it moves to the caller without a copy, and so does
          // the input, which the session no longer needs, back to be filled again.
          const own = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength ? output : output.slice();
          if (request.input.buffer === own.buffer) return { value: own, transfer: [own.buffer as ArrayBuffer] };
          return { value: own, transfer: [own.buffer as ArrayBuffer, request.input.buffer as ArrayBuffer], returned: request.input };
        }
        case 'perf':
          return { value: await (await session)?.perfCounters(), transfer: [] };
        case 'dispose':
          preloaded = undefined;
          await release();
          return { value: undefined, transfer: [] };
      }
    };
    answer().then(
      ({ value, transfer, returned }) => port.postMessage({ id: request.id, ok: true, value, ...(returned === undefined ? {} : { returned }) } satisfies Reply, transfer),
      (error: unknown) => port.postMessage({ id: request.id, ok: false, error: toThreadError(error) } satisfies Reply),
    );
  });
}

if (parentPort !== null && (workerData as { role?: unknown } | undefined)?.role === ORT_THREAD_ROLE) {
  void serve(parentPort, workerData as OrtThreadData);
}
