/**
 * One ONNX Runtime session run on batches of slices, with no Node.js module: the native and WebAssembly engines
 * and the browser page (`openWebEngine`) all run their batches through these two functions.
 */
import type * as OnnxRuntimeWeb from 'onnxruntime-web';
import type { ModelLayout } from './engine.js';
import { EngineError } from './errors.js';
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
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    throw new EngineError(engine, `${file} has ${session.inputNames.length} inputs and ${session.outputNames.length} outputs; one of each expected`);
  }
}

/** The last run asked of each session, which the next one waits for. */
const runsUnderWay = new WeakMap<OrtSession, Promise<unknown>>();

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
  // Callers may keep several batches in flight, but onnxruntime-web fails a run that starts while another one of the
  // same session is under way: the runs of one session go one after another, in the order they were asked for.
  const previous = runsUnderWay.get(session) ?? Promise.resolve();
  const running = previous.then(
    () => session.run(feeds),
    () => session.run(feeds),
  );
  runsUnderWay.set(session, running);
  const results = await running;
  const output = results[session.outputNames[0]!];
  if (output === undefined || output.type !== 'float32') throw new EngineError(engine, 'the model gave no float32 output');
  return output.data as Float32Array;
}
