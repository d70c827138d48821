/** Errors the HTTP API answers with: each carries its HTTP status and a stable `code` for the `{ code, message }` body. */
import { BratsError } from '@brats/io';

/** An error that maps to one HTTP response `{ code, message }` with status `statusCode`. */
export class ApiError extends BratsError {
  /** HTTP status of the response. */
  readonly statusCode: number;
  /** Extra response headers (e.g. Retry-After). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(statusCode: number, code: string, message: string, options: { headers?: Record<string, string>; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.statusCode = statusCode;
    this.headers = options.headers ?? {};
  }
}

/** The job queue holds as many waiting jobs as it may: answered 503 with Retry-After. */
export class QueueFullError extends ApiError {
  /** Seconds after which a retry is likely to be accepted. */
  readonly retryAfterSeconds: number;

  constructor(waiting: number, limit: number, retryAfterSeconds: number) {
    super(503, 'QUEUE_FULL', `the job queue is full (${waiting} waiting, limit ${limit}); retry after ${retryAfterSeconds} s`, {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
