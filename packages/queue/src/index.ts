export { QueueUrlError, RedisUnavailableError } from './errors.js';
export { checkRedis, describePersistence, parseRedisUrl, redisOptions, type RedisConnectionSettings, type RedisInfo, type RedisTarget } from './redis.js';
export {
  COHORT_JOB_NAME,
  CohortQueue,
  DEFAULT_QUEUE_NAME,
  type FailedCase,
  type JobSummary,
  type QueueConnectOptions,
  type QueueCounts,
  type QueueOutcome,
  type SubmitOptions,
  type SubmitSummary,
  type WaitOptions,
  type WatchProgress,
} from './cohort-queue.js';
export { startCohortWorker, type CohortWorker, type CohortWorkerEvent, type CohortWorkerOptions } from './worker.js';
