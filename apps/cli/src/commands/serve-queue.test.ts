/**
 * `brats serve --queue`: two servers share one queue and one data folder; a worker elsewhere runs the jobs. An
 * upload to one server is followed, downloaded and deleted through the other, and its mask is the one a server
 * without a queue computes for the same upload.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseNifti, writePhantomDataset } from '@brats/io';
import { CohortQueue, startCohortWorker, type CohortWorker } from '@brats/queue';
import { createServer, type BratsServer } from '@brats/server';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REDIS = process.env.BRATS_TEST_REDIS;

let dir: string;
let bundle: string;
let caseDir: string;
let scan4d: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-serve-queue-'));
  bundle = path.join(dir, 'model');
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0, seed: 3 });
  await exportBundleToOnnx(bundle);
  await writePhantomDataset(path.join(dir, 'brats'), { layout: 'brats2018', cases: 1, size: [48, 48, 32], seed: 4 });
  await writePhantomDataset(path.join(dir, 'msd'), { layout: 'msd', cases: 1, size: [48, 48, 32], seed: 4 });
  caseDir = path.join(dir, 'brats', 'Phantom_001');
  scan4d = path.join(dir, 'msd', 'imagesTr', 'PHANTOM_001.nii.gz');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function upload(server: BratsServer, kind: 'roles' | '4d'): Promise<string> {
  const form = new FormData();
  if (kind === '4d') {
    form.append('scan', new Blob([new Uint8Array(await fs.readFile(scan4d))]), 'PHANTOM_001.nii.gz');
  } else {
    for (const [field, suffix] of [['flair', 'flair'], ['t1w', 't1'], ['t1gd', 't1ce'], ['t2w', 't2']] as const) {
      form.append(field, new Blob([new Uint8Array(await fs.readFile(path.join(caseDir, `Phantom_001_${suffix}.nii.gz`)))]), `Phantom_001_${suffix}.nii.gz`);
    }
  }
  const body = new Response(form);
  const response = await server.app.inject({ method: 'POST', url: '/v1/segmentations', payload: Buffer.from(await body.arrayBuffer()), headers: { 'content-type': body.headers.get('content-type')! } });
  expect(response.statusCode).toBe(202);
  return (response.json() as { id: string }).id;
}

interface JobBody {
  status: string;
  engine?: string;
  volumesMl?: { WT?: number };
  labelConvention?: string;
  error?: { code: string; message: string };
}

async function finished(server: BratsServer, id: string): Promise<JobBody> {
  for (;;) {
    const response = await server.app.inject({ method: 'GET', url: `/v1/segmentations/${id}` });
    expect(response.statusCode).toBe(200);
    const job = response.json() as JobBody;
    if (job.status === 'succeeded' || job.status === 'failed') return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function maskOf(server: BratsServer, id: string): Promise<Uint8Array> {
  const response = await server.app.inject({ method: 'GET', url: `/v1/segmentations/${id}/mask` });
  expect(response.statusCode).toBe(200);
  return new Uint8Array((await parseNifti(new Uint8Array(response.rawPayload), `${id}-mask.nii.gz`)).data);
}

describe.skipIf(REDIS === undefined)(`brats serve --queue${REDIS === undefined ? ' (skipped: no Redis; set BRATS_TEST_REDIS=redis://127.0.0.1:6391, as .ci/run does)' : ''}`, () => {
  it('lets two servers share the jobs that a worker runs, with the masks a server without a queue computes', async () => {
    const name = `serve-${process.pid}-${Date.now().toString(36)}`;
    const shared = path.join(dir, 'shared-data');
    const settings = { model: bundle, engine: 'onnxruntime', port: 0 };
    const local = await createServer({ ...settings, dataDir: path.join(dir, 'local-data') }, {});
    const first = await createServer({ ...settings, dataDir: shared }, {}, { queue: await CohortQueue.open(REDIS!, { name }) });
    const second = await createServer({ ...settings, dataDir: shared }, {}, { queue: await CohortQueue.open(REDIS!, { name }) });
    const inspector = await CohortQueue.open(REDIS!, { name });
    let worker: CohortWorker | undefined;
    try {
      const roles = await upload(first, 'roles');
      const scan = await upload(second, '4d');
      // No worker yet: both jobs wait in the queue, and either server says so.
      expect((await second.app.inject({ method: 'GET', url: `/v1/segmentations/${roles}` })).json()).toMatchObject({ status: 'queued' });
      expect((await second.app.inject({ method: 'GET', url: `/v1/segmentations/${roles}/mask` })).statusCode).toBe(409);
      expect(await inspector.counts()).toMatchObject({ waiting: 2, completed: 0 });

      worker = await startCohortWorker(REDIS!, { name });
      const job = await finished(second, roles);
      expect(job).toMatchObject({ status: 'succeeded', labelConvention: 'wt' });
      expect(job.engine).toMatch(/^onnxruntime/);
      expect(job.volumesMl?.WT).toBeGreaterThan(0);
      expect((await finished(first, scan)).status).toBe('succeeded');
      // The viewer's sequences of the 4D upload were written by the worker, and any server serves them.
      expect((await first.app.inject({ method: 'GET', url: `/v1/segmentations/${scan}/scan/t1gd` })).statusCode).toBe(200);

      const reference = await upload(local, 'roles');
      expect((await finished(local, reference)).status).toBe('succeeded');
      const expected = await maskOf(local, reference);
      expect(expected.reduce((sum, value) => sum + value, 0)).toBeGreaterThan(0);
      expect(Array.from(await maskOf(first, roles))).toEqual(Array.from(expected));
      expect(Array.from(await maskOf(second, roles))).toEqual(Array.from(expected));

      // Deleted through one server, gone on the other, and out of the queue.
      expect((await second.app.inject({ method: 'DELETE', url: `/v1/segmentations/${roles}` })).statusCode).toBe(204);
      expect((await first.app.inject({ method: 'GET', url: `/v1/segmentations/${roles}` })).statusCode).toBe(404);
      expect(await inspector.counts()).toMatchObject({ completed: 1 });
    } finally {
      await worker?.close();
      await inspector.clear(true);
      await inspector.close();
      for (const server of [first, second, local]) await server.close();
    }
  });
});
