import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createVolume, openDataset, writeNifti } from '@brats/io';
import { create, Header } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let work: string;
let server: Server;
let baseUrl: string;
const files = new Map<string, Buffer>();
const rangesSeen: (string | undefined)[] = [];
let goodTar: Buffer;

const md5Of = (bytes: Uint8Array): string => createHash('md5').update(bytes).digest('hex');

/** A ustar archive with the given file entries, built from node-tar's header encoder (its packer strips '..'). */
function handBuiltTar(entries: { path: string; body: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body);
    const block = Buffer.alloc(512);
    new Header({ path: entry.path, type: 'File', size: body.byteLength, mode: 0o644, mtime: new Date(0) }).encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.byteLength % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-fetch-'));
  const task = path.join(work, 'source', 'Task01_BrainTumour');
  const image = createVolume('float32', new Float32Array(8 * 8 * 4 * 4).map((_, i) => i % 13), [8, 8, 4, 4]);
  await writeNifti(path.join(task, 'imagesTr', 'BRATS_001.nii.gz'), image);
  await writeNifti(path.join(task, 'labelsTr', 'BRATS_001.nii.gz'), createVolume('uint8', new Uint8Array(256).map((_, i) => i % 4), [8, 8, 4]));
  await fs.writeFile(
    path.join(task, 'dataset.json'),
    JSON.stringify({
      name: 'BRATS',
      tensorImageSize: '4D',
      modality: { 0: 'FLAIR', 1: 'T1w', 2: 't1gd', 3: 'T2w' },
      training: [{ image: './imagesTr/BRATS_001.nii.gz', label: './labelsTr/BRATS_001.nii.gz' }],
      test: [],
    }),
  );
  const tarFile = path.join(work, 'good.tar');
  await create({ file: tarFile, cwd: path.join(work, 'source'), portable: true }, ['Task01_BrainTumour']);
  goodTar = await fs.readFile(tarFile);
  files.set('/x.tar', goodTar);
  files.set('/evil.tar', handBuiltTar([{ path: 'Task01_BrainTumour/dataset.json', body: '{}' }, { path: '../evil.txt', body: 'evil' }]));
  // A loopback server that honours single open-ended Range requests.
  server = createServer((request, response) => {
    rangesSeen.push(request.headers.range);
    const body = files.get(request.url ?? '');
    if (body === undefined) return void response.writeHead(404).end();
    const start = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0);
    if (start > 0) response.writeHead(206, { 'content-range': `bytes ${start}-${body.byteLength - 1}/${body.byteLength}` });
    else response.writeHead(200, { 'content-length': String(body.byteLength) });
    response.end(body.subarray(start));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await fs.rm(work, { recursive: true, force: true });
});

describe('brats fetch', () => {
  it('downloads, verifies, extracts and reports a dataset that openDataset reads', async () => {
    const dir = path.join(work, 'ok');
    const { code, stdout, stderr } = await runCaptured(['fetch', '--dir', dir, '--url', `${baseUrl}/x.tar`, '--md5', md5Of(goodTar)]);
    expect(stderr).toContain('download: done');
    expect(stderr).toContain('extract: done');
    expect(code).toBe(0);
    expect(stdout).toContain('cases       1 (1 labelled)');
    expect(stdout).toContain(`MD5 ${md5Of(goodTar)} verified; deleted after extraction`);
    expect(await fs.readdir(dir)).toEqual(['Task01_BrainTumour']);
    const dataset = await openDataset(path.join(dir, 'Task01_BrainTumour'));
    expect(dataset.cases.map((c) => c.id)).toEqual(['BRATS_001']);
  });

  it('resumes a partial download: only the missing bytes are requested', async () => {
    const dir = path.join(work, 'resume');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'Task01_BrainTumour.tar.partial'), goodTar.subarray(0, 1536));
    rangesSeen.length = 0;
    const { code, stdout, stderr } = await runCaptured(['fetch', '--dir', dir, '--url', `${baseUrl}/x.tar`, '--md5', md5Of(goodTar), '--keep-archive']);
    expect(code).toBe(0);
    expect(rangesSeen).toEqual(['bytes=1536-']);
    expect(stderr).toContain('note: resuming');
    expect(stdout).toContain('resumed at byte 1536');
    expect(md5Of(await fs.readFile(path.join(dir, 'Task01_BrainTumour.tar')))).toBe(md5Of(goodTar));
  });

  it('refuses a wrong checksum with exit code 2 and keeps no file', async () => {
    const dir = path.join(work, 'wrong-md5');
    const { code, stderr } = await runCaptured(['fetch', '--dir', dir, '--url', `${baseUrl}/x.tar`, '--md5', 'ab'.repeat(16)]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/error: .*MD5 of the \d+ bytes received is [0-9a-f]{32}, expected abababab/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('applies the task\'s size and MD5 to a --url without --md5: a different file is refused before its body', async () => {
    const dir = path.join(work, 'mirror');
    rangesSeen.length = 0;
    const { code, stderr } = await runCaptured(['fetch', '--dir', dir, '--url', `${baseUrl}/x.tar`]);
    expect(code).toBe(2);
    expect(stderr).toContain(`announces ${goodTar.byteLength} bytes, expected 7608266240`);
    expect(rangesSeen).toEqual([undefined]);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('refuses an archive with a ../ entry with exit code 2, writing nothing outside', async () => {
    const dir = path.join(work, 'evil', 'data');
    const evil = files.get('/evil.tar')!;
    const { code, stderr } = await runCaptured(['fetch', '--dir', dir, '--url', `${baseUrl}/evil.tar`, '--md5', md5Of(evil)]);
    expect(code).toBe(2);
    expect(stderr).toContain("entry '../evil.txt' has a '..' segment");
    expect(await fs.readdir(path.join(work, 'evil'))).toEqual(['data']);
    expect(await fs.readdir(dir)).toEqual(['Task01_BrainTumour.tar']);
  });

  it.each([
    ['an unknown task', ['--task', 'Task02_Heart'], '--task: unknown task'],
    ['a malformed --md5', ['--md5', 'xyz'], '--md5: expected 32 hex digits'],
    ['a non-http --url', ['--url', 'ftp://example.org/x.tar'], '--url: expected an http'],
    ['a negative --retries', ['--retries', '-1'], '--retries: expected an integer'],
  ])('rejects %s with exit code 1 before any request', async (_name, extra, message) => {
    rangesSeen.length = 0;
    const { code, stderr } = await runCaptured(['fetch', '--dir', path.join(work, 'usage'), ...extra]);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    expect(rangesSeen).toEqual([]);
  });
});
