/** Errors of @brats/queue: each a BratsError with a stable `code`, so the CLI prints one line and an exit code. */
import { BratsError } from '@brats/io';

/** A queue address that is not `redis://[user:password@]HOST[:PORT][/DB]` (or `rediss://`); code `QUEUE_URL`. */
export class QueueUrlError extends BratsError {
  /** The address as given. */
  readonly url: string;
  /** What is wrong with it, one line. */
  readonly reason: string;

  constructor(url: string, reason: string) {
    super('QUEUE_URL', `queue address '${url}' ${reason}; expected redis://HOST[:PORT][/DB], e.g. redis://127.0.0.1:6379/0`);
    this.url = url;
    this.reason = reason;
  }
}

/** Redis did not answer within the time allowed (refused, unknown host, timeout, wrong password); code `REDIS_UNAVAILABLE`. */
export class RedisUnavailableError extends BratsError {
  /** The address tried, without its password. */
  readonly url: string;
  /** Why, one line (the driver's message). */
  readonly reason: string;

  constructor(url: string, reason: string, options?: ErrorOptions) {
    super('REDIS_UNAVAILABLE', `cannot reach Redis at ${url}: ${reason}. Start redis-server there, or check the --queue address`, options);
    this.url = url;
    this.reason = reason;
  }
}
