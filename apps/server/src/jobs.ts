/**
 * The job service: a bounded queue over the job store. Jobs run `concurrency` at a time on the one loaded
 * engine; at most `queueLimit` wait; finished jobs expire after `jobTtlSeconds`. What goes wrong outside a job's
 * own result (an expired job that cannot be removed, an unreadable record, an unexpected failure) goes to the log.
 *
 * With a shared queue (`brats serve --queue`), the service runs no job itself: each upload becomes a job of the
 * shared queue, run by any `brats worker`, and its record (in the data folder that every server and worker shares)
 * is brought up to date from the queue when someone asks for it, on whichever server they ask.
 */
import { existsSync } from 'node:fs';
import PQueue from 'p-queue';
import { BratsError } from '@brats/io';
import { cohortJobId, type CohortJob, type CohortJobResult } from '@brats/ncs2-runtime';
import { ApiError, QueueFullError } from './errors.js';
import type { JobStore} from './job-store.js';
import { type JobRecord } from './job-store.js';
import type { ServerMetrics } from './metrics.js';
import { describeJob, segmentJob, segmentationResultOf, succeededFields, type LoadedModel, type SegmentOptions } from './segment.js';

/** How a job of a shared queue ended. */
export type SharedJobOutcome =
  | { status: 'completed'; result: CohortJobResult; processedOn?: number; finishedOn?: number }
  | { status: 'failed'; reason: string; processedOn?: number; finishedOn?: number };

/**
 * A queue that several servers and workers share (`CohortQueue` of @brats/queue is one): the server adds jobs and
 * asks where they are; workers elsewhere run them.
 */
export interface SharedJobQueue {
  /** Adds the jobs under their `cohortJobId`; a job the queue holds already is left as it is. */
  submit(jobs: readonly CohortJob[]): Promise<unknown>;
  /** `waiting`, `active`, `completed`, `failed`, … or `unknown` when the queue does not hold it. */
  state(id: string): Promise<string>;
  /** How the job ended, or undefined while it has not. */
  outcome(id: string): Promise<SharedJobOutcome | undefined>;
  /** Removes a job no worker runs (true), or leaves a running one (false). */
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The part of a pino (or fastify `app.log`) logger the job service writes to: a fields object, then the message.
 */
export interface JobLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

type LogLevel = 'info' | 'warn' | 'error';

/** Entries kept for a logger that is not attached yet; past this, the oldest go (and the count says so). */
const HELD_ENTRIES = 200;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Settings of {@link JobService}. */
export interface JobServiceOptions extends SegmentOptions {
  concurrency: number;
  queueLimit: number;
  jobTtlSeconds: number;
  /** Engine a shared queue's workers open the bundle with (default `auto`). */
  engine?: string;
}

/** `CODE: message` (how a queue worker records a failure) as the record's error. */
function parseFailure(reason: string): { code: string; message: string } {
  const match = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(reason);
  return match === null ? { code: 'INTERNAL', message: reason } : { code: match[1]!, message: match[2]! };
}

/** Runs segmentation jobs and keeps their records. */
export class JobService {
  readonly store: JobStore;
  readonly #queue: PQueue;
  readonly #model: LoadedModel;
  readonly #options: JobServiceOptions;
  readonly #metrics: ServerMetrics;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** When recent jobs finished (ms), for the Retry-After estimate. */
  readonly #recentFinishes: number[] = [];
  /** Jobs accepted whose records are being written: they count against the limit before they are queued. */
  #reserved = 0;
  /** Uploads being received and checked: each may become a job, so each holds a place in the queue. */
  #uploads = 0;
  /** Ids of the jobs queued here and not yet started. */
  readonly #waiting = new Set<string>();
  /** Jobs whose 202 never reached the client: removed once they have run (or at once while still queued). */
  readonly #withdrawn = new Set<string>();
  #logger: JobLogger | undefined;
  /** What was logged before a logger was attached (start-up runs before the app, and its logger, exist). */
  readonly #held: Array<[LogLevel, Record<string, unknown>, string]> = [];
  #dropped = 0;
  #stopping = false;
  readonly #shared: SharedJobQueue | undefined;

  /**
   * @param logger where failures outside a job's result are logged; without one they are held until
   *   {@link useLogger} attaches one (buildApp attaches the app's).
   */
  constructor(store: JobStore, model: LoadedModel, options: JobServiceOptions, metrics: ServerMetrics, logger?: JobLogger, shared?: SharedJobQueue) {
    this.#shared = shared;
    this.store = store;
    this.#model = model;
    this.#options = options;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#queue = new PQueue({ concurrency: options.concurrency });
  }

  /** Logs to `logger` from now on, after writing to it what was held while none was attached. */
  useLogger(logger: JobLogger): void {
    this.#logger = logger;
    if (this.#dropped > 0) logger.warn({ dropped: this.#dropped }, `${this.#dropped} earlier log entries of the job service were dropped before a logger was attached`);
    this.#dropped = 0;
    for (const [level, fields, message] of this.#held.splice(0)) logger[level](fields, message);
  }

  #log(level: LogLevel, fields: Record<string, unknown>, message: string): void {
    if (this.#logger !== undefined) {
      this.#logger[level](fields, message);
      return;
    }
    this.#held.push([level, fields, message]);
    if (this.#held.length > HELD_ENTRIES) {
      this.#held.shift();
      this.#dropped++;
    }
  }

  /** Reads the stored jobs, queues again those a stop interrupted, removes expired ones and starts the expiry sweep. */
  async start(): Promise<void> {
    const pending = await this.store.open({
      onDiscard: (id, reason, error) => this.#log('warn', { jobId: id, err: error }, `job ${id}: ${reason} (${messageOf(error)}); its folder was removed`),
      shared: this.#shared !== undefined,
    });
    await this.removeExpired();
    for (const record of pending) {
      // With a shared queue the job lives there; a record whose job it lost (a stop between the two writes) is queued again.
      if (this.#shared !== undefined) await this.#refresh(record);
      else this.#schedule(record.id);
    }
    const period = Math.min(60, Math.max(1, this.#options.jobTtlSeconds / 4)) * 1000;
    // removeExpired logs each job it cannot remove; anything else that fails the sweep is logged here.
    this.#sweepTimer = setInterval(
      () => void this.removeExpired().catch((error: unknown) => this.#log('error', { err: error }, `expiry sweep failed: ${messageOf(error)}`)),
      period,
    );
    this.#sweepTimer.unref();
  }

  /** Jobs waiting to run (a queued job deleted or withdrawn no longer counts, although its turn stays in line). */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Jobs running. */
  get running(): number {
    return this.#queue.pending;
  }

  /**
   * True when one more upload would be refused: the jobs waiting and the uploads still arriving fill the queue
   * limit. With a shared queue its workers set the pace, and only uploads arriving at once are limited.
   */
  get full(): boolean {
    const waiting = this.#shared === undefined ? this.#waiting.size : 0;
    return waiting + this.#reserved + this.#uploads >= this.#options.queueLimit;
  }

  /**
   * Takes a place for an upload that starts arriving, so that a burst of uploads is refused at its first byte
   * (503) instead of being received, checked and refused (or left unanswered) later. Call the returned function
   * once the upload became a job or failed; calling it again does nothing.
   * @throws {QueueFullError} when the queue and the uploads in progress fill the limit.
   */
  admitUpload(): () => void {
    this.assertRoom();
    this.#uploads++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#uploads--;
    };
  }

  /**
   * A job whose acceptance never reached its client (the connection closed before the 202 was sent): no one knows
   * its id, so it is removed, at once while it waits, or when it has run. Nothing is thrown: failures are logged.
   */
  async withdraw(id: string, why: string): Promise<void> {
    this.#log('warn', { jobId: id }, `job ${id} withdrawn: ${why}`);
    try {
      const record = this.store.get(id);
      if (record === undefined) return;
      if (this.#shared !== undefined) {
        if (!(await this.#shared.remove(record.queueJobId ?? cohortJobId(this.#describe(record))))) {
          this.#log('warn', { jobId: id }, `job ${id} already runs on a worker; its result expires unseen`);
          return;
        }
        await this.store.remove(id);
        return;
      }
      if (record.status === 'running') {
        this.#withdrawn.add(id);
      } else {
        // Queued, or already finished (a fast job can end before its connection closes): it goes now.
        await this.store.remove(id);
        this.#waiting.delete(id);
      }
    } catch (error) {
      this.#log('error', { jobId: id, err: error }, `job ${id} could not be withdrawn: ${messageOf(error)}`);
    }
  }

  /** True when jobs go to a shared queue instead of running here. */
  get shared(): boolean {
    return this.#shared !== undefined;
  }

  /**
   * Throws when the queue is full, with a Retry-After estimate from recent job durations.
   * @throws {QueueFullError}
   */
  assertRoom(): void {
    if (!this.full) return;
    const waiting = this.#waiting.size + this.#reserved + this.#uploads;
    throw new QueueFullError(waiting, this.#options.queueLimit, this.#retryAfterSeconds());
  }

  /**
   * Seconds until the queue has drained to half its limit, at the pace jobs have been finishing lately (the
   * interval between recent finishes, which includes the contention of the moment), between 1 and 30 s. Before
   * two jobs have finished the pace is unknown: 2 s, since a refused upload costs the server little.
   */
  #retryAfterSeconds(): number {
    const finishes = this.#recentFinishes;
    if (finishes.length < 2) return 2;
    const interval = (finishes[finishes.length - 1]! - finishes[0]!) / 1000 / (finishes.length - 1);
    return Math.min(30, Math.max(1, Math.ceil((interval * this.#options.queueLimit) / 2)));
  }

  /**
   * Saves a new queued job whose inputs are in place and queues it.
   * @throws {QueueFullError} when the queue filled up while the upload arrived.
   */
  async submit(record: JobRecord): Promise<void> {
    // Check and reserve in one synchronous step: concurrent uploads must not all pass the check before any is queued.
    this.assertRoom();
    if (this.#shared !== undefined) {
      const job = this.#describe(record);
      await this.store.save({ ...record, queueJobId: cohortJobId(job) });
      await this.#shared.submit([job]);
      this.#metrics.jobsSubmitted.inc();
      return;
    }
    this.#reserved++;
    try {
      await this.store.save(record);
    } finally {
      this.#reserved--;
    }
    this.#metrics.jobsSubmitted.inc();
    this.#schedule(record.id);
  }

  /** The cohort job of a record: what a worker of the shared queue runs. */
  #describe(record: JobRecord): CohortJob {
    return describeJob(record, this.store.directory(record.id), this.#model.bundle, { ...this.#options, engine: this.#options.engine ?? 'auto' });
  }

  /**
   * A job's record, up to date: with a shared queue, read from the shared data folder when another server took
   * the upload, and, while it is queued or running, brought up to date from the queue (and saved once finished).
   * Undefined when there is none or it has expired.
   */
  async find(id: string): Promise<JobRecord | undefined> {
    if (this.#shared === undefined) return this.get(id);
    // Every server sharing the data folder writes records (new uploads, finished jobs, deletions): the disk decides.
    let record = await this.store.load(id);
    if (record === undefined) {
      this.store.forget(id);
      return undefined;
    }
    if (record.status === 'queued' || record.status === 'running') record = await this.#refresh(record);
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= Date.now()) return undefined;
    return record;
  }

  /**
   * Removes job `id` and its files; with a shared queue, takes it out of the queue first.
   * @throws {ApiError} 409 JOB_RUNNING when a worker runs it now.
   */
  async remove(record: JobRecord): Promise<void> {
    if (record.status === 'running' && this.#shared === undefined) throw new ApiError(409, 'JOB_RUNNING', `job ${record.id} is running; delete it once it has finished`);
    if (this.#shared !== undefined && !(await this.#shared.remove(record.queueJobId ?? cohortJobId(this.#describe(record))))) {
      throw new ApiError(409, 'JOB_RUNNING', `job ${record.id} is running on a worker; delete it once it has finished`);
    }
    await this.store.remove(record.id);
    this.#waiting.delete(record.id);
  }

  /** Brings a queued or running record up to date from the shared queue, saving it when it changed. */
  async #refresh(record: JobRecord): Promise<JobRecord> {
    const shared = this.#shared!;
    const job = this.#describe(record);
    const queueJobId = record.queueJobId ?? cohortJobId(job);
    const state = await shared.state(queueJobId);
    if (state === 'unknown') {
      // The queue lost it (cleared, or a stop came between saving the record and adding the job): the inputs are here.
      await shared.submit([job]);
      if (record.status === 'queued' && record.queueJobId === queueJobId) return record;
      const queued: JobRecord = { ...record, status: 'queued', queueJobId };
      await this.store.save(queued);
      return queued;
    }
    if (state === 'active') {
      if (record.status === 'running') return record;
      const running: JobRecord = { ...record, status: 'running', queueJobId, startedAt: new Date().toISOString() };
      await this.store.save(running);
      return running;
    }
    if (state !== 'completed' && state !== 'failed') return record;
    const outcome = await shared.outcome(queueJobId);
    if (outcome === undefined) return record;
    const finished = outcome.finishedOn ?? Date.now();
    const started = outcome.processedOn ?? finished;
    const ended: JobRecord = {
      ...record,
      queueJobId,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      expiresAt: new Date(finished + this.#options.jobTtlSeconds * 1000).toISOString(),
    };
    let next: JobRecord;
    if (outcome.status === 'completed') {
      const result = segmentationResultOf(outcome.result);
      next = {
        ...ended,
        ...succeededFields(record, result, started, finished),
        engine: `${outcome.result.engine.name} (${outcome.result.engine.device})`,
      };
      this.#metrics.inferenceDuration.observe(result.inferenceSeconds);
    } else {
      next = { ...ended, status: 'failed', error: parseFailure(outcome.reason) };
    }
    this.#metrics.jobsFinished.inc({ status: next.status });
    // Any server may write the finished record; every one writes the same (its times come from the queue).
    // Unless it was deleted meanwhile: saving would bring its folder back.
    if (existsSync(this.store.directory(record.id))) await this.store.save(next);
    return next;
  }

  /** A job's record, or undefined when there is none or it has expired. */
  get(id: string): JobRecord | undefined {
    const record = this.store.get(id);
    if (record?.expiresAt !== undefined && Date.parse(record.expiresAt) <= Date.now()) return undefined;
    return record;
  }

  /**
   * Removes every finished job past its expiry time and returns how many it removed. A job whose folder cannot be
   * removed is logged (error, with its id) and skipped, so one bad folder does not keep the others.
   */
  async removeExpired(now = Date.now()): Promise<number> {
    if (this.#shared !== undefined) {
      // Records other servers wrote into the shared folder expire here too, and jobs finished in the queue that no
      // one has asked about get their final record (and with it an expiry time).
      await this.store.rescan();
      for (const record of this.store.list()) {
        if (record.status !== 'queued' && record.status !== 'running') continue;
        await this.#refresh(record).catch((error: unknown) => this.#log('warn', { jobId: record.id, err: error }, `job ${record.id}: its state could not be read from the queue: ${messageOf(error)}`));
      }
    }
    let removed = 0;
    for (const record of this.store.list()) {
      if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now) {
        try {
          await this.store.remove(record.id);
          removed++;
        } catch (error) {
          this.#log('error', { jobId: record.id, err: error }, `expired job ${record.id} could not be removed: ${messageOf(error)}`);
        }
      }
    }
    return removed;
  }

  /** Resolves when no job waits or runs. */
  async idle(): Promise<void> {
    await this.#queue.onIdle();
  }

  /** Stops taking queued jobs, waits for the running ones and stops the sweep; queued jobs run after a restart. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#queue.clear();
    await this.#queue.onIdle();
    await this.#shared?.close();
  }

  #schedule(id: string): void {
    this.#waiting.add(id);
    this.#queue.add(() => this.#run(id)).catch((error: unknown) => {
      // stop() clears the queue, which rejects the jobs still waiting: their records stay queued for the next start.
      if (this.#stopping && error instanceof Error && error.name === 'AbortError') {
        this.#log('info', { jobId: id }, `job ${id} stays queued until the next start`);
        return;
      }
      // #run turns a job's own failure into its result; what is left (its record cannot be written) is logged.
      this.#log('error', { jobId: id, err: error }, `job ${id} could not be run or recorded: ${messageOf(error)}`);
    });
  }

  async #run(id: string): Promise<void> {
    this.#waiting.delete(id);
    const queued = this.store.get(id);
    // Deleted while it waited.
    if (queued === undefined || queued.status !== 'queued') return;
    const started = Date.now();
    let record: JobRecord = { ...queued, status: 'running', startedAt: new Date(started).toISOString(), engine: `${this.#model.engine.name} (${this.#model.engine.device})` };
    await this.store.save(record);
    try {
      const result = await segmentJob(record, this.store.directory(id), this.#model, this.#options);
      const finished = Date.now();
      record = {
        ...record,
        ...succeededFields(record, result, started, finished),
        finishedAt: new Date(finished).toISOString(),
        expiresAt: new Date(finished + this.#options.jobTtlSeconds * 1000).toISOString(),
      };
      this.#metrics.inferenceDuration.observe(result.inferenceSeconds);
    } catch (error) {
      const finished = Date.now();
      // A job never takes the server down: its error is its result. Unexpected errors keep their message too.
      const code = error instanceof BratsError ? error.code : 'INTERNAL';
      const message = messageOf(error);
      // An unexpected error is a fault of the server, not of the upload: its stack goes to the log.
      if (code === 'INTERNAL') this.#log('error', { jobId: id, code, err: error }, `job ${id} failed with an internal error: ${message}`);
      else this.#log('info', { jobId: id, code }, `job ${id} failed: ${message}`);
      record = {
        ...record,
        status: 'failed',
        finishedAt: new Date(finished).toISOString(),
        expiresAt: new Date(finished + this.#options.jobTtlSeconds * 1000).toISOString(),
        error: { code, message },
      };
    }
    this.#recentFinishes.push(Date.now());
    if (this.#recentFinishes.length > 20) this.#recentFinishes.shift();
    this.#metrics.jobDuration.observe((Date.now() - started) / 1000);
    this.#metrics.jobsFinished.inc({ status: record.status });
    if (this.store.get(id) === undefined) return;
    if (this.#withdrawn.delete(id)) {
      await this.store.remove(id);
      return;
    }
    await this.store.save(record);
  }
}
