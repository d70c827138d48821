/**
 * What every ONNX Runtime session of the package does alike, with no import at all, so that the browser's session
 * code (ort-session.ts) and the native one of the engine's worker thread (ort-native.ts) share it.
 */

/** Why a session is not the U-Net's one input and one output, or undefined when it is. */
export function sessionShapeProblem(file: string, session: { readonly inputNames: readonly string[]; readonly outputNames: readonly string[] }): string | undefined {
  if (session.inputNames.length === 1 && session.outputNames.length === 1) return undefined;
  return `${file} has ${session.inputNames.length} inputs and ${session.outputNames.length} outputs; one of each expected`;
}

/** The last run asked of each session, which the next one waits for. */
const runsUnderWay = new WeakMap<object, Promise<unknown>>();

/**
 * Starts `run` on `session` once the runs asked of it before have ended. Callers may keep several batches in
 * flight, but onnxruntime-web fails a run that starts while another one of the same session is under way: the runs
 * of one session go one after another, in the order they were asked for.
 */
export function runInOrder<T>(session: object, run: () => Promise<T>): Promise<T> {
  const previous = runsUnderWay.get(session) ?? Promise.resolve();
  const running = previous.then(run, run);
  runsUnderWay.set(session, running);
  return running;
}
