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
export interface InProcessOptions extends Omit<CohortJobContext, 'onProgress'> {
  /** Jobs running at once (default 1: one case after the other, each using the engine's threads). */
  concurrency?: number;
  /** Called as each job ends, with the jobs ended so far and in all. */
  onOutcome?: (outcome: CohortOutcome, done: number, total: number) => void;
  /** Called as a running job gets on, with its slices segmented so far and in all. */
  onJobProgress?: (job: CohortJob, done: number, total: number) => void;
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
  const { concurrency: _concurrency, onOutcome, onJobProgress, ...context } = options;
  const outcomes: CohortOutcome[] = new Array<CohortOutcome>(jobs.length);
  let next = 0;
  let done = 0;
  let stopError: { error: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (stopError === undefined && next < jobs.length) {
      const index = next++;
      const job = jobs[index]!;
      const jobId = cohortJobId(job);
      let outcome: CohortOutcome;
      try {
        const jobContext: CohortJobContext = onJobProgress === undefined ? context : { ...context, onProgress: (slices, all) => onJobProgress(job, slices, all) };
        outcome = { status: 'completed', jobId, job, result: await runCohortJob(job, jobContext) };
      } catch (error) {
        if (!(error instanceof BratsError)) {
          stopError ??= { error };
          return;
        }
        outcome = { status: 'failed', jobId, job, error, kind: classifyCohortError(error) };
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
