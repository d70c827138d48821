// Failures outside a job's own result reach the server's log (pino JSON lines), with the job id and the error
// message: records that cannot be read at start-up, an expiry sweep that cannot remove a job, a job that fails
// with an unexpected error, and a request that fails inside the server.
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest } from '@brats/io';
import type { InferenceEngine, ModelLayout } from '@brats/ncs2-runtime';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUNDLE_CROP, multipartBody, uploadParts, writePhantomFiles, writeTinyBundle, type PhantomFiles } from '../test/fixtures.js';
import { buildApp } from './app.js';
import { JobStore, type JobRecord } from './job-store.js';
import { JobService } from './jobs.js';
import { createServerMetrics } from './metrics.js';
import { resolveServerOptions } from './options.js';
import type { LoadedModel } from './segment.js';

/** One line of the pino log. */
interface LogLine {
  level: number;
  msg: string;
  jobId?: string;
  code?: string;
  err?: { message: string; stack?: string; type?: string };
  [field: string]: unknown;
}

const WARN = 40;
const ERROR = 50;

let dir: string;
let bundle: string;
let files: PhantomFiles;
const running: Array<{ app: FastifyInstance; jobs: JobService }> = [];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-server-logging-'));
  bundle = path.join(dir, 'wt');
  await writeTinyBundle(bundle, 1);
  files = await writePhantomFiles(path.join(dir, 'phantoms'));
});
afterEach(async () => {
  for (const { app, jobs } of running.splice(0)) {
    await app.close();
    await jobs.stop();
  }
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** An engine that fails every run with a programming error, as a broken native binding would. */
function failingEngine(): InferenceEngine {
  const layout: ModelLayout = { layout: 'NHWC', input: [BUNDLE_CROP[0], BUNDLE_CROP[1], 4], outputChannels: 1, file: path.join(bundle, 'model.json'), format: 'tfjs' };
  return {
    name: 'failing',
    device: 'CPU',
    version: 'failing 1.0',
    layout,
    load: async () => layout,
    run: async () => {
      throw new TypeError('simulated engine fault: output buffer is detached');
    },
    perfCounters: async () => undefined,
    dispose: async () => undefined,
  };
}

/** The server's parts wired as createServer wires them, with the log written to `lines`. */
async function startLogged(dataDir: string, overrides: { jobTtlSeconds?: number } = {}): Promise<{ app: FastifyInstance; jobs: JobService; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const options = resolveServerOptions({ model: bundle, dataDir, concurrency: 1, ...overrides }, {});
  const model: LoadedModel = { bundle, manifest: await readModelManifest(bundle), engine: failingEngine(), reason: 'test' };
  const metrics = createServerMetrics();
  const jobs = new JobService(new JobStore(options.dataDir), model, options, metrics);
  await jobs.start();
  const app = await buildApp({ options, model, jobs, metrics, logStream: { write: (line) => lines.push(JSON.parse(line) as LogLine) } });
  running.push({ app, jobs });
  return { app, jobs, lines };
}

function finishedRecord(id: string, expiresAt: Date): JobRecord {
  const now = new Date().toISOString();
  return { id, status: 'succeeded', inputKind: '4d', inputFiles: { scan: 'scan.nii.gz' }, createdAt: now, finishedAt: now, expiresAt: expiresAt.toISOString() };
}

async function writeJob(dataDir: string, id: string, recordText: string | undefined): Promise<string> {
  const folder = path.join(dataDir, 'jobs', id);
  await fs.mkdir(path.join(folder, 'inputs'), { recursive: true });
  if (recordText !== undefined) await fs.writeFile(path.join(folder, 'job.json'), recordText);
  return folder;
}

function parseError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${text} parses`);
}

describe('the server log', () => {
  it('warns about each job record it cannot read at start-up, with the job id and the reason', async () => {
    const dataDir = path.join(dir, 'data-unreadable');
    const corrupt = randomUUID();
    const missing = randomUUID();
    const foreign = randomUUID();
    const corruptText = '{"id": "' + corrupt + '", "status": "succ';
    await writeJob(dataDir, corrupt, corruptText);
    await writeJob(dataDir, missing, undefined);
    await writeJob(dataDir, foreign, JSON.stringify(finishedRecord(randomUUID(), new Date(Date.now() + 3_600_000))));
    const kept = randomUUID();
    await writeJob(dataDir, kept, JSON.stringify(finishedRecord(kept, new Date(Date.now() + 3_600_000))));

    // The warnings come from start-up, before the app and its logger exist: they are held, then written.
    const { jobs, lines } = await startLogged(dataDir);
    const warnings = lines.filter((line) => line.level === WARN && line.jobId !== undefined);
    expect(warnings.map((line) => line.jobId).sort()).toEqual([corrupt, missing, foreign].sort());
    const about = (id: string): LogLine => warnings.find((line) => line.jobId === id)!;
    expect(about(corrupt).msg).toBe(`job ${corrupt}: job.json is unreadable (${parseError(corruptText)}); its folder was removed`);
    expect(about(corrupt).err?.message).toBe(parseError(corruptText));
    expect(about(missing).msg).toMatch(new RegExp(`^job ${missing}: no job\\.json: an upload interrupted before it became a job \\(ENOENT: .*\\); its folder was removed$`));
    expect(about(foreign).msg).toContain(`job.json is unreadable (not the record of job ${foreign}`);
    for (const id of [corrupt, missing, foreign]) expect(existsSync(path.join(dataDir, 'jobs', id))).toBe(false);
    // A readable record is served as before.
    expect(jobs.get(kept)?.status).toBe('succeeded');
  });

  it('logs an error naming the job when the expiry sweep cannot remove it, and keeps the job to retry', async () => {
    const dataDir = path.join(dir, 'data-sweep');
    const id = randomUUID();
    await writeJob(dataDir, id, JSON.stringify(finishedRecord(id, new Date(Date.now() + 3_600_000))));
    // A 1 s TTL sweeps every second; the job expires only once start-up's own sweep has passed it by.
    const { jobs, lines } = await startLogged(dataDir, { jobTtlSeconds: 1 });
    await jobs.store.save(finishedRecord(id, new Date(Date.now() - 1000)));
    // The jobs folder turns into a file: the job's folder cannot even be looked at (ENOTDIR), as root too.
    const jobsRoot = path.join(dataDir, 'jobs');
    await fs.rename(jobsRoot, `${jobsRoot}.moved`);
    await fs.writeFile(jobsRoot, '');

    const failure = await vi.waitFor(
      () => {
        const line = lines.find((entry) => entry.level === ERROR && entry.jobId === id);
        if (line === undefined) throw new Error('no error logged yet');
        return line;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(failure.msg).toMatch(new RegExp(`^expired job ${id} could not be removed: ENOTDIR: not a directory`));
    expect(failure.err?.message).toMatch(/^ENOTDIR/);
    expect(jobs.store.get(id)).toBeDefined();
    expect(existsSync(path.join(`${jobsRoot}.moved`, id, 'job.json'))).toBe(true);
    await fs.rm(jobsRoot);
    await fs.rename(`${jobsRoot}.moved`, jobsRoot);
  });

  it('logs a job that fails with an unexpected error at error level, with its id, message and stack', async () => {
    const { app, jobs, lines } = await startLogged(path.join(dir, 'data-internal'));
    const body = await multipartBody(await uploadParts(files, '4d'));
    const response = await app.inject({ method: 'POST', url: '/v1/segmentations', payload: body.payload, headers: body.headers });
    expect(response.statusCode).toBe(202);
    const id = response.json<JobRecord>().id;
    await jobs.idle();
    const job = (await app.inject({ method: 'GET', url: `/v1/segmentations/${id}` })).json<JobRecord>();
    expect(job.status).toBe('failed');
    expect(job.error).toEqual({ code: 'INTERNAL', message: 'simulated engine fault: output buffer is detached' });

    const logged = lines.filter((line) => line.jobId === id && line.level === ERROR);
    expect(logged).toHaveLength(1);
    expect(logged[0]!.msg).toBe(`job ${id} failed with an internal error: simulated engine fault: output buffer is detached`);
    expect(logged[0]!.code).toBe('INTERNAL');
    expect(logged[0]!.err?.type).toBe('TypeError');
    expect(logged[0]!.err?.stack).toContain('simulated engine fault');
  });

  it('logs a request that fails inside the server with the job id, while the client gets the generic answer', async () => {
    const dataDir = path.join(dir, 'data-request');
    const id = randomUUID();
    // A succeeded job whose mask file is gone: serving it fails on the server's side.
    await writeJob(dataDir, id, JSON.stringify(finishedRecord(id, new Date(Date.now() + 3_600_000))));
    const { app, lines } = await startLogged(dataDir);
    const response = await app.inject({ method: 'GET', url: `/v1/segmentations/${id}/mask` });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({ code: 'INTERNAL', message: 'internal server error' });
    const logged = lines.find((line) => line.level === ERROR && line.jobId === id);
    expect(logged?.msg).toMatch(/^request failed: INTERNAL: ENOENT: no such file or directory, stat '.*mask\.nii\.gz'$/);
    expect(logged?.code).toBe('INTERNAL');
  });
});
