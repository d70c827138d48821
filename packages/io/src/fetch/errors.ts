import { BratsError } from '../errors.js';

/**
 * What went wrong in a fetch: `http` (the server answered with an error status), `network` (the connection
 * failed and retries ran out), `size` (the server's size differs from the expected one), `checksum` (the MD5
 * of the bytes differs from the expected one), `unsafe-entry` (an archive entry would land outside the target
 * folder), `archive` (the archive is unreadable or lacks the expected dataset), `exists` (something in the
 * way of the final path).
 */
export type FetchFailure = 'http' | 'network' | 'size' | 'checksum' | 'unsafe-entry' | 'archive' | 'exists';

/** Structured fields of a {@link FetchError}; each is set when it applies. */
export interface FetchErrorDetails {
  /** The URL requested. */
  url?: string;
  /** The local file or folder concerned. */
  path?: string;
  /** The HTTP status of the last response. */
  status?: number;
  /** The archive entry concerned (its path as stored in the archive). */
  entry?: string;
  /** The expected value (an MD5 in hex, or a byte count). */
  expected?: string;
  /** The value found. */
  actual?: string;
}

/** Downloading or unpacking a dataset failed; `failure` says how (code `FETCH`). */
export class FetchError extends BratsError {
  readonly failure: FetchFailure;
  readonly url: string | undefined;
  readonly path: string | undefined;
  readonly status: number | undefined;
  readonly entry: string | undefined;
  readonly expected: string | undefined;
  readonly actual: string | undefined;

  constructor(failure: FetchFailure, message: string, details: FetchErrorDetails = {}, options?: ErrorOptions) {
    super('FETCH', message, options);
    this.failure = failure;
    this.url = details.url;
    this.path = details.path;
    this.status = details.status;
    this.entry = details.entry;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}
