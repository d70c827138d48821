/**
 * A cohort worker: takes jobs from the queue and runs each with the runtime's {@link runCohortJob}, the same
 * function the in-process runner calls. It loads each model bundle once, writes outputs atomically and keeps a
 * completion record beside them (a job re-delivered after a crash between writing and acknowledging is not
 * written twice). BullMQ holds a lock on each running job that the worker renews; a worker that dies (kill -9)
 * stops renewing it, and after `lockDurationMs` another worker's stalled-job check (every `stalledIntervalMs`)
 * puts the job back, so no case is lost. A case with bad input fails at once, with its reason; other failures
 * are retried up to the job's attempts.
 */
import os from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { ArgumentError, BratsError } from '@brats/io';
import {
  CohortEngineCache,
  classifyCohortError,
  encodeCohortResult,
  parseCohortJob,
  runCohortJob,
  type CohortErrorKind,
  type CohortJobContext,
  type CohortJobResult,
  type ModelOpener,
} from '@brats/ncs2-runtime';
import { COHORT_JOB_NAME, DEFAULT_QUEUE_NAME } from './cohort-queue.js';
import { checkRedis, parseRedisUrl, redisOptions, type RedisInfo, type RedisTarget } from './redis.js';

/** What a worker reports as it runs. */
export type CohortWorkerEvent =
  | { type: 'started'; jobId: string; caseId: string; attempt: number }
  | { type: 'completed'; jobId: string; caseId: string; result: CohortJobResult }
  | { type: 'failed'; jobId: string; caseId: string; reason: string; kind: CohortErrorKind; willRetry: boolean }
  | { type: 'returned'; jobId: string; caseId: string }
  | { type: 'stalled'; jobId: string }
  | { type: 'connection-lost'; message: string }
  | { type: 'connection-restored' }
  | { type: 'error'; message: string };

/** Options of {@link startCohortWorker}. */
export interface CohortWorkerOptions {
  /** Queue name (default {@link DEFAULT_QUEUE_NAME}). */
  name?: string;
  /** Jobs this worker runs at once (default 1). */
  concurrency?: number;
  /** Run every job on this engine (and device) instead of the one the job names. */
  engine?: { name: string; device?: string };
  /** Threads for one inference (ONNX Runtime intra-op, OpenVINO); absent: the engine's default (every core). */
  threads?: number;
  /** How to open a model bundle (default: the runtime's registry). */
  open?: ModelOpener;
  /**
   * Milliseconds a running job's lock lasts without renewal (default 30000; renewed every half of it). A worker
   * that dies holds its jobs this long at most.
   */
  lockDurationMs?: number;
  /** Milliseconds between this worker's checks for jobs whose worker died (default 30000). */
  stalledIntervalMs?: number;
  /** Times a job may be found stalled and put back before it fails (default 1: a case that kills two workers fails). */
  maxStalledCount?: number;
  /** Milliseconds allowed to reach Redis at first (default 3000). */
  connectTimeoutMs?: number;
  /** Receives what happens. */
  onEvent?: (event: CohortWorkerEvent) => void;
}

/** A running worker. */
export interface CohortWorker {
  /** `<host>:<pid>:<n>`, the name the queue lists it under. */
  readonly id: string;
  readonly target: RedisTarget;
  /** The Redis server as found on start (version, persistence). */
  readonly info: RedisInfo;
  /** Jobs running now. */
  readonly running: number;
  /**
   * Stops taking jobs and lets the running ones finish; after `timeoutMs` (default: no limit) those still running
   * stop between engine batches, before writing anything, and go back to the queue for another worker. Then frees
   * the engines and the connections.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

let workerCount = 0;

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

/** True for an error that says Redis cannot be reached (as opposed to a failing command). */
function isConnectionError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && CONNECTION_CODES.has(code)) || /Connection is closed|connect ETIMEDOUT|Stream isn't writeable/i.test(error.message);
}

function describeFailure(error: unknown): string {
  if (error instanceof BratsError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

function checkPositive(name: string, value: number | undefined, minimum: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < minimum)) {
    throw new ArgumentError('startCohortWorker', `options.${name}`, `must be an integer >= ${minimum}, found ${value}`);
  }
}

/**
 * Starts a worker on the queue at `url`; it runs jobs until {@link CohortWorker.close}.
 * @throws {QueueUrlError} for a bad address; {@link RedisUnavailableError} when Redis does not answer in time;
 *   {@link ArgumentError} for bad options.
 * @example const worker = await startCohortWorker('redis://127.0.0.1:6379', { concurrency: 2 });
 */
export async function startCohortWorker(url: string, options: CohortWorkerOptions = {}): Promise<CohortWorker> {
  checkPositive('concurrency', options.concurrency, 1);
  checkPositive('threads', options.threads, 1);
  checkPositive('lockDurationMs', options.lockDurationMs, 100);
  checkPositive('stalledIntervalMs', options.stalledIntervalMs, 100);
  checkPositive('maxStalledCount', options.maxStalledCount, 0);
  const target = parseRedisUrl(url);
  const info = await checkRedis(target, options.connectTimeoutMs ?? 3000);
  const engines = new CohortEngineCache(options.open);
  const emit = options.onEvent ?? (() => {});
  const id = `${os.hostname()}:${process.pid}:${++workerCount}`;
  const kinds = new Map<string, CohortErrorKind>();
  let running = 0;
  let connectionLost = false;

  const processJob = async (job: Job, token?: string, signal?: AbortSignal): Promise<Record<string, unknown>> => {
    const jobId = job.id ?? '';
    const caseId = typeof (job.data as { case?: { id?: unknown } } | undefined)?.case?.id === 'string' ? (job.data as { case: { id: string } }).case.id : jobId;
    running++;
    emit({ type: 'started', jobId, caseId, attempt: job.attemptsStarted });
    try {
      const description = parseCohortJob(job.data);
      let lastProgress = 0;
      const context: CohortJobContext = {
        engines,
        completionRecords: true,
        onProgress: (done, total) => {
          // Progress is for people watching: at most one write to Redis a second per job.
          const now = Date.now();
          if (now - lastProgress < 1000 && done < total) return;
          lastProgress = now;
          void job.updateProgress({ slices: done, total }).catch(() => {});
        },
      };
      if (options.engine !== undefined) context.engine = options.engine;
      if (options.threads !== undefined) context.threads = options.threads;
      if (signal !== undefined) context.signal = signal;
      const result = await runCohortJob(description, context);
      return encodeCohortResult(result);
    } catch (error) {
      const kind = classifyCohortError(error);
      kinds.set(jobId, kind);
      if (kind === 'aborted' && token !== undefined) {
        // Shutting down: the job goes back to the queue now rather than after its lock expires.
        await job.moveToWait(token);
        emit({ type: 'returned', jobId, caseId });
        throw new WaitingError();
      }
      const reason = describeFailure(error);
      // Bad input fails the same way on every try and every machine: it fails now, with its reason.
      if (kind === 'input') throw new UnrecoverableError(reason);
      throw new Error(reason, { cause: error });
    } finally {
      running--;
    }
  };

  const worker = new Worker(options.name ?? DEFAULT_QUEUE_NAME, (job: Job, token?: string, signal?: AbortSignal) => processJob(job, token, signal), {
    connection: redisOptions(target),
    name: id,
    concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDurationMs ?? 30_000,
    stalledInterval: options.stalledIntervalMs ?? 30_000,
    maxStalledCount: options.maxStalledCount ?? 1,
    autorun: false,
  });
  worker.on('completed', (job: Job, result: unknown) => {
    if (job.name !== COHORT_JOB_NAME && job.name !== undefined && job.name !== '') return;
    const caseId = (job.data as { case?: { id?: string } }).case?.id ?? job.id ?? '';
    emit({ type: 'completed', jobId: job.id ?? '', caseId, result: result as CohortJobResult });
  });
  worker.on('failed', (job: Job | undefined, error: Error) => {
    if (job === undefined) return;
    const jobId = job.id ?? '';
    const kind = kinds.get(jobId) ?? 'unexpected';
    kinds.delete(jobId);
    const willRetry = kind !== 'input' && job.finishedOn === undefined;
    emit({ type: 'failed', jobId, caseId: (job.data as { case?: { id?: string } }).case?.id ?? jobId, reason: error.message, kind, willRetry });
  });
  worker.on('stalled', (jobId: string) => emit({ type: 'stalled', jobId }));
  // ioredis reconnects by itself and BullMQ resumes; the worker only says when Redis went away and when it is back
  // (one bounded check every 2 s while it is away), so an outage is two lines, not one per failed command.
  let watch: NodeJS.Timeout | undefined;
  const lost = (message: string): void => {
    if (connectionLost) return;
    connectionLost = true;
    emit({ type: 'connection-lost', message });
    watch = setInterval(() => {
      void checkRedis(target, 1000).then(
        () => {
          if (!connectionLost) return;
          connectionLost = false;
          clearInterval(watch);
          emit({ type: 'connection-restored' });
        },
        () => {},
      );
    }, 2000);
    watch.unref();
  };
  let lastError = '';
  worker.on('error', (error: Error) => {
    if (isConnectionError(error)) return lost(error.message);
    // Anything else is reported once per distinct message in a row (BullMQ repeats a failing call).
    if (error.message === lastError) return;
    lastError = error.message;
    emit({ type: 'error', message: error.message });
  });
  void worker.run().catch((error: unknown) => emit({ type: 'error', message: error instanceof Error ? error.message : String(error) }));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    id,
    target,
    info,
    get running() {
      return running;
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        const done = worker.close();
        let timer: NodeJS.Timeout | undefined;
        if (closeOptions.timeoutMs !== undefined) {
          timer = setTimeout(() => worker.cancelAllJobs('the worker is shutting down'), closeOptions.timeoutMs);
        }
        try {
          await done;
        } finally {
          clearTimeout(timer);
          clearInterval(watch);
          await engines.dispose();
        }
      })();
      return closing;
    },
  };
}
