/** Server settings: defaults, environment variables and validation in one place. */
import os from 'node:os';
import path from 'node:path';
import { ArgumentError } from '@brats/io';

/** Everything a server needs to start; see {@link resolveServerOptions} for the defaults. */
export interface ServerOptions {
  /** Model bundle folder (brats-model.json and the model files). */
  model: string;
  /** Folder for uploads, masks and job records; jobs in it survive a restart. */
  dataDir: string;
  host: string;
  port: number;
  /** Engine name for @brats/ncs2-runtime's registry (`auto` picks the best that can run the bundle). */
  engine: string;
  /** Jobs that run at once. */
  concurrency: number;
  /** Jobs that may wait; an upload past this gets 503 with Retry-After. */
  queueLimit: number;
  /** Largest upload, in bytes, per file. */
  maxUploadBytes: number;
  /** Largest decompressed NIfTI, in bytes, per file (a gzip bomb stops here). */
  maxDecompressedBytes: number;
  /** Seconds a finished job is kept. */
  jobTtlSeconds: number;
  /** Milliseconds a request may take to arrive, headers and body (a slower one gets 408). */
  requestTimeoutMs: number;
  /** Allowed CORS origin(s); undefined turns CORS off. */
  corsOrigin: string | undefined;
  /** Bearer token the /v1 routes and /metrics require; undefined means no authentication. */
  apiToken: string | undefined;
  /** Average predictions over flipped slices; undefined: what the bundle chose on validation. */
  tta: boolean | undefined;
  /** Keep only the largest whole-tumour component; undefined: what the bundle chose on validation. */
  largestComponent: boolean | undefined;
  /** Folder of the built viewer (index.html, app.js); undefined: the package's dist/viewer. */
  viewerDir: string | undefined;
  /** Log requests (pino, JSON lines on stdout). */
  logger: boolean;
}

/** Jobs that run at once by default: half the CPUs (inference itself is multi-threaded), at least one. */
export function defaultConcurrency(): number {
  return Math.max(1, Math.floor(os.availableParallelism() / 2));
}

function readNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const number = Number(value);
  if (!Number.isFinite(number)) throw new ArgumentError('resolveServerOptions', name, `must be a number, found '${value}'`);
  return number;
}

function checkInteger(name: string, value: number, minimum: number): number {
  if (!Number.isInteger(value) || value < minimum) {
    throw new ArgumentError('resolveServerOptions', name, `must be an integer >= ${minimum}, found ${value}`);
  }
  return value;
}

/**
 * Fills in server settings: explicit `overrides` first, then the environment (`BRATS_MODEL`, `BRATS_DATA_DIR`,
 * `HOST`, `PORT`, `BRATS_ENGINE`, `BRATS_CONCURRENCY`, `BRATS_QUEUE_LIMIT`, `BRATS_MAX_UPLOAD_BYTES`,
 * `BRATS_MAX_DECOMPRESSED_BYTES`, `BRATS_JOB_TTL_SECONDS`, `BRATS_REQUEST_TIMEOUT_MS`, `BRATS_CORS_ORIGIN`,
 * `BRATS_API_TOKEN`), then the defaults (127.0.0.1:8080, ./brats-data, 256 MiB uploads, 1 GiB decompressed,
 * a queue of 64, jobs kept 24 h).
 * @throws {ArgumentError} when no model is given or a number is out of range.
 */
export function resolveServerOptions(overrides: Partial<ServerOptions>, environment: NodeJS.ProcessEnv = process.env): ServerOptions {
  const model = overrides.model ?? environment.BRATS_MODEL;
  if (model === undefined || model === '') throw new ArgumentError('resolveServerOptions', 'model', 'is required (a model bundle folder, or BRATS_MODEL)');
  const pick = (key: keyof ServerOptions, variable: string, fallback: number): number =>
    (overrides[key] as number | undefined) ?? readNumber(variable, environment[variable]) ?? fallback;
  const options: ServerOptions = {
    model,
    dataDir: path.resolve(overrides.dataDir ?? environment.BRATS_DATA_DIR ?? 'brats-data'),
    host: overrides.host ?? environment.HOST ?? '127.0.0.1',
    port: checkInteger('port', pick('port', 'PORT', 8080), 0),
    engine: overrides.engine ?? environment.BRATS_ENGINE ?? 'auto',
    concurrency: checkInteger('concurrency', pick('concurrency', 'BRATS_CONCURRENCY', defaultConcurrency()), 1),
    queueLimit: checkInteger('queueLimit', pick('queueLimit', 'BRATS_QUEUE_LIMIT', 64), 1),
    maxUploadBytes: checkInteger('maxUploadBytes', pick('maxUploadBytes', 'BRATS_MAX_UPLOAD_BYTES', 256 * 1024 ** 2), 1024),
    maxDecompressedBytes: checkInteger('maxDecompressedBytes', pick('maxDecompressedBytes', 'BRATS_MAX_DECOMPRESSED_BYTES', 1024 ** 3), 1024),
    jobTtlSeconds: pick('jobTtlSeconds', 'BRATS_JOB_TTL_SECONDS', 24 * 3600),
    requestTimeoutMs: checkInteger('requestTimeoutMs', pick('requestTimeoutMs', 'BRATS_REQUEST_TIMEOUT_MS', 120_000), 1),
    corsOrigin: overrides.corsOrigin ?? (environment.BRATS_CORS_ORIGIN || undefined),
    apiToken: overrides.apiToken ?? (environment.BRATS_API_TOKEN || undefined),
    tta: overrides.tta,
    largestComponent: overrides.largestComponent,
    viewerDir: overrides.viewerDir,
    logger: overrides.logger ?? false,
  };
  if (!(options.jobTtlSeconds > 0)) throw new ArgumentError('resolveServerOptions', 'jobTtlSeconds', `must be > 0, found ${options.jobTtlSeconds}`);
  return options;
}
