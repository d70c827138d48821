/**
 * The job service: a bounded queue over the job store. Jobs run `concurrency` at a time on the one loaded
 * engine; at most `queueLimit` wait; finished jobs expire after `jobTtlSeconds`. What goes wrong outside a job's
 * own result (an expired job that cannot be removed, an unreadable record, an unexpected failure) goes to the log.
 */
import PQueue from 'p-queue';
import { BratsError } from '@brats/io';
import { QueueFullError } from './errors.js';
import type { JobStore} from './job-store.js';
import { type JobRecord } from './job-store.js';
import type { ServerMetrics } from './metrics.js';
import { segmentJob, type LoadedModel, type SegmentOptions } from './segment.js';

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
  #logger: JobLogger | undefined;
  /** What was logged before a logger was attached (start-up runs before the app, and its logger, exist). */
  readonly #held: Array<[LogLevel, Record<string, unknown>, string]> = [];
  #dropped = 0;
  #stopping = false;

  /**
   * @param logger where failures outside a job's result are logged; without one they are held until
   *   {@link useLogger} attaches one (buildApp attaches the app's).
   */
  constructor(store: JobStore, model: LoadedModel, options: JobServiceOptions, metrics: ServerMetrics, logger?: JobLogger) {
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
    });
    await this.removeExpired();
    for (const record of pending) this.#schedule(record.id);
    const period = Math.min(60, Math.max(1, this.#options.jobTtlSeconds / 4)) * 1000;
    // removeExpired logs each job it cannot remove; anything else that fails the sweep is logged here.
    this.#sweepTimer = setInterval(
      () => void this.removeExpired().catch((error: unknown) => this.#log('error', { err: error }, `expiry sweep failed: ${messageOf(error)}`)),
      period,
    );
    this.#sweepTimer.unref();
  }

  /** Jobs waiting to run. */
  get waiting(): number {
    return this.#queue.size;
  }

  /** Jobs running. */
  get running(): number {
    return this.#queue.pending;
  }

  /** True when one more job would be refused. */
  get full(): boolean {
    return this.#queue.size + this.#reserved >= this.#options.queueLimit;
  }

  /**
   * Throws when the queue is full, with a Retry-After estimate from recent job durations.
   * @throws {QueueFullError}
   */
  assertRoom(): void {
    if (!this.full) return;
    const waiting = this.#queue.size + this.#reserved;
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
    this.#reserved++;
    try {
      await this.store.save(record);
    } finally {
      this.#reserved--;
    }
    this.#metrics.jobsSubmitted.inc();
    this.#schedule(record.id);
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
  }

  #schedule(id: string): void {
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
    const queued = this.store.get(id);
    // Deleted while it waited.
    if (queued === undefined || queued.status !== 'queued') return;
    const started = Date.now();
    let record: JobRecord = { ...queued, status: 'running', startedAt: new Date(started).toISOString(), engine: `${this.#model.engine.name} (${this.#model.engine.device})` };
    await this.store.save(record);
    try {
      const result = await segmentJob(record, this.store.directory(id), this.#model, this.#options);
      const finished = Date.now();
      const totalSeconds = (finished - started) / 1000;
      record = {
        ...record,
        status: 'succeeded',
        finishedAt: new Date(finished).toISOString(),
        expiresAt: new Date(finished + this.#options.jobTtlSeconds * 1000).toISOString(),
        timings: {
          queuedSeconds: (started - Date.parse(record.createdAt)) / 1000,
          loadSeconds: result.loadSeconds,
          inferenceSeconds: result.inferenceSeconds,
          totalSeconds,
        },
        regions: result.regions,
        volumesMl: result.volumesMl,
        shape: result.shape,
        labels: result.labels,
        labelConvention: result.labelConvention,
        reasons: result.reasons,
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
    await this.store.save(record);
  }
}
