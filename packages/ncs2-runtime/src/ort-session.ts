/**
 * One ONNX Runtime session run on batches of slices, with no Node.js module: the native and WebAssembly engines
 * and the browser page (`openWebEngine`) all run their batches through these two functions.
 */
import type * as OnnxRuntimeWeb from 'onnxruntime-web';
import type { ModelLayout } from './engine.js';
import { EngineError } from './errors.js';
import { runInOrder, sessionShapeProblem } from './ort-run.js';
import { checkBatch } from './shape.js';

/** What both ONNX Runtime packages share (their onnxruntime-common API). */
export type OrtModule = Pick<typeof OnnxRuntimeWeb, 'InferenceSession' | 'Tensor'>;
/** A session of either package. */
export type OrtSession = Awaited<ReturnType<OrtModule['InferenceSession']['create']>>;
/** Session options both packages take. */
export type OrtSessionOptions = Parameters<OrtModule['InferenceSession']['create']>[1] & object;

/**
 * Checks that a session has the one input and one output the U-Net has.
 * @throws {EngineError} naming `engine` and `file` otherwise.
 */
export function checkOrtSession(engine: string, file: string, session: OrtSession): void {
  const problem = sessionShapeProblem(file, session);
  if (problem !== undefined) throw new EngineError(engine, problem);
}

/**
 * Runs one batch of NHWC slices through a session and returns its NHWC probabilities.
 * @throws {EngineError} without a session or a float32 output; {ShapeMismatchError} for a wrong input size.
 */
export async function runOrtSession(
  ort: OrtModule,
  session: OrtSession | undefined,
  engine: string,
  layout: ModelLayout | undefined,
  input: Float32Array,
  batch: number,
): Promise<Float32Array> {
  const shape = checkBatch(engine, layout, input, batch);
  if (session === undefined) throw new EngineError(engine, 'the session was disposed');
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, shape) };
  const results = await runInOrder(session, () => session.run(feeds));
  const output = results[session.outputNames[0]!];
  if (output === undefined || output.type !== 'float32') throw new EngineError(engine, 'the model gave no float32 output');
  return output.data as Float32Array;
}
