/**
 * The submitting and watching side of a cohort queue: BullMQ on Redis. One BullMQ job per case, its id the
 * case's {@link cohortJobId} (the case and its output path), so submitting a cohort again adds only what the
 * queue does not hold yet. Finished jobs stay in Redis (their results and failure reasons are the cohort's
 * record) until the queue is cleared.
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import { cohortJobFingerprint, cohortJobId, decodeCohortResult, type CohortJob, type CohortJobResult } from '@brats/ncs2-runtime';
import { ArgumentError } from '@brats/io';
import { checkRedis, parseRedisUrl, redisOptions, type RedisInfo, type RedisTarget } from './redis.js';

/** The queue's name when none is given. */
export const DEFAULT_QUEUE_NAME = 'brats-cohort';
/** The BullMQ job name of a cohort job. */
export const COHORT_JOB_NAME = 'segment';

/** How to reach a queue. */
export interface QueueConnectOptions {
  /** Queue name (default {@link DEFAULT_QUEUE_NAME}); cohorts under different names share a Redis apart. */
  name?: string;
  /** Milliseconds allowed to reach Redis at first (default 3000). */
  connectTimeoutMs?: number;
}

/** Options of {@link CohortQueue.submit}. */
export interface SubmitOptions {
  /** Tries per job for failures that may pass (default 3); a case with bad input fails at its first. */
  attempts?: number;
  /** Milliseconds before the first retry, doubled for each next one (default 2000). */
  backoffMs?: number;
}

/** What {@link CohortQueue.submit} did. */
export interface SubmitSummary {
  /** The id of every job, in the order given. */
  ids: string[];
  /** Jobs added now. */
  added: number;
  /** Jobs the queue held already, by state (`completed`, `failed`, `waiting`, `active`, `delayed`, …). */
  existing: Partial<Record<string, number>>;
  /** Ids of jobs the queue held already with another description (model, engine, settings); they keep theirs. */
  differing: string[];
}

/** Jobs of the queue by state. */
export interface QueueCounts {
  completed: number;
  active: number;
  /** Waiting (and prioritized) jobs. */
  waiting: number;
  /** Waiting for a retry after a failure. */
  delayed: number;
  failed: number;
}

/** A failed case and why. */
export interface FailedCase {
  jobId: string;
  caseId: string;
  /** The last error, `CODE: message`. */
  reason: string;
  /** Attempts made. */
  attempts: number;
  /** ISO time of the failure. */
  finishedAt?: string;
}

/** Where one job is and who ran it. */
export interface JobSummary {
  jobId: string;
  caseId: string;
  /** `completed`, `failed`, `active`, `waiting`, `delayed`, … */
  state: string;
  /** Times a worker took it (a worker that died holding it counts). */
  attemptsStarted: number;
  /** Times it ended, completed or failed (a dead worker's attempt does not end). */
  attemptsMade: number;
  /** The worker that ran it last (`<host>:<pid>:<n>`). */
  processedBy?: string;
  failedReason?: string;
}

/** How one watched job ended. */
export type QueueOutcome = (
  | { status: 'completed'; jobId: string; caseId: string; result: CohortJobResult }
  | { status: 'failed'; jobId: string; caseId: string; reason: string; attempts: number }
) & {
  /** When a worker took it last and when it ended (ms since the epoch), when known. */
  processedOn?: number;
  finishedOn?: number;
};

/** Progress of a set of watched jobs. */
export interface WatchProgress {
  total: number;
  completed: number;
  failed: number;
  /** Being run by some worker now. */
  active: number;
  /** Workers connected to the queue. */
  workers: number;
}

/** Options of {@link CohortQueue.waitFor}. */
export interface WaitOptions {
  /** Milliseconds between looks at the queue (default 500). */
  pollMs?: number;
  /** Called after every look. */
  onProgress?: (progress: WatchProgress) => void;
  /** Called when Redis stops answering (`error`) and when it answers again (undefined); the wait goes on. */
  onConnection?: (error: Error | undefined) => void;
}

const FINISHED = new Set(['completed', 'failed']);

function caseIdOf(job: Job | undefined, fallback: string): string {
  const data = job?.data as Partial<CohortJob> | undefined;
  return typeof data?.case?.id === 'string' ? data.case.id : fallback;
}

async function inBatches<T, R>(items: readonly T[], size: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let start = 0; start < items.length; start += size) out.push(...(await Promise.all(items.slice(start, start + size).map(map))));
  return out;
}

/** A cohort queue in Redis: submit jobs, count them, list and retry failures, wait for a cohort. */
export class CohortQueue {
  readonly target: RedisTarget;
  /** The Redis server as found on opening (version, persistence). */
  readonly info: RedisInfo;
  readonly name: string;
  readonly #queue: Queue;

  private constructor(target: RedisTarget, info: RedisInfo, name: string, queue: Queue) {
    this.target = target;
    this.info = info;
    this.name = name;
    this.#queue = queue;
  }

  /**
   * Checks Redis with one bounded attempt, then opens the queue.
   * @throws {QueueUrlError} for a bad address; {@link RedisUnavailableError} when Redis does not answer in time.
   */
  static async open(url: string, options: QueueConnectOptions = {}): Promise<CohortQueue> {
    const target = parseRedisUrl(url);
    const info = await checkRedis(target, options.connectTimeoutMs ?? 3000);
    const name = options.name ?? DEFAULT_QUEUE_NAME;
    const queue = new Queue(name, { connection: { ...redisOptions(target), enableAutoPipelining: true } });
    // Connection trouble after the check surfaces in the calls that meet it; the event itself would crash the process.
    queue.on('error', () => {});
    await queue.waitUntilReady();
    return new CohortQueue(target, info, name, queue);
  }

  /**
   * Adds one job per description, each under its {@link cohortJobId}; jobs the queue already holds (in any
   * state, finished ones included) are left as they are.
   * @throws {ArgumentError} for two jobs with the same id or a bad attempts/backoff value.
   */
  async submit(jobs: readonly CohortJob[], options: SubmitOptions = {}): Promise<SubmitSummary> {
    const attempts = options.attempts ?? 3;
    const backoffMs = options.backoffMs ?? 2000;
    if (!Number.isInteger(attempts) || attempts < 1) throw new ArgumentError('CohortQueue.submit', 'options.attempts', `must be a positive integer, found ${attempts}`);
    if (!Number.isFinite(backoffMs) || backoffMs < 0) throw new ArgumentError('CohortQueue.submit', 'options.backoffMs', `must be a number >= 0, found ${backoffMs}`);
    const ids = jobs.map(cohortJobId);
    const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
    if (duplicate !== undefined) throw new ArgumentError('CohortQueue.submit', 'jobs', `two jobs have id ${duplicate} (the same case and output)`);
    const states = await inBatches(ids, 500, (id) => this.#queue.getJobState(id));
    const existing: Partial<Record<string, number>> = {};
    const differing: string[] = [];
    const fresh: { name: string; data: CohortJob; opts: JobsOptions }[] = [];
    for (const [index, state] of states.entries()) {
      const id = ids[index]!;
      const job = jobs[index]!;
      if (state === 'unknown') {
        fresh.push({
          name: COHORT_JOB_NAME,
          data: job,
          opts: { jobId: id, attempts, backoff: { type: 'exponential', delay: backoffMs }, removeOnComplete: false, removeOnFail: false },
        });
        continue;
      }
      existing[state] = (existing[state] ?? 0) + 1;
      const held = await this.#queue.getJob(id);
      if (held !== undefined && cohortJobFingerprint(held.data as CohortJob) !== cohortJobFingerprint(job)) differing.push(id);
    }
    for (let start = 0; start < fresh.length; start += 500) await this.#queue.addBulk(fresh.slice(start, start + 500));
    return { ids, added: fresh.length, existing, differing };
  }

  /** Jobs of the queue by state. */
  async counts(): Promise<QueueCounts> {
    const counts = await this.#queue.getJobCounts('completed', 'active', 'waiting', 'prioritized', 'delayed', 'failed');
    return {
      completed: counts.completed ?? 0,
      active: counts.active ?? 0,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      delayed: counts.delayed ?? 0,
      failed: counts.failed ?? 0,
    };
  }

  /** Workers connected to the queue now. */
  async workers(): Promise<number> {
    return this.#queue.getWorkersCount();
  }

  /** The failed cases, newest first, at most `limit`, and how many failed in all. */
  async failures(limit = 100): Promise<{ total: number; cases: FailedCase[] }> {
    const total = await this.#queue.getFailedCount();
    const jobs = limit > 0 ? await this.#queue.getFailed(0, limit - 1) : [];
    const cases = jobs.map((job): FailedCase => {
      const entry: FailedCase = { jobId: job.id ?? '', caseId: caseIdOf(job as Job, job.id ?? ''), reason: job.failedReason ?? 'no reason recorded', attempts: job.attemptsMade };
      if (job.finishedOn !== undefined) entry.finishedAt = new Date(job.finishedOn).toISOString();
      return entry;
    });
    return { total, cases };
  }

  /** Moves every failed job back to waiting (e.g. after fixing their inputs) and returns how many. */
  async retryFailed(): Promise<number> {
    const failed = await this.#queue.getFailedCount();
    if (failed > 0) await this.#queue.retryJobs({ state: 'failed' });
    return failed;
  }

  /**
   * Removes every job of the queue (finished ones too, so the same cases can be submitted afresh).
   * @throws {Error} from BullMQ when jobs are running and `force` is not set.
   */
  async clear(force = false): Promise<void> {
    await this.#queue.obliterate({ force });
  }

  /** The state of job `id` (`completed`, `failed`, `active`, `waiting`, …, or `unknown`). */
  async state(id: string): Promise<string> {
    return this.#queue.getJobState(id);
  }

  /** Where job `id` is and who ran it, or undefined when the queue does not hold it. */
  async describe(id: string): Promise<JobSummary | undefined> {
    const job = await this.#queue.getJob(id);
    if (job === undefined) return undefined;
    const summary: JobSummary = { jobId: id, caseId: caseIdOf(job, id), state: await job.getState(), attemptsStarted: job.attemptsStarted, attemptsMade: job.attemptsMade };
    if (job.processedBy !== undefined) summary.processedBy = job.processedBy;
    if (job.failedReason !== undefined && job.failedReason !== '') summary.failedReason = job.failedReason;
    return summary;
  }

  /** How job `id` ended, or undefined while it has not (or is unknown). */
  async outcome(id: string): Promise<QueueOutcome | undefined> {
    const job = await this.#queue.getJob(id);
    if (job === undefined) return undefined;
    const state = await job.getState();
    const times = { ...(job.processedOn === undefined ? {} : { processedOn: job.processedOn }), ...(job.finishedOn === undefined ? {} : { finishedOn: job.finishedOn }) };
    if (state === 'completed') return { status: 'completed', jobId: id, caseId: caseIdOf(job, id), result: decodeCohortResult(job.returnvalue), ...times };
    if (state === 'failed') return { status: 'failed', jobId: id, caseId: caseIdOf(job, id), reason: job.failedReason ?? 'no reason recorded', attempts: job.attemptsMade, ...times };
    return undefined;
  }

  /** Removes job `id` unless a worker runs it now: true when it is gone (or was never there), false when it runs. */
  async remove(id: string): Promise<boolean> {
    const job = await this.#queue.getJob(id);
    if (job === undefined) return true;
    if ((await job.getState()) === 'active') return false;
    try {
      await job.remove();
    } catch (error) {
      // A worker took it between the two calls: it holds the job's lock now.
      if ((await this.#queue.getJobState(id)) === 'active') return false;
      throw error;
    }
    return true;
  }

  /**
   * Waits until every job in `ids` has completed or failed, wherever it runs, and returns how each ended, in
   * the order of `ids`. A job that is not in the queue counts as failed (it was removed). Redis going away
   * does not end the wait: it is reported to `onConnection` and the wait goes on when it is back.
   */
  async waitFor(ids: readonly string[], options: WaitOptions = {}): Promise<QueueOutcome[]> {
    const pollMs = options.pollMs ?? 500;
    const pending = new Set(ids);
    const finished = new Map<string, QueueOutcome>();
    let lostConnection = false;
    const lost = (error: unknown): void => {
      if (lostConnection) return;
      lostConnection = true;
      options.onConnection?.(error instanceof Error ? error : new Error(String(error)));
    };
    // Commands wait for a reconnection rather than fail, so a lost Redis shows as connection errors, not as throws.
    this.#queue.on('error', lost);
    try {
      for (;;) {
        try {
          await this.#look(pending, finished, ids.length, options, () => {
            if (lostConnection) options.onConnection?.(undefined);
            lostConnection = false;
          });
        } catch (error) {
          lost(error);
        }
        if (pending.size === 0) break;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    } finally {
      this.#queue.off('error', lost);
    }
    return ids.map((id) => finished.get(id)!);
  }

  /** One look at the pending jobs: the finished ones move from `pending` to `finished`. */
  async #look(pending: Set<string>, finished: Map<string, QueueOutcome>, total: number, options: WaitOptions, answered: () => void): Promise<void> {
    let active = 0;
    const look = [...pending];
    const states = await inBatches(look, 500, (id) => this.#queue.getJobState(id));
    answered();
    for (const [index, state] of states.entries()) {
      const id = look[index]!;
      if (state === 'active') active++;
      if (state === 'unknown') {
        finished.set(id, { status: 'failed', jobId: id, caseId: id, reason: 'the job is no longer in the queue (removed or cleared)', attempts: 0 });
        pending.delete(id);
      } else if (FINISHED.has(state)) {
        const outcome = await this.outcome(id);
        if (outcome !== undefined) {
          finished.set(id, outcome);
          pending.delete(id);
        }
      }
    }
    let completed = 0;
    for (const outcome of finished.values()) if (outcome.status === 'completed') completed++;
    options.onProgress?.({ total, completed, failed: finished.size - completed, active, workers: await this.workers() });
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    await this.#queue.close();
  }
}
