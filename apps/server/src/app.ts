/**
 * The HTTP API and viewer on fastify: routes with JSON schemas (served as an OpenAPI document), bearer-token
 * authentication, optional CORS, one error shape `{ code, message }` for every failure.
 */
import { createReadStream, existsSync, promises as fs } from 'node:fs';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import cors from '@fastify/cors';
import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import PQueue from 'p-queue';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { BratsError, DatasetError, NiftiFormatError, bundlePath } from '@brats/io';
import { ApiError } from './errors.js';
import { SCAN_ROLES, isJobId, type JobRecord, type ScanRole } from './job-store.js';
import type { JobService } from './jobs.js';
import type { ServerMetrics } from './metrics.js';
import { MASK_FILE, type LoadedModel } from './segment.js';
import { MODEL_SITE_DIR, ORT_BROWSER_FILES, ORT_SITE_DIR, SITE_CONTENT_TYPES, SITE_HEADERS, ortBrowserDir, packageViewerDir, siteManifest } from './static-site.js';
import { clientGoneError, stageUpload } from './upload.js';
import type { ServerOptions } from './options.js';

/** What {@link buildApp} wires together. */
export interface AppParts {
  options: ServerOptions;
  model: LoadedModel;
  jobs: JobService;
  metrics: ServerMetrics;
  /** Where the log's JSON lines go instead of stdout (an embedding process, or a test that reads them). */
  logStream?: { write(line: string): void };
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
} as const;

const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } },
} as const;

const REGION_NUMBERS = { type: 'object', properties: { WT: { type: 'number' }, TC: { type: 'number' }, ET: { type: 'number' } } } as const;

const JOB_SCHEMA = {
  type: 'object',
  required: ['id', 'status', 'createdAt'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] },
    inputKind: { type: 'string', enum: ['4d', 'roles'] },
    createdAt: { type: 'string' },
    startedAt: { type: 'string' },
    finishedAt: { type: 'string' },
    expiresAt: { type: 'string' },
    engine: { type: 'string' },
    timings: {
      type: 'object',
      properties: { queuedSeconds: { type: 'number' }, loadSeconds: { type: 'number' }, inferenceSeconds: { type: 'number' }, totalSeconds: { type: 'number' } },
    },
    regions: { type: 'array', items: { type: 'string' } },
    volumesMl: REGION_NUMBERS,
    shape: { type: 'array', items: { type: 'integer' } },
    labels: {
      type: 'array',
      items: { type: 'object', properties: { value: { type: 'integer' }, region: { type: 'string' }, meaning: { type: 'string' } } },
    },
    labelConvention: { type: 'string' },
    reasons: { type: 'array', items: { type: 'string' } },
    notices: { type: 'array', items: { type: 'string' } },
    warnings: { type: 'array', items: { type: 'string' } },
    error: ERROR_SCHEMA,
    links: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

const ERROR_RESPONSES = { 400: ERROR_SCHEMA, 401: ERROR_SCHEMA, 404: ERROR_SCHEMA } as const;

function jobLinks(id: string): Record<string, string> {
  const base = `/v1/segmentations/${id}`;
  return { self: base, mask: `${base}/mask`, ...Object.fromEntries(SCAN_ROLES.map((role) => [role, `${base}/scan/${role}`])) };
}

/** A job as the API shows it: stored file names stay private. */
function publicJob(record: JobRecord): Omit<JobRecord, 'inputFiles' | 'queueJobId'> & { links: Record<string, string> } {
  const { inputFiles: _inputFiles, queueJobId: _queueJobId, ...rest } = record;
  return { ...rest, links: jobLinks(record.id) };
}

function tokensEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Maps any error to a status and `{ code, message }`; internal details stay in the log. */
/** Messages of the multipart parser's errors about a malformed body. */
const MALFORMED_MULTIPART = new Set(['Multipart: Boundary not found', 'Unexpected end of multipart data']);

function describeFailure(error: unknown): { status: number; code: string; message: string; headers: Record<string, string> } {
  if (error instanceof ApiError) return { status: error.statusCode, code: error.code, message: error.message, headers: { ...error.headers } };
  if (error instanceof NiftiFormatError || error instanceof DatasetError) return { status: 422, code: error.code, message: error.message, headers: {} };
  const fastifyError = error as { code?: string; statusCode?: number; message?: string; validation?: unknown };
  if (fastifyError.validation !== undefined) return { status: 400, code: 'BAD_REQUEST', message: fastifyError.message ?? 'invalid request', headers: {} };
  switch (fastifyError.code) {
    case 'FST_REQ_FILE_TOO_LARGE':
      return { status: 413, code: 'UPLOAD_TOO_LARGE', message: 'an uploaded file is larger than the upload limit', headers: {} };
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return { status: 400, code: 'BAD_UPLOAD', message: 'too many parts: send one 4D file or the four files flair, t1w, t1gd, t2w', headers: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: fastifyError.message ?? 'unsupported content type', headers: {} };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, code: 'UPLOAD_TOO_LARGE', message: fastifyError.message ?? 'request body too large', headers: {} };
    default:
      break;
  }
  // The multipart parser (busboy) rejects a body without a boundary or cut before its end with plain errors
  // that carry no code: they are the client's malformed request, not a fault of the server.
  if (error instanceof Error && MALFORMED_MULTIPART.has(error.message)) {
    return { status: 400, code: 'BAD_UPLOAD', message: `malformed multipart body: ${error.message}`, headers: {} };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return { status, code: fastifyError.code ?? 'BAD_REQUEST', message: fastifyError.message ?? 'bad request', headers: {} };
  }
  if (error instanceof BratsError) return { status: 500, code: error.code, message: error.message, headers: {} };
  return { status: 500, code: 'INTERNAL', message: 'internal server error', headers: {} };
}

/**
 * Answers what Node's HTTP parser refuses before any route runs (a request too slow to arrive, headers too large,
 * bytes that are not HTTP, such as the rest of a body longer than its Content-Length) in the API's
 * `{ code, message }` shape, then closes the connection, as Node and fastify do by default.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, requestTimeoutMs: number): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', `the request did not arrive within ${requestTimeoutMs} ms`]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts']
        : [400, 'BAD_REQUEST', `malformed HTTP request${error.code === undefined ? '' : ` (${error.code})`}${error.code === 'HPE_INVALID_METHOD' ? ': bytes that do not start a request (the rest of a body longer than its Content-Length?)' : ''}`];
  const body = JSON.stringify({ code, message });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}

/**
 * Reads and drops what is left of a request body, up to `maxBytes` or `timeoutMs`, whichever comes first; resolves
 * (never rejects) when the body has ended, the connection closed or a limit was reached.
 */
function drainBody(body: NodeJS.ReadableStream & { destroyed: boolean }, maxBytes: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    let read = 0;
    const done = (): void => {
      clearTimeout(timer);
      body.removeListener('data', onData);
      body.removeListener('end', done);
      body.removeListener('close', done);
      body.removeListener('error', done);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      read += chunk.length;
      if (read > maxBytes) done();
    };
    const timer = setTimeout(done, timeoutMs);
    body.on('data', onData);
    body.once('end', done);
    body.once('close', done);
    body.once('error', done);
    body.resume();
  });
}

/** True when the request's connection is closed: no answer can reach its client any more. */
function clientGone(request: FastifyRequest): boolean {
  return request.raw.socket === null || request.raw.socket.destroyed;
}

/** The job id a request names in its URL, when it names a well-formed one. */
function jobIdOf(request: FastifyRequest): string | undefined {
  const id = (request.params as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' && isJobId(id) ? id : undefined;
}

/**
 * Creates the fastify app for a loaded model and a started job service (not yet listening). The app's logger (pino,
 * JSON lines) becomes the job service's. With `options.logger` it logs every request; without, warnings and errors
 * only: a quiet server drops its request log, never its failures.
 * @example const app = await buildApp({ options, model, jobs, metrics }); await app.listen({ port: 8080 });
 */
export async function buildApp(parts: AppParts): Promise<FastifyInstance> {
  const { options, model, jobs, metrics } = parts;
  const app = Fastify({
    logger: { level: options.logger ? 'info' : 'warn', ...(parts.logStream === undefined ? {} : { stream: parts.logStream }) },
    // A request whose body has not fully arrived in time gets 408 (Node sends it, then closes the connection).
    // No idle timeout on top: it would close, without an answer, a connection whose upload is being checked.
    requestTimeout: options.requestTimeoutMs,
    clientErrorHandler: (error, socket) => answerClientError(error, socket, options.requestTimeoutMs),
    bodyLimit: 1024 * 1024,
    genReqId: () => randomUUID(),
  });

  // Start-up (reading the stored jobs) ran before this logger existed: what it held is written now.
  jobs.useLogger(app.log);

  app.setErrorHandler(async (error, request, reply) => {
    const failure = describeFailure(error);
    // An upload refused before its body was read (queue full, a bad first part): its body is read and dropped
    // first, up to what a valid upload could hold, so that the client, still sending, reads the answer instead of a
    // reset connection. Not for a client without the token: the server spends nothing on its bytes.
    if (request.method === 'POST' && failure.status !== 401 && !request.raw.readableEnded && !request.raw.destroyed) {
      await drainBody(request.raw, 4 * options.maxUploadBytes + 1024 * 1024, options.requestTimeoutMs);
    }
    // An ApiError is an answer the server chose (503 queue full, viewer not built); anything else at 5xx is a fault.
    if (failure.status >= 500 && !(error instanceof ApiError)) {
      // The client sees only `internal server error` for an unexpected error: the log keeps what it was.
      const jobId = jobIdOf(request);
      request.log.error({ err: error, code: failure.code, ...(jobId === undefined ? {} : { jobId }) }, `request failed: ${failure.code}: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (request.routeOptions.url === '/v1/segmentations' && request.method === 'POST') metrics.uploadsRejected.inc({ code: failure.code });
    return reply.code(failure.status).headers(failure.headers).send({ code: failure.code, message: failure.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  if (options.corsOrigin !== undefined) {
    const origins = options.corsOrigin.split(',').map((origin) => origin.trim());
    // DELETE is part of the API (deleting a job): a cross-origin viewer must be allowed to send it.
    await app.register(cors, {
      origin: origins.length === 1 ? origins[0]! : origins,
      methods: ['GET', 'HEAD', 'POST', 'DELETE'],
      exposedHeaders: ['Location', 'Retry-After'],
    });
  }
  await app.register(multipart, {
    limits: { fileSize: options.maxUploadBytes, files: 4, fields: 4, parts: 8, headerPairs: 100 },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: '@brats/server', description: 'Brain-tumour segmentation of MRI scans (BraTS) with a 2D U-Net.', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      ...(options.apiToken === undefined ? {} : { security: [{ bearer: [] }] }),
    },
  });

  // A header check holds a whole decompressed file in memory: two at a time keep a burst of uploads bounded.
  const headerChecks = new PQueue({ concurrency: 2 });
  const runCheck = <T>(check: () => Promise<T>): Promise<T> => headerChecks.add(check) as Promise<T>;

  const authenticate = async (request: FastifyRequest): Promise<void> => {
    if (options.apiToken === undefined) return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (.+)$/i.exec(header);
    if (match === null || !tokensEqual(match[1]!, options.apiToken)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'this server needs an Authorization: Bearer <token> header with its API token');
    }
  };

  const requireJob = async (id: string): Promise<JobRecord> => {
    const record = isJobId(id) ? await jobs.find(id) : undefined;
    if (record === undefined) throw new ApiError(404, 'JOB_NOT_FOUND', `no segmentation job ${id} (it may have expired or been deleted)`);
    return record;
  };

  const sendNifti = async (reply: FastifyReply, file: string, downloadName: string): Promise<FastifyReply> => {
    const stat = await fs.stat(file);
    const gzipped = file.endsWith('.gz');
    return reply
      .header('content-type', gzipped ? 'application/gzip' : 'application/octet-stream')
      .header('content-length', stat.size)
      .header('content-disposition', `attachment; filename="${downloadName}${gzipped ? '.nii.gz' : '.nii'}"`)
      .send(createReadStream(file));
  };

  app.post('/v1/segmentations', {
    onRequest: authenticate,
    schema: {
      summary: 'Upload one 4D NIfTI (field scan) or four files (flair, t1w, t1gd, t2w) and start a segmentation job',
      consumes: ['multipart/form-data'],
      response: { 202: JOB_SCHEMA, 413: ERROR_SCHEMA, 415: ERROR_SCHEMA, 422: ERROR_SCHEMA, 503: ERROR_SCHEMA, ...ERROR_RESPONSES },
    },
  }, async (request, reply) => {
    // A place in the queue is taken before the body is read: past the limit the answer is an immediate 503.
    const release = jobs.admitUpload();
    const id = randomUUID();
    const staging = jobs.store.stagingPath(id);
    try {
      const upload = await stageUpload(request, () => jobs.store.createStaging(id), options.maxDecompressedBytes, runCheck);
      // The client may have gone while its upload was checked (reset, or cut by the request timeout, which
      // answers 408 itself): a job it was never told about must not exist.
      if (clientGone(request)) throw clientGoneError();
      await fs.rename(staging, jobs.store.directory(id));
      const record: JobRecord = { id, status: 'queued', inputKind: upload.inputKind, inputFiles: upload.inputFiles, createdAt: new Date().toISOString() };
      release();
      await jobs.submit(record);
      // If the 202 does not reach the client after all, the job is withdrawn: nobody knows its id.
      // ('finish' comes once the answer is handed to the connection; a 'close' without it means it never was.)
      let delivered = false;
      reply.raw.once('finish', () => (delivered = true));
      reply.raw.once('close', () => {
        if (!delivered) void jobs.withdraw(id, 'the connection closed before the client received its 202');
      });
      return reply.code(202).header('location', `/v1/segmentations/${id}`).send(publicJob(record));
    } catch (error) {
      try {
        await fs.rm(staging, { recursive: true, force: true });
        if (jobs.store.get(id) === undefined) await fs.rm(jobs.store.directory(id), { recursive: true, force: true });
      } catch (cleanup) {
        // The upload's own error is the one to answer with; the leftover folder is logged (start-up removes it).
        request.log.warn({ jobId: id, err: cleanup }, `upload ${id}: its folder could not be removed after a failure: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`);
      }
      throw error;
    } finally {
      release();
    }
  });

  app.get<{ Params: { id: string } }>('/v1/segmentations/:id', {
    onRequest: authenticate,
    schema: { summary: 'Status, timings, engine and tumour volumes (mL per region) of a job', params: ID_PARAMS, response: { 200: JOB_SCHEMA, ...ERROR_RESPONSES } },
  }, async (request) => publicJob(await requireJob(request.params.id)));

  app.get<{ Params: { id: string } }>('/v1/segmentations/:id/mask', {
    onRequest: authenticate,
    schema: { summary: 'The predicted label map (NIfTI, gzip) on the scan grid', params: ID_PARAMS, response: { 409: ERROR_SCHEMA, ...ERROR_RESPONSES } },
  }, async (request, reply) => {
    const record = await requireJob(request.params.id);
    if (record.status !== 'succeeded') {
      throw new ApiError(409, 'JOB_NOT_FINISHED', `job ${record.id} is ${record.status}${record.error === undefined ? '' : ` (${record.error.message})`}; the mask exists once it has succeeded`);
    }
    return sendNifti(reply, path.join(jobs.store.directory(record.id), MASK_FILE), `${record.id}-mask`);
  });

  app.get<{ Params: { id: string; role: ScanRole } }>('/v1/segmentations/:id/scan/:role', {
    onRequest: authenticate,
    schema: {
      summary: 'One uploaded sequence (FLAIR, T1w, T1gd or T2w) as NIfTI',
      params: { type: 'object', required: ['id', 'role'], properties: { id: ID_PARAMS.properties.id, role: { type: 'string', enum: [...SCAN_ROLES] } } },
      response: { 409: ERROR_SCHEMA, ...ERROR_RESPONSES },
    },
  }, async (request, reply) => {
    const record = await requireJob(request.params.id);
    const directory = jobs.store.directory(record.id);
    const { role } = request.params;
    if (record.inputKind === 'roles') return sendNifti(reply, path.join(directory, 'inputs', record.inputFiles[role]!), `${record.id}-${role}`);
    const extracted = path.join(directory, 'scans', `${role}.nii.gz`);
    if (!existsSync(extracted)) {
      throw new ApiError(409, 'JOB_NOT_FINISHED', `job ${record.id} is ${record.status}; the sequences of a 4D upload are served once it has been read`);
    }
    return sendNifti(reply, extracted, `${record.id}-${role}`);
  });

  app.delete<{ Params: { id: string } }>('/v1/segmentations/:id', {
    onRequest: authenticate,
    schema: { summary: 'Delete a job and its files', params: ID_PARAMS, response: { 409: ERROR_SCHEMA, ...ERROR_RESPONSES } },
  }, async (request, reply) => {
    await jobs.remove(await requireJob(request.params.id));
    return reply.code(204).send();
  });

  app.get('/v1/model', {
    onRequest: authenticate,
    schema: { summary: 'The model manifest and the engine that runs it' },
  }, async () => ({
    bundle: path.basename(model.bundle),
    engine: { name: model.engine.name, device: model.engine.device, version: model.engine.version, reason: model.reason },
    manifest: model.manifest,
  }));

  app.get('/healthz', { schema: { summary: 'Liveness: the process answers' } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Readiness: the model is loaded and the queue takes jobs' } }, async (_request, reply) => {
    const body = { status: jobs.full ? 'busy' : 'ready', waiting: jobs.waiting, running: jobs.running, queueLimit: options.queueLimit };
    return reply.code(jobs.full ? 503 : 200).send(body);
  });

  app.get('/metrics', { onRequest: authenticate, schema: { summary: 'Prometheus metrics: jobs, durations, queue, process' } }, async (_request, reply) => {
    metrics.queueWaiting.set(jobs.waiting);
    metrics.queueRunning.set(jobs.running);
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => {
    const document = app.swagger() as unknown as { paths?: Record<string, Record<string, Record<string, unknown>>> };
    const post = document.paths?.['/v1/segmentations']?.post;
    if (post !== undefined) {
      // Multipart bodies are parsed by the handler (streamed to disk), so the schema is documented here only.
      const file = { type: 'string', format: 'binary' };
      post.requestBody = {
        required: true,
        content: { 'multipart/form-data': { schema: { type: 'object', properties: { scan: file, ...Object.fromEntries(SCAN_ROLES.map((role) => [role, file])) } } } },
      };
    }
    return document;
  });

  // The viewer and what its in-browser mode loads, at the paths of the static site (`brats viewer --out`).
  const viewerDir = options.viewerDir ?? packageViewerDir();
  /** A reply with the site's headers and the content type of files named `*extension`. */
  const siteReply = (reply: FastifyReply, extension: string): FastifyReply => {
    for (const [name, value] of Object.entries(SITE_HEADERS)) reply.header(name, value);
    return reply.header('content-type', SITE_CONTENT_TYPES[extension] ?? 'application/octet-stream');
  };
  const sendSiteFile = (reply: FastifyReply, file: string): FastifyReply => siteReply(reply, path.extname(file)).send(createReadStream(file));
  const viewerFiles: Record<string, string> = { '/': 'index.html', '/viewer/app.js': 'viewer/app.js', '/viewer/style.css': 'viewer/style.css' };
  for (const [url, name] of Object.entries(viewerFiles)) {
    app.get(url, { schema: { hide: true } }, async (_request, reply) => {
      const file = path.join(viewerDir, name);
      if (!existsSync(file)) throw new ApiError(503, 'VIEWER_NOT_BUILT', `the viewer is not built (${name} missing in ${viewerDir}); run pnpm --filter @brats/server build`);
      // No requests leave the page: scripts, styles, images and connections come from this server only; no other
      // site may frame it (clickjacking over medical images), and the browser never guesses a content type.
      return sendSiteFile(reply, file);
    });
  }
  const ortDir = ortBrowserDir();
  for (const name of ORT_BROWSER_FILES) {
    app.get(`/${ORT_SITE_DIR}/${name}`, { schema: { hide: true } }, async (_request, reply) => {
      const file = path.join(ortDir, name);
      // An install trimmed of onnxruntime-web's browser build still serves the API and the server mode.
      if (!existsSync(file)) throw new ApiError(503, 'BROWSER_RUNTIME_MISSING', `in-browser segmentation is not available here: ${name} is missing in ${ortDir}`);
      return sendSiteFile(reply, file);
    });
  }
  // The model the page runs in the browser: the server's own bundle, behind the API token like the API.
  app.get(`/${MODEL_SITE_DIR}/brats-model.json`, { onRequest: authenticate, schema: { hide: true } }, async (_request, reply) => {
    return siteReply(reply, '.json').send(JSON.stringify(model.manifest.files.onnx === undefined ? model.manifest : siteManifest(model.manifest)));
  });
  if (model.manifest.files.onnx !== undefined) {
    const onnx = bundlePath(model.bundle, model.manifest.files.onnx);
    app.get(`/${MODEL_SITE_DIR}/${siteManifest(model.manifest).files.onnx!}`, { onRequest: authenticate, schema: { hide: true } }, async (_request, reply) => sendSiteFile(reply, onnx));
  }
  return app;
}
