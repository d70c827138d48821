/**
 * The default cohort runner: the jobs run in this process, `concurrency` at a time, on models opened once. The
 * queue workers of @brats/queue run the same {@link runCohortJob} on jobs they take from Redis.
 */
import { ArgumentError, BratsError } from '@brats/io';
import { classifyCohortError, type CohortErrorKind } from './errors.js';
import { cohortJobId, type CohortJob } from './job.js';
import { runCohortJob, type CohortJobContext, type CohortJobResult } from './run-job.js';

/** How one job ended. */
export type CohortOutcome =
  | { status: 'completed'; jobId: string; job: CohortJob; result: CohortJobResult }
  | { status: 'failed'; jobId: string; job: CohortJob; error: BratsError; kind: CohortErrorKind };

/** Options of {@link runCohortInProcess}. */
export interface InProcessOptions extends Omit<CohortJobContext, 'onProgress' | 'onSegmented'> {
  /** Jobs running at once (default 1: one case after the other, each using the engine's threads). */
  concurrency?: number;
  /** Called as each job ends, with the jobs ended so far and in all. */
  onOutcome?: (outcome: CohortOutcome, done: number, total: number) => void;
  /** Called as a running job gets on, with its slices segmented so far and in all. */
  onJobProgress?: (job: CohortJob, done: number, total: number) => void;
  /**
   * Free the engines (`engines.dispose()`) as soon as no job needs them any more, while the last ones write (default
   * false): for a run that uses them for nothing else, which ends sooner (a worker thread and its model freed while
   * the label map is compressed, not after). The caller still awaits `engines.dispose()` for it to be done.
   */
  releaseEngines?: boolean;
}

/**
 * Runs `jobs` in this process and returns their outcomes in the order of `jobs`. A case whose error is a
 * BratsError (unreadable input, an engine failure) fails alone and the others go on, as in `brats predict`;
 * any other error stops the run: no new job starts, the running ones finish, and the first such error is thrown.
 * @throws {ArgumentError} for a concurrency that is not a positive integer; the first unexpected job error.
 */
export async function runCohortInProcess(jobs: readonly CohortJob[], options: InProcessOptions): Promise<CohortOutcome[]> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ArgumentError('runCohortInProcess', 'options.concurrency', `must be a positive integer, found ${concurrency}`);
  }
  const { concurrency: _concurrency, onOutcome, onJobProgress, releaseEngines, ...context } = options;
  const outcomes: CohortOutcome[] = new Array<CohortOutcome>(jobs.length);
  let next = 0;
  let done = 0;
  let stopError: { error: unknown } | undefined;
  // Jobs done with the engines (segmented, or ended without): at jobs.length none will use them again.
  let released = 0;
  const release = (): void => {
    if (++released === jobs.length && releaseEngines === true) void context.engines.dispose().catch(() => undefined);
  };
  const lane = async (): Promise<void> => {
    while (stopError === undefined && next < jobs.length) {
      const index = next++;
      const job = jobs[index]!;
      const jobId = cohortJobId(job);
      let outcome: CohortOutcome;
      let segmented = false;
      try {
        const jobContext: CohortJobContext = { ...context, onSegmented: () => ((segmented = true), release()) };
        if (onJobProgress !== undefined) jobContext.onProgress = (slices, all) => onJobProgress(job, slices, all);
        outcome = { status: 'completed', jobId, job, result: await runCohortJob(job, jobContext) };
      } catch (error) {
        if (!(error instanceof BratsError)) {
          stopError ??= { error };
          return;
        }
        outcome = { status: 'failed', jobId, job, error, kind: classifyCohortError(error) };
      } finally {
        if (!segmented) release();
      }
      outcomes[index] = outcome;
      done++;
      onOutcome?.(outcome, done, jobs.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, jobs.length)) }, lane));
  if (stopError !== undefined) throw stopError.error;
  return outcomes;
}
