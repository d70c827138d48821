import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { createVolume, encodeNifti, parseNifti, readNifti } from '@brats/io';
import { exportBundleToOnnx } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUNDLE_CROP,
  PHANTOM_SIZE,
  multipartBody,
  registerGatedEngine,
  uploadParts,
  writePhantomFiles,
  writeTinyBundle,
  type FilePart,
  type PhantomFiles,
} from '../test/fixtures.js';
import { NESTED_BOX_VOXELS, writeNestedBoxCase, writeRegionsPointwiseBundle } from '../../../packages/ncs2-runtime/test/regions-fixture.js';
import type { JobRecord } from './job-store.js';
import { createServer, type BratsServer } from './server.js';

let dir: string;
let files: PhantomFiles;
let server: BratsServer;
const LIMITS = { maxUploadBytes: 4 * 1024 ** 2, maxDecompressedBytes: 2 * 1024 ** 2 };

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-server-'));
  files = await writePhantomFiles(path.join(dir, 'phantoms'));
  await writeTinyBundle(path.join(dir, 'wt'), 1);
  await writeTinyBundle(path.join(dir, 'regions'), 3);
  server = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-wt'), engine: 'tfjs', concurrency: 1, ...LIMITS }, {});
});
afterAll(async () => {
  await server?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function submit(target: BratsServer, parts: Parameters<typeof multipartBody>[0], headers: Record<string, string> = {}) {
  const body = await multipartBody(parts);
  return target.app.inject({ method: 'POST', url: '/v1/segmentations', payload: body.payload, headers: { ...body.headers, ...headers } });
}

async function finished(target: BratsServer, id: string, headers: Record<string, string> = {}): Promise<JobRecord> {
  await target.jobs.idle();
  const response = await target.app.inject({ method: 'GET', url: `/v1/segmentations/${id}`, headers });
  expect(response.statusCode).toBe(200);
  return response.json<JobRecord>();
}

function voxelMl(): number {
  return 1 / 1000;
}

describe('POST /v1/segmentations and the job routes', () => {
  it('segments a 4D upload: 202 with an id, then status, volumes, mask and the four sequences', async () => {
    const response = await submit(server, await uploadParts(files, '4d'));
    expect(response.statusCode).toBe(202);
    const accepted = response.json<JobRecord & { links: Record<string, string> }>();
    expect(accepted.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(accepted.status).toBe('queued');
    expect(response.headers.location).toBe(`/v1/segmentations/${accepted.id}`);
    expect(accepted.links.mask).toBe(`/v1/segmentations/${accepted.id}/mask`);
    expect(accepted).not.toHaveProperty('inputFiles');

    const job = await finished(server, accepted.id);
    expect(job.status).toBe('succeeded');
    expect(job.engine).toMatch(/^tfjs \(/);
    expect(job.regions).toEqual(['WT']);
    expect(job.shape).toEqual(PHANTOM_SIZE);
    expect(job.labels).toEqual([{ value: 1, region: 'WT', meaning: 'whole tumour' }]);
    expect(job.labelConvention).toBe('wt');
    expect(job.warnings).toEqual([]);
    expect(job.reasons).toContain('labels 0/1 whole tumour (the model has one output region, WT)');
    expect(job.timings!.totalSeconds).toBeGreaterThanOrEqual(job.timings!.inferenceSeconds);

    const mask = await server.app.inject({ method: 'GET', url: `/v1/segmentations/${accepted.id}/mask` });
    expect(mask.statusCode).toBe(200);
    expect(mask.headers['content-type']).toBe('application/gzip');
    expect(mask.rawPayload[0]).toBe(0x1f);
    const labels = await parseNifti(mask.rawPayload, 'mask.nii.gz');
    expect(labels.shape).toEqual(PHANTOM_SIZE);
    expect(labels.nifti.dtype).toBe('uint8');
    let tumour = 0;
    for (const value of labels.data) {
      expect(value === 0 || value === 1).toBe(true);
      tumour += value;
    }
    // The phantom has 1 mm voxels: the reported volume is the voxel count of the served mask over 1000.
    expect(job.volumesMl!.WT).toBeCloseTo(tumour * voxelMl(), 9);

    const original = await readNifti(files.scan4d);
    const frameVoxels = PHANTOM_SIZE[0] * PHANTOM_SIZE[1] * PHANTOM_SIZE[2];
    for (const [frame, role] of ['flair', 't1w', 't1gd', 't2w'].entries()) {
      const scan = await server.app.inject({ method: 'GET', url: `/v1/segmentations/${accepted.id}/scan/${role}` });
      expect(scan.statusCode).toBe(200);
      const volume = await parseNifti(scan.rawPayload, `${role}.nii.gz`);
      expect(volume.shape).toEqual(PHANTOM_SIZE);
      expect(Array.from(volume.data.subarray(0, 4000))).toEqual(Array.from(original.data.subarray(frame * frameVoxels, frame * frameVoxels + 4000)));
      expect(volume.affine).toEqual(original.affine);
    }
  });

  it('segments four files by role with a regions model (BraTS labels) and serves each upload byte for byte', async () => {
    const regions = await createServer({ model: path.join(dir, 'regions'), dataDir: path.join(dir, 'data-regions'), engine: 'tfjs', ...LIMITS }, {});
    try {
      const parts = await uploadParts(files, 'roles');
      const response = await submit(regions, parts);
      expect(response.statusCode).toBe(202);
      const job = await finished(regions, response.json<JobRecord>().id);
      expect(job.status).toBe('succeeded');
      expect(job.regions).toEqual(['WT', 'TC', 'ET']);
      expect(job.labels!.map(({ value, region }) => [value, region])).toEqual([[1, 'TC'], [2, 'WT'], [4, 'ET']]);
      expect(job.labelConvention).toBe('brats2017');
      const mask = await parseNifti((await regions.app.inject({ method: 'GET', url: `/v1/segmentations/${job.id}/mask` })).rawPayload, 'mask');
      const counts = new Map<number, number>();
      for (const value of mask.data) counts.set(value, (counts.get(value) ?? 0) + 1);
      expect([...counts.keys()].every((value) => [0, 1, 2, 4].includes(value))).toBe(true);
      // WT = labels 1, 2, 4; TC = 1, 4; ET = 4 (BraTS 2017 convention).
      const count = (...values: number[]): number => values.reduce((sum, value) => sum + (counts.get(value) ?? 0), 0);
      expect(job.volumesMl!.WT).toBeCloseTo(count(1, 2, 4) * voxelMl(), 9);
      expect(job.volumesMl!.TC).toBeCloseTo(count(1, 4) * voxelMl(), 9);
      expect(job.volumesMl!.ET).toBeCloseTo(count(4) * voxelMl(), 9);
      for (const part of parts) {
        const scan = await regions.app.inject({ method: 'GET', url: `/v1/segmentations/${job.id}/scan/${part.field}` });
        expect(scan.statusCode).toBe(200);
        expect(Buffer.compare(scan.rawPayload, Buffer.from(part.bytes))).toBe(0);
      }
    } finally {
      await regions.close();
    }
  });

  it.each(['brats2017', 'brats2023'] as const)(
    'keeps the labels of the uploaded names: four files named as %s names them give that layout\'s labels, region for region',
    async (naming) => {
      // The runtime's hand-made regions model segments nested boxes into exactly known oedema, core and enhancing voxels.
      const bundle = path.join(dir, 'regions-pointwise');
      await writeRegionsPointwiseBundle(bundle);
      const boxes = await writeNestedBoxCase(path.join(dir, `boxes-${naming}`), naming);
      const target = await createServer({ model: bundle, dataDir: path.join(dir, `data-boxes-${naming}`), engine: 'onnxruntime', ...LIMITS }, {});
      try {
        const parts = await Promise.all((['flair', 't1w', 't1gd', 't2w'] as const).map(async (field) => ({ field, filename: path.basename(boxes[field]), bytes: await fs.readFile(boxes[field]) })));
        const response = await submit(target, parts);
        expect(response.statusCode).toBe(202);
        const job = await finished(target, response.json<JobRecord>().id);
        expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
        const enhancing = naming === 'brats2017' ? 4 : 3;
        expect(job.labelConvention).toBe(naming);
        expect(job.labels!.map(({ value, region }) => [value, region])).toEqual([[1, 'TC'], [2, 'WT'], [enhancing, 'ET']]);
        const mask = await parseNifti((await target.app.inject({ method: 'GET', url: `/v1/segmentations/${job.id}/mask` })).rawPayload, 'mask');
        const counts: Record<number, number> = {};
        for (const value of mask.data) counts[value] = (counts[value] ?? 0) + 1;
        expect(counts).toEqual({
          0: mask.data.length - NESTED_BOX_VOXELS.WT,
          2: NESTED_BOX_VOXELS.WT - NESTED_BOX_VOXELS.TC,
          1: NESTED_BOX_VOXELS.TC - NESTED_BOX_VOXELS.ET,
          [enhancing]: NESTED_BOX_VOXELS.ET,
        });
      } finally {
        await target.close();
      }
    },
  );

  it('gives the notices of a scan resampled to the model\'s spacing and of windows beyond the model\'s in the job', async () => {
    // The 4D phantom with 2 mm voxels: the 1 mm model sees it resampled, and the job says so beside the result.
    const original = await readNifti(files.scan4d);
    const twoMm = createVolume(original.dtype, original.data, original.shape, {
      affine: original.affine.map((row, i) => (i === 3 ? row : row.map((value, j) => (j === 3 ? value : value * 2)))) as unknown as typeof original.affine,
    });
    const response = await submit(server, [{ field: 'scan', filename: 'two-mm.nii.gz', bytes: gzipSync(encodeNifti(twoMm)) }]);
    expect(response.statusCode).toBe(202);
    const job = await finished(server, response.json<JobRecord>().id);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const [i, j, k] = PHANTOM_SIZE;
    const notice = `spacing 2 x 2 x 2 mm resampled to the model's 1 x 1 x 1 mm (1 mm, as BraTS and the Decathlon; the bundle records none): grid [${i}, ${j}, ${k}] to [${2 * i}, ${2 * j}, ${2 * k}], images linear, probabilities linear back onto the scan's grid`;
    // The tiny model's tumour fills its window at 2 mm: the windows beyond it are the second notice.
    expect(job.notices).toHaveLength(2);
    expect(job.notices![0]).toBe(notice);
    expect(job.notices![1]).toMatch(/^predicted tumour reached the .* face\(s\) of the model's 32x32x16 window, with scan beyond: \d+ more window\(s\) segmented it there/);
    for (const line of job.notices!) expect(job.reasons).toContain(line);
    expect(job.shape).toEqual(PHANTOM_SIZE);

    const atOneMm = await finished(server, (await submit(server, await uploadParts(files, '4d'))).json<JobRecord>().id);
    // At the model's spacing only the windows beyond remain.
    expect(atOneMm.notices).toEqual([expect.stringMatching(/^predicted tumour reached the /)]);
  });

  it('reports a job whose files do not share one grid as failed, and its mask as 409', async () => {
    const parts = await uploadParts(files, 'roles');
    // Same shape, another affine: the header check passes, reading the case does not.
    const moved = await readNifti(files.roles.t2w);
    const shifted = { ...moved, affine: moved.affine.map((row, i) => (i === 0 ? [row[0], row[1], row[2], row[3] + 5] : row)) as unknown as typeof moved.affine };
    parts[3] = { field: 't2w', filename: 't2.nii.gz', bytes: gzipSync(encodeNifti(shifted)) };
    const response = await submit(server, parts);
    expect(response.statusCode).toBe(202);
    const job = await finished(server, response.json<JobRecord>().id);
    expect(job.status).toBe('failed');
    expect(job.error!.code).toBe('DATASET');
    expect(job.error!.message).toContain('affine differs');
    const mask = await server.app.inject({ method: 'GET', url: `/v1/segmentations/${job.id}/mask` });
    expect(mask.statusCode).toBe(409);
    expect(mask.json()).toMatchObject({ code: 'JOB_NOT_FINISHED' });
  });

  it('deletes a job: 204, then 404 for it and its files', async () => {
    const response = await submit(server, await uploadParts(files, '4d'));
    const { id } = response.json<JobRecord>();
    await server.jobs.idle();
    expect((await server.app.inject({ method: 'DELETE', url: `/v1/segmentations/${id}` })).statusCode).toBe(204);
    expect((await server.app.inject({ method: 'GET', url: `/v1/segmentations/${id}` })).statusCode).toBe(404);
    expect((await server.app.inject({ method: 'GET', url: `/v1/segmentations/${id}/mask` })).statusCode).toBe(404);
    await expect(fs.stat(server.jobs.store.directory(id))).rejects.toThrow();
  });
});

describe('bad requests get 4xx with { code, message } and the server keeps working', () => {
  const nifti3d = async (): Promise<Uint8Array> => fs.readFile(files.roles.flair);
  const cases: [string, number, string, () => Promise<{ parts?: Parameters<typeof multipartBody>[0]; raw?: { payload: string; type: string } }>][] = [
    ['a JSON body', 415, 'UNSUPPORTED_MEDIA_TYPE', async () => ({ raw: { payload: '{"scan":"x"}', type: 'application/json' } })],
    ['a plain-text body', 415, 'UNSUPPORTED_MEDIA_TYPE', async () => ({ raw: { payload: 'hello', type: 'text/plain' } })],
    ['a multipart body without a boundary', 400, 'BAD_UPLOAD', async () => ({ raw: { payload: 'garbage', type: 'multipart/form-data' } })],
    ['a multipart body of garbage', 400, 'BAD_UPLOAD', async () => ({ raw: { payload: 'not a multipart body at all', type: 'multipart/form-data; boundary=xyz' } })],
    ['a multipart part cut before its end', 400, 'BAD_UPLOAD', async () => ({
      raw: { payload: '--xyz\r\nContent-Disposition: form-data; name="scan"; filename="a.nii"\r\nContent-Type: application/octet-stream\r\n\r\nabc', type: 'multipart/form-data; boundary=xyz' },
    })],
    ['a file that is not .nii', 415, 'UNSUPPORTED_MEDIA_TYPE', async () => ({ parts: [{ field: 'scan', filename: 'notes.txt', bytes: new Uint8Array(400) }] })],
    ['a .nii.gz of unknown bytes', 415, 'UNSUPPORTED_MEDIA_TYPE', async () => ({ parts: [{ field: 'scan', filename: 'scan.nii.gz', bytes: new TextEncoder().encode('definitely not a scan') }] })],
    ['gzip of garbage', 422, 'SCAN_UNREADABLE', async () => ({ parts: [{ field: 'scan', filename: 'scan.nii.gz', bytes: gzipSync(Buffer.alloc(1000, 7)) }] })],
    ['a truncated NIfTI', 422, 'SCAN_UNREADABLE', async () => ({ parts: [{ field: 'scan', filename: 'scan.nii', bytes: (await readNiftiBytes(files.scan4d)).subarray(0, 2000) }] })],
    ['a 3D file as the 4D scan', 422, 'SCAN_INVALID', async () => ({ parts: [{ field: 'scan', filename: 'flair.nii.gz', bytes: await nifti3d() }] })],
    ['a gzip bomb (decompresses past the cap)', 413, 'SCAN_TOO_LARGE', async () => ({ parts: [{ field: 'scan', filename: 'bomb.nii.gz', bytes: gzipSync(Buffer.alloc(8 * 1024 ** 2)) }] })],
    ['a file past the upload cap', 413, 'UPLOAD_TOO_LARGE', async () => ({ parts: [{ field: 'scan', filename: 'big.nii', bytes: new Uint8Array(5 * 1024 ** 2) }] })],
    ['two of the four roles', 400, 'BAD_UPLOAD', async () => ({ parts: [{ field: 'flair', filename: 'f.nii.gz', bytes: await nifti3d() }, { field: 't1w', filename: 't.nii.gz', bytes: await nifti3d() }] })],
    ['an unknown file field', 400, 'BAD_UPLOAD', async () => ({ parts: [{ field: 'mri', filename: 'f.nii.gz', bytes: await nifti3d() }] })],
    ['a role given twice', 400, 'BAD_UPLOAD', async () => ({ parts: [{ field: 'flair', filename: 'a.nii.gz', bytes: await nifti3d() }, { field: 'flair', filename: 'b.nii.gz', bytes: await nifti3d() }] })],
    ['the 4D scan and a role', 400, 'BAD_UPLOAD', async () => ({ parts: [...(await uploadParts(files, '4d')), { field: 'flair', filename: 'a.nii.gz', bytes: await nifti3d() }] })],
    ['a text field', 400, 'BAD_UPLOAD', async () => ({ parts: [{ field: 'note', value: 'hello' }] })],
    ['no file at all', 400, 'BAD_UPLOAD', async () => ({ parts: [] })],
    ['files of different shapes', 422, 'SCAN_INVALID', async () => {
      const parts = await uploadParts(files, 'roles');
      const small = await writePhantomFiles(path.join(dir, 'small'), [40, 40, 24], 5);
      parts[2] = { field: 't1gd', filename: 'small.nii.gz', bytes: await fs.readFile(small.roles.t1gd) };
      return { parts };
    }],
  ];

  it.each(cases)('%s → %i %s', async (_name, status, code, build) => {
    const request = await build();
    const response = request.raw !== undefined
      ? await server.app.inject({ method: 'POST', url: '/v1/segmentations', payload: request.raw.payload, headers: { 'content-type': request.raw.type } })
      : await submit(server, request.parts!);
    expect(response.statusCode).toBe(status);
    const body = response.json<{ code: string; message: string }>();
    expect(body.code).toBe(code);
    expect(body.message.length).toBeGreaterThan(10);
    // Nothing is left behind by a refused upload.
    expect((await fs.readdir(server.jobs.store.root)).filter((name) => name.startsWith('.staging-'))).toEqual([]);
  });

  it.each([
    ['GET', '/v1/segmentations/00000000-0000-4000-8000-000000000000', 404, 'JOB_NOT_FOUND'],
    ['GET', '/v1/segmentations/00000000-0000-4000-8000-000000000000/mask', 404, 'JOB_NOT_FOUND'],
    ['DELETE', '/v1/segmentations/00000000-0000-4000-8000-000000000000', 404, 'JOB_NOT_FOUND'],
    ['GET', '/v1/segmentations/..%2F..%2Fetc', 400, 'BAD_REQUEST'],
    ['GET', '/v1/segmentations/00000000-0000-4000-8000-000000000000/scan/pd', 400, 'BAD_REQUEST'],
    ['GET', '/v2/anything', 404, 'NOT_FOUND'],
  ] as const)('%s %s → %i %s', async (method, url, status, code) => {
    const response = await server.app.inject({ method, url });
    expect(response.statusCode).toBe(status);
    expect(response.json()).toMatchObject({ code });
  });
});

async function readNiftiBytes(file: string): Promise<Uint8Array> {
  const { gunzipSync } = await import('node:zlib');
  return gunzipSync(await fs.readFile(file));
}

describe('service routes', () => {
  it('GET /v1/model gives the manifest and the engine', async () => {
    const response = await server.app.inject({ method: 'GET', url: '/v1/model' });
    expect(response.statusCode).toBe(200);
    const body = response.json<{ engine: { name: string }; manifest: { regions: string[]; model: { inputShape: number[] } } }>();
    expect(body.engine.name).toBe('tfjs');
    expect(body.manifest.regions).toEqual(['WT']);
    expect(body.manifest.model.inputShape).toEqual([BUNDLE_CROP[0], BUNDLE_CROP[1], 4]);
  });

  it('GET /healthz and /readyz answer 200', async () => {
    expect((await server.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    const ready = await server.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', waiting: 0 });
  });

  it('GET /metrics counts jobs and refused uploads in Prometheus text', async () => {
    const response = await server.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.body;
    const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1]);
    expect(value(/^brats_jobs_submitted_total (\d+)$/m)).toBe(server.jobs.store.list().length + 1);
    expect(value(/^brats_jobs_finished_total\{status="failed"\} (\d+)$/m)).toBe(1);
    expect(value(/^brats_uploads_rejected_total\{code="UNSUPPORTED_MEDIA_TYPE"\} (\d+)$/m)).toBe(4);
    expect(text).toMatch(/^brats_job_duration_seconds_count \d+$/m);
    expect(text).toMatch(/^brats_queue_waiting 0$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('GET /openapi.json documents every route', async () => {
    const document = (await server.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown }>> }>();
    expect(document.openapi).toMatch(/^3\./);
    expect(Object.keys(document.paths).sort()).toEqual(['/healthz', '/metrics', '/readyz', '/v1/model', '/v1/segmentations', '/v1/segmentations/{id}', '/v1/segmentations/{id}/mask', '/v1/segmentations/{id}/scan/{role}']);
    expect(Object.keys(document.paths['/v1/segmentations/{id}']!).sort()).toEqual(['delete', 'get']);
    expect(document.paths['/v1/segmentations']!.post!.requestBody).toMatchObject({ content: { 'multipart/form-data': {} } });
  });

  it('GET /, /viewer/app.js and /viewer/style.css serve the built viewer with a same-origin CSP and cross-origin isolation', async () => {
    const viewerDir = path.join(dir, 'viewer-stub');
    await fs.mkdir(path.join(viewerDir, 'viewer'), { recursive: true });
    const contents: Record<string, string> = { 'index.html': '<!doctype html><title>v</title>', 'viewer/app.js': 'export {};', 'viewer/style.css': 'body{}' };
    for (const [name, text] of Object.entries(contents)) await fs.writeFile(path.join(viewerDir, name), text);
    const viewer = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-viewer'), engine: 'tfjs', viewerDir }, {});
    try {
      for (const [url, name, type] of [['/', 'index.html', 'text/html'], ['/viewer/app.js', 'viewer/app.js', 'text/javascript'], ['/viewer/style.css', 'viewer/style.css', 'text/css']] as const) {
        const response = await viewer.app.inject({ method: 'GET', url });
        expect(response.statusCode).toBe(200);
        expect(response.body).toBe(contents[name]);
        expect(response.headers['content-type']).toContain(type);
        expect(response.headers['content-security-policy']).toContain("default-src 'self'");
        expect(response.headers['content-security-policy']).toContain("frame-ancestors 'none'");
        expect(response.headers['x-content-type-options']).toBe('nosniff');
        expect(response.headers['x-frame-options']).toBe('DENY');
        expect(response.headers['referrer-policy']).toBe('no-referrer');
        // Shared memory for WebAssembly threads in the in-browser mode.
        expect(response.headers['cross-origin-opener-policy']).toBe('same-origin');
        expect(response.headers['cross-origin-embedder-policy']).toBe('require-corp');
      }
    } finally {
      await viewer.close();
    }
  });

  it("serves ONNX Runtime Web's browser files and the model for the in-browser mode, the model behind the token", async () => {
    const secured = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-site'), engine: 'tfjs' }, { BRATS_API_TOKEN: 'site-token' });
    try {
      const wasm = await secured.app.inject({ method: 'GET', url: '/viewer/ort/ort-wasm-simd-threaded.jsep.wasm' });
      expect(wasm.statusCode).toBe(200);
      expect(wasm.headers['content-type']).toBe('application/wasm');
      // A WebAssembly module starts with \0asm.
      expect([...wasm.rawPayload.subarray(0, 4)]).toEqual([0, 0x61, 0x73, 0x6d]);
      expect((await secured.app.inject({ method: 'GET', url: '/viewer/ort/ort.min.mjs' })).headers['content-type']).toContain('text/javascript');
      expect((await secured.app.inject({ method: 'GET', url: '/viewer/ort/other.wasm' })).statusCode).toBe(404);
      expect((await secured.app.inject({ method: 'GET', url: '/model/brats-model.json' })).statusCode).toBe(401);
      const auth = { authorization: 'Bearer site-token' };
      const manifest = (await secured.app.inject({ method: 'GET', url: '/model/brats-model.json', headers: auth })).json<{ format: string; files: Record<string, string> }>();
      expect(manifest.format).toBe('brats-model');
      // This bundle has no ONNX model: the manifest says so and no model file is served.
      expect(manifest.files.onnx).toBeUndefined();
      expect((await secured.app.inject({ method: 'GET', url: '/model/model.onnx', headers: auth })).statusCode).toBe(404);
    } finally {
      await secured.close();
    }
    // With model.onnx, the manifest names only it and the file is the bundle's, byte for byte.
    await fs.cp(path.join(dir, 'wt'), path.join(dir, 'wt-onnx'), { recursive: true });
    await exportBundleToOnnx(path.join(dir, 'wt-onnx'));
    const withOnnx = await createServer({ model: path.join(dir, 'wt-onnx'), dataDir: path.join(dir, 'data-site-onnx'), engine: 'tfjs' }, {});
    try {
      const manifest = (await withOnnx.app.inject({ method: 'GET', url: '/model/brats-model.json' })).json<{ files: Record<string, string> }>();
      expect(manifest.files).toEqual({ onnx: 'model.onnx' });
      const model = await withOnnx.app.inject({ method: 'GET', url: '/model/model.onnx' });
      expect(model.statusCode).toBe(200);
      expect(model.rawPayload.equals(await fs.readFile(path.join(dir, 'wt-onnx', 'model.onnx')))).toBe(true);
      expect(model.headers['cross-origin-resource-policy']).toBe('same-origin');
    } finally {
      await withOnnx.close();
    }
  });

  it('GET / without a built viewer answers 503 VIEWER_NOT_BUILT', async () => {
    const bare = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-bare'), engine: 'tfjs', viewerDir: path.join(dir, 'no-viewer') }, {});
    try {
      const response = await bare.app.inject({ method: 'GET', url: '/' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ code: 'VIEWER_NOT_BUILT' });
    } finally {
      await bare.close();
    }
  });
});

describe('token, CORS, queue limit, restart and expiry', () => {
  it('with BRATS_API_TOKEN the API needs the bearer token; health stays open', async () => {
    const secured = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-token'), engine: 'tfjs' }, { BRATS_API_TOKEN: 's3cret' });
    try {
      for (const url of ['/v1/model', '/metrics', '/v1/segmentations/00000000-0000-4000-8000-000000000000']) {
        const denied = await secured.app.inject({ method: 'GET', url });
        expect(denied.statusCode).toBe(401);
        expect(denied.json()).toMatchObject({ code: 'UNAUTHORIZED' });
        expect((await secured.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(401);
      }
      expect((await submit(secured, await uploadParts(files, '4d'))).statusCode).toBe(401);
      expect((await secured.app.inject({ method: 'GET', url: '/v1/model', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
      expect((await submit(secured, await uploadParts(files, '4d'), { authorization: 'Bearer s3cret' })).statusCode).toBe(202);
      expect((await secured.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      await secured.jobs.idle();
    } finally {
      await secured.close();
    }
  });

  it('sends CORS headers only when an origin is configured', async () => {
    const request = { method: 'GET' as const, url: '/healthz', headers: { origin: 'http://viewer.test' } };
    expect((await server.app.inject(request)).headers['access-control-allow-origin']).toBeUndefined();
    const open = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-cors'), engine: 'tfjs', corsOrigin: 'http://viewer.test' }, {});
    try {
      expect((await open.app.inject(request)).headers['access-control-allow-origin']).toBe('http://viewer.test');
      // The preflight of a cross-origin DELETE (deleting a job) is allowed.
      const preflight = await open.app.inject({
        method: 'OPTIONS',
        url: '/v1/segmentations/00000000-0000-4000-8000-000000000000',
        headers: { origin: 'http://viewer.test', 'access-control-request-method': 'DELETE' },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-methods']).toContain('DELETE');
    } finally {
      await open.close();
    }
  });

  it('concurrent uploads never push the queue past its limit', async () => {
    const gate = registerGatedEngine('gated-burst');
    const burst = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-burst'), engine: 'gated-burst', concurrency: 1, queueLimit: 2, ...LIMITS }, {});
    try {
      const parts = await uploadParts(files, '4d');
      const responses = await Promise.all(Array.from({ length: 12 }, () => submit(burst, parts)));
      const statuses = responses.map((response) => response.statusCode);
      expect(statuses.every((status) => status === 202 || status === 503)).toBe(true);
      // One job may already run; at most queueLimit wait.
      expect(burst.jobs.waiting).toBeLessThanOrEqual(2);
      expect(statuses.filter((status) => status === 202).length).toBe(burst.jobs.waiting + burst.jobs.running);
      expect(statuses.filter((status) => status === 503).length).toBeGreaterThanOrEqual(9);
    } finally {
      gate.open();
      await burst.jobs.idle();
      await burst.close();
    }
  });

  it('a job whose 202 never reached its client is withdrawn: at once while it waits, once it has run otherwise', async () => {
    const gate = registerGatedEngine('gated-withdraw');
    const service = await createServer({ model: path.join(dir, 'wt'), dataDir: path.join(dir, 'data-withdraw'), engine: 'gated-withdraw', concurrency: 1, queueLimit: 2, ...LIMITS }, {});
    try {
      const parts = await uploadParts(files, '4d');
      const running = (await submit(service, parts)).json<JobRecord>();
      while (service.jobs.running === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const waiting = (await submit(service, parts)).json<JobRecord>();
      const status = async (id: string): Promise<number> => (await service.app.inject({ method: 'GET', url: `/v1/segmentations/${id}` })).statusCode;
      expect([await status(running.id), await status(waiting.id)]).toEqual([200, 200]);

      await service.jobs.withdraw(waiting.id, 'test');
      expect(await status(waiting.id)).toBe(404);
      await expect(fs.stat(service.jobs.store.directory(waiting.id))).rejects.toThrow();

      await service.jobs.withdraw(running.id, 'test');
      expect(await status(running.id)).toBe(200);
      gate.open();
      await service.jobs.idle();
      expect(await status(running.id)).toBe(404);
      await expect(fs.stat(service.jobs.store.directory(running.id))).rejects.toThrow();
    } finally {
      gate.open();
      await service.close();
    }
  });

  it('past the queue limit uploads get 503 with Retry-After; a running job cannot be deleted; queued jobs survive a restart', async () => {
    const gate = registerGatedEngine('gated-test');
    const dataDir = path.join(dir, 'data-gated');
    const gated = await createServer({ model: path.join(dir, 'wt'), dataDir, engine: 'gated-test', concurrency: 1, queueLimit: 1, ...LIMITS }, {});
    const parts: FilePart[] = await uploadParts(files, '4d');
    const first = (await submit(gated, parts)).json<JobRecord>();
    // Wait until the first job holds the one slot (it is blocked in the engine).
    while (gated.jobs.running === 0 || gated.jobs.waiting > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const second = await submit(gated, parts);
    expect(second.statusCode).toBe(202);
    const refused = await submit(gated, parts);
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toMatchObject({ code: 'QUEUE_FULL' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await gated.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    expect((await gated.app.inject({ method: 'DELETE', url: `/v1/segmentations/${first.id}` })).json()).toMatchObject({ code: 'JOB_RUNNING' });
    expect((await gated.app.inject({ method: 'GET', url: `/v1/segmentations/${second.json<JobRecord>().id}/mask` })).statusCode).toBe(409);
    // Stop with the second job still queued: closing waits for the running one only.
    const closing = gated.close();
    gate.open();
    await closing;

    const restarted = await createServer({ model: path.join(dir, 'wt'), dataDir, engine: 'tfjs', ...LIMITS }, {});
    try {
      expect((await finished(restarted, first.id)).status).toBe('succeeded');
      const again = await finished(restarted, second.json<JobRecord>().id);
      expect(again.status).toBe('succeeded');
      expect((await restarted.app.inject({ method: 'GET', url: `/v1/segmentations/${again.id}/mask` })).statusCode).toBe(200);

      // Expiry: past its time a finished job is gone, files included.
      const removed = await restarted.jobs.removeExpired(Date.parse(again.expiresAt!) + 1);
      expect(removed).toBe(2);
      expect((await restarted.app.inject({ method: 'GET', url: `/v1/segmentations/${again.id}` })).statusCode).toBe(404);
      await expect(fs.stat(restarted.jobs.store.directory(again.id))).rejects.toThrow();
    } finally {
      await restarted.close();
    }
  });
});

