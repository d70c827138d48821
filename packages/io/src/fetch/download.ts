import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ArgumentError } from '../errors.js';
import { FetchError } from './errors.js';

/** Progress of {@link downloadFile}: re-hashing a partial file before resuming, or receiving bytes. */
export interface DownloadProgress {
  /** `rehash`: reading the bytes of an earlier partial download into the MD5; `download`: receiving. */
  phase: 'rehash' | 'download';
  /** Bytes of the file done so far (including those of earlier attempts). */
  doneBytes: number;
  /** Size of the whole file, when the server or the caller told it. */
  totalBytes: number | undefined;
  /** Bytes already present when this phase started (a resumed download's offset). */
  startBytes: number;
}

/** Options of {@link downloadFile}. */
export interface DownloadOptions {
  /** Expected MD5 of the whole file, 32 hex digits; a mismatch is refused. Without it nothing is verified. */
  md5?: string;
  /** Expected size in bytes; a server announcing another size is refused before anything is received. */
  expectedBytes?: number;
  /** Retries after network errors or 5xx/408/429 answers, counted since the last received byte (default 5). */
  retries?: number;
  /** Delay before the first retry in ms, doubled at each further one and capped at 30 s (default 1000). */
  retryDelayMs?: number;
  /** A connection that delivers no byte for this long (ms) is dropped and resumed (default 60000). */
  idleTimeoutMs?: number;
  /** Called as bytes arrive (often: throttle what you print). */
  onProgress?: (progress: DownloadProgress) => void;
  /** Called with one line for each event a user should know of (resume, restart, retry). */
  onNotice?: (message: string) => void;
}

/** What {@link downloadFile} did. */
export interface DownloadResult {
  /** The final file. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** Its MD5 in lower-case hex. */
  md5: string;
  /** Bytes taken from an earlier partial download (0 for a fresh one). */
  resumedFrom: number;
  /** HTTP requests made. */
  requests: number;
  /** True when the final file was already there (and, with `md5`, matched it): nothing was requested. */
  alreadyPresent: boolean;
}

const MD5_PATTERN = /^[0-9a-f]{32}$/;
const MAX_RETRY_DELAY_MS = 30_000;

/** The partial file of a download to `target`: resumed by the next run. */
export function partialPathFor(target: string): string {
  return `${target}.partial`;
}

/** A failure worth another attempt (network, idle timeout, 5xx); anything else is thrown at once. */
class RetryableFailure extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** Mutable state of one download across its attempts. */
interface DownloadState {
  url: string;
  partial: string;
  offset: number;
  hash: Hash;
  totalBytes: number | undefined;
  /** ETag or Last-Modified of the first answer, sent as If-Range so a changed file restarts from zero. */
  validator: string | undefined;
  requests: number;
}

function describeCause(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : undefined;
  return code === undefined || code === error.message ? error.message : `${error.message} (${code})`;
}

async function hashFile(file: string, hash: Hash, onBytes: (bytes: number) => void): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
    onBytes(bytes);
  }
  return bytes;
}

function restartFromZero(state: DownloadState): void {
  state.offset = 0;
  state.hash = createHash('md5');
}

function parseContentRange(header: string | null): { start: number; total: number | undefined } | undefined {
  const match = header === null ? null : /^bytes\s+(\d+)-\d+\/(\d+|\*)$/i.exec(header.trim());
  if (match === null) return undefined;
  return { start: Number(match[1]), total: match[2] === '*' ? undefined : Number(match[2]) };
}

function checkTotal(state: DownloadState, total: number | undefined, options: DownloadOptions): void {
  if (total === undefined) return;
  if (options.expectedBytes !== undefined && total !== options.expectedBytes) {
    throw new FetchError(
      'size',
      `${state.url}: the server announces ${total} bytes, expected ${options.expectedBytes}; is this the right file or mirror?`,
      { url: state.url, expected: String(options.expectedBytes), actual: String(total) },
    );
  }
  state.totalBytes = total;
}

/**
 * One HTTP request: resumes from `state.offset` with a Range request and appends what arrives to the
 * partial file, hashing each chunk after it is written so the MD5 always matches the bytes on disk.
 * Resolves when the file is complete; throws RetryableFailure when another attempt may help.
 */
async function requestOnce(state: DownloadState, options: DownloadOptions): Promise<void> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (state.offset > 0) {
    headers.range = `bytes=${state.offset}-`;
    if (state.validator !== undefined) headers['if-range'] = state.validator;
  }
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  const idleTimer = setTimeout(() => controller.abort(), idleTimeoutMs);
  state.requests += 1;
  try {
    let response: Response;
    try {
      response = await fetch(state.url, { headers, redirect: 'follow', signal: controller.signal });
    } catch (error) {
      throw new RetryableFailure(controller.signal.aborted ? `no answer within ${idleTimeoutMs} ms` : describeCause(error));
    }
    const status = response.status;
    if (status === 416 && state.offset > 0) {
      await response.body?.cancel();
      const range = /^bytes\s+\*\/(\d+)$/i.exec(response.headers.get('content-range') ?? '');
      if (range !== null && Number(range[1]) === state.offset) {
        // The partial file already holds every byte: only the checksum is left to do.
        checkTotal(state, state.offset, options);
        return;
      }
      options.onNotice?.(`${state.url}: the server cannot resume at byte ${state.offset}; restarting from zero`);
      restartFromZero(state);
      throw new RetryableFailure('range not satisfiable');
    }
    if (status !== 200 && status !== 206) {
      await response.body?.cancel();
      const message = `${state.url}: HTTP ${status} ${response.statusText}`.trim();
      if (status >= 500 || status === 408 || status === 429) throw new RetryableFailure(message, status);
      throw new FetchError('http', `${message}; expected 200 or 206`, { url: state.url, status });
    }
    if (status === 206) {
      const range = parseContentRange(response.headers.get('content-range'));
      if (range === undefined || range.start !== state.offset) {
        await response.body?.cancel();
        options.onNotice?.(`${state.url}: the server answered a different range than bytes=${state.offset}-; restarting from zero`);
        restartFromZero(state);
        throw new RetryableFailure('unexpected content range');
      }
      checkTotal(state, range.total, options);
    } else {
      if (state.offset > 0) {
        options.onNotice?.(`${state.url}: the server sent the whole file instead of bytes ${state.offset}-; restarting from zero`);
        restartFromZero(state);
      }
      const length = response.headers.get('content-length');
      checkTotal(state, length === null ? undefined : Number(length), options);
    }
    // A whole-file answer starts a new file version: later resumes must name its validator, not an older one.
    state.validator = status === 200 ? validatorOf(response) : (state.validator ?? validatorOf(response));
    await receiveBody(state, response, options, () => idleTimer.refresh(), controller.signal, idleTimeoutMs);
  } finally {
    clearTimeout(idleTimer);
  }
}

function validatorOf(response: Response): string | undefined {
  const etag = response.headers.get('etag');
  // If-Range accepts only a strong validator; a weak ETag would make every resume start over.
  if (etag !== null && !etag.startsWith('W/')) return etag;
  return response.headers.get('last-modified') ?? undefined;
}

async function receiveBody(
  state: DownloadState,
  response: Response,
  options: DownloadOptions,
  onActivity: () => void,
  signal: AbortSignal,
  idleTimeoutMs: number,
): Promise<void> {
  const startBytes = state.offset;
  const handle = await fs.open(state.partial, state.offset > 0 ? 'a' : 'w');
  try {
    if (response.body !== null) {
      const chunks = response.body[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await chunks.next();
        } catch (error) {
          const reason = signal.aborted ? `no data for ${idleTimeoutMs} ms` : describeCause(error);
          throw new RetryableFailure(`connection lost after byte ${state.offset}: ${reason}`);
        }
        if (next.done === true) break;
        onActivity();
        // Write, then hash: a failed write leaves the MD5 state in step with the file on disk.
        await handle.write(next.value);
        state.hash.update(next.value);
        state.offset += next.value.byteLength;
        options.onProgress?.({ phase: 'download', doneBytes: state.offset, totalBytes: state.totalBytes, startBytes });
      }
    }
  } finally {
    await handle.close();
  }
  if (state.totalBytes === undefined) {
    state.totalBytes = state.offset;
  } else if (state.offset < state.totalBytes) {
    throw new RetryableFailure(`connection closed at byte ${state.offset} of ${state.totalBytes}`);
  } else if (state.offset > state.totalBytes) {
    await fs.rm(state.partial, { force: true });
    throw new FetchError('size', `${state.url}: received ${state.offset} bytes, more than the ${state.totalBytes} announced`, {
      url: state.url,
      path: state.partial,
      expected: String(state.totalBytes),
      actual: String(state.offset),
    });
  }
}

/**
 * Downloads `url` to the file `target` with resume, retries and MD5 verification. Bytes go to
 * `target.partial`; a later call resumes it with an HTTP Range request (re-reading it into the MD5 first),
 * and a server that ignores Range (200 instead of 206) or whose file changed restarts from zero. Network
 * errors and 5xx answers are retried with exponential backoff, resuming from the last byte written.
 * Redirects are followed. Only a complete file whose MD5 matches `md5` is renamed to `target`; on a
 * mismatch the partial file is deleted. A `target` already present is checked against `md5` and kept.
 * @throws {ArgumentError} when `md5` is not 32 hex digits or a number option is negative.
 * @throws {FetchError} `http` for a 4xx answer, `network` when retries run out (the partial file is kept
 * for a later resume), `size` when the server's size differs from `expectedBytes`, `checksum` on an MD5
 * mismatch.
 * @example await downloadFile('https://example.org/data.tar', 'data/data.tar', { md5: '0123…' });
 */
export async function downloadFile(url: string, target: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const md5 = options.md5?.toLowerCase();
  if (md5 !== undefined && !MD5_PATTERN.test(md5)) throw new ArgumentError('downloadFile', 'md5', `must be 32 hex digits, got '${options.md5}'`);
  for (const name of ['retries', 'retryDelayMs', 'idleTimeoutMs', 'expectedBytes'] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      throw new ArgumentError('downloadFile', name, `must be an integer >= 0, got ${value}`);
    }
  }
  const finalPath = path.resolve(target);
  await fs.mkdir(path.dirname(finalPath), { recursive: true });

  if (await fs.stat(finalPath).then((stat) => stat.isFile(), () => false)) {
    const hash = createHash('md5');
    const bytes = await hashFile(finalPath, hash, (done) =>
      options.onProgress?.({ phase: 'rehash', doneBytes: done, totalBytes: options.expectedBytes, startBytes: 0 }),
    );
    const actual = hash.digest('hex');
    if (md5 !== undefined && actual !== md5) {
      throw new FetchError('exists', `${finalPath} exists with MD5 ${actual}, expected ${md5}; delete it and run again`, {
        path: finalPath,
        expected: md5,
        actual,
      });
    }
    return { path: finalPath, bytes, md5: actual, resumedFrom: 0, requests: 0, alreadyPresent: true };
  }

  const state: DownloadState = {
    url,
    partial: partialPathFor(finalPath),
    offset: 0,
    hash: createHash('md5'),
    totalBytes: options.expectedBytes,
    validator: undefined,
    requests: 0,
  };
  if (await fs.stat(state.partial).then((stat) => stat.isFile() && stat.size > 0, () => false)) {
    state.offset = await hashFile(state.partial, state.hash, (done) =>
      options.onProgress?.({ phase: 'rehash', doneBytes: done, totalBytes: state.totalBytes, startBytes: 0 }),
    );
    options.onNotice?.(`resuming ${state.partial} at byte ${state.offset}`);
  }
  const resumedFrom = state.offset;

  const retries = options.retries ?? 5;
  const baseDelay = options.retryDelayMs ?? 1000;
  let failures = 0;
  for (;;) {
    // A partial file that already holds every expected byte needs no request, only the checksum.
    if (state.totalBytes !== undefined && state.offset === state.totalBytes) break;
    const offsetBefore = state.offset;
    try {
      await requestOnce(state, options);
      break;
    } catch (error) {
      if (!(error instanceof RetryableFailure)) throw error;
      // Retries count from the last progress, so a long download over a flaky link is not cut short.
      failures = state.offset > offsetBefore ? 1 : failures + 1;
      if (failures > retries) {
        const kept = state.offset > 0 ? `; ${state.offset} bytes kept in ${state.partial}, run again to resume` : '';
        const details = { url, path: state.partial, ...(error.status === undefined ? {} : { status: error.status }) };
        throw new FetchError('network', `${error.message}; gave up after ${state.requests} requests${kept}`, details, { cause: error });
      }
      const delay = Math.min(baseDelay * 2 ** (failures - 1), MAX_RETRY_DELAY_MS);
      options.onNotice?.(`${error.message}; retry ${failures} of ${retries} in ${(delay / 1000).toFixed(1)} s`);
      await sleep(delay);
    }
  }

  const actual = state.hash.digest('hex');
  if (md5 !== undefined && actual !== md5) {
    await fs.rm(state.partial, { force: true });
    throw new FetchError(
      'checksum',
      `${url}: MD5 of the ${state.offset} bytes received is ${actual}, expected ${md5}; the download was deleted, run again (or check --url/--md5)`,
      { url, path: finalPath, expected: md5, actual },
    );
  }
  await fs.rename(state.partial, finalPath);
  return { path: finalPath, bytes: state.offset, md5: actual, resumedFrom, requests: state.requests, alreadyPresent: false };
}
