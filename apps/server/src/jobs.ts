/**
 * The job service: a bounded queue over the job store. Jobs run `concurrency` at a time on the one loaded
 * engine; at most `queueLimit` wait; finished jobs expire after `jobTtlSeconds`.
 */
import PQueue from 'p-queue';
import { BratsError } from '@brats/io';
import { QueueFullError } from './errors.js';
import type { JobStore} from './job-store.js';
import { type JobRecord } from './job-store.js';
import type { ServerMetrics } from './metrics.js';
import { segmentJob, type LoadedModel, type SegmentOptions } from './segment.js';

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

  constructor(store: JobStore, model: LoadedModel, options: JobServiceOptions, metrics: ServerMetrics) {
    this.store = store;
    this.#model = model;
    this.#options = options;
    this.#metrics = metrics;
    this.#queue = new PQueue({ concurrency: options.concurrency });
  }

  /** Reads the stored jobs, queues again those a stop interrupted, removes expired ones and starts the expiry sweep. */
  async start(): Promise<void> {
    const pending = await this.store.open();
    await this.removeExpired();
    for (const record of pending) this.#schedule(record.id);
    const period = Math.min(60, Math.max(1, this.#options.jobTtlSeconds / 4)) * 1000;
    this.#sweepTimer = setInterval(() => void this.removeExpired().catch(() => undefined), period);
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

  /** Removes every finished job past its expiry time. */
  async removeExpired(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const record of this.store.list()) {
      if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now) {
        await this.store.remove(record.id);
        removed++;
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
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#queue.clear();
    await this.#queue.onIdle();
  }

  #schedule(id: string): void {
    void this.#queue.add(() => this.#run(id));
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
      };
      this.#metrics.inferenceDuration.observe(result.inferenceSeconds);
    } catch (error) {
      const finished = Date.now();
      // A job never takes the server down: its error is its result. Unexpected errors keep their message too.
      const code = error instanceof BratsError ? error.code : 'INTERNAL';
      const message = error instanceof Error ? error.message : String(error);
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
