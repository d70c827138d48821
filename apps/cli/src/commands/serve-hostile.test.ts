/**
 * `brats serve` as a real process on loopback, under what a hostile or careless client sends: a gzip bomb, a burst
 * of 100 real-sized uploads, a Content-Length shorter than its body, a garbage multipart body, a client that hangs
 * up mid-upload. Every request must get an HTTP status, no job may exist that its client was not told about, no
 * staging folder may survive its request, memory must come back after the bomb, and SIGTERM must still exit 0.
 */
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createVolume, encodeNifti, writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess, type ServeProcess } from '../../test/serve-process.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/bin.js');
const TOKEN = 'hostile-test-token';
const QUEUE_LIMIT = 3;
const BOUNDARY = 'brats-hostile-boundary';

let dir: string;
let dataDir: string;
let scan: Buffer;
let server: ServeProcess;
let url: URL;

function multipart(field: string, filename: string, bytes: Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

interface Answer {
  status: number | string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** POSTs a multipart body on its own connection; an answer is a status, or the socket error when none came. */
function post(body: Buffer): Promise<Answer> {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: '/v1/segmentations',
        method: 'POST',
        agent: false,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += String(chunk)));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: text }));
      },
    );
    request.on('error', (error: NodeJS.ErrnoException) => resolve({ status: `no answer (${error.code ?? error.message})`, headers: {}, body: '' }));
    request.end(body);
  });
}

/** Writes raw bytes on a fresh connection and returns what came back before the server closed it (or after 3 s). */
function raw(bytes: Buffer[], keepOpenMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += String(chunk)));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => socket.destroy(), keepOpenMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    for (const part of bytes) socket.write(part);
  });
}

function rssMiB(pid: number): Promise<number> {
  return fs.readFile(`/proc/${pid}/status`, 'utf8').then((status) => Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024);
}

/** Job folders and staging folders in the server's data folder. */
async function dataEntries(): Promise<{ jobs: string[]; staging: string[] }> {
  const names = await fs.readdir(path.join(dataDir, 'jobs'));
  return { jobs: names.filter((name) => !name.startsWith('.')).sort(), staging: names.filter((name) => name.startsWith('.staging-')) };
}

/** Polls until no staging folder is left (a handler cleans up after it answered), for at most `ms`. */
async function settledEntries(ms = 10_000): Promise<{ jobs: string[]; staging: string[] }> {
  const end = Date.now() + ms;
  let entries = await dataEntries();
  while (entries.staging.length > 0 && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    entries = await dataEntries();
  }
  return entries;
}

const runnable = existsSync(BIN) && process.platform === 'linux';

beforeAll(async () => {
  if (!runnable) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-serve-hostile-'));
  dataDir = path.join(dir, 'data');
  // A real-sized scan: the BraTS grid, four channels, about 10 MB compressed.
  await writePhantomDataset(path.join(dir, 'msd'), { layout: 'msd', cases: 1, size: [240, 240, 155], seed: 4 });
  scan = await fs.readFile(path.join(dir, 'msd', 'imagesTr', 'PHANTOM_001.nii.gz'));
  server = await startServeProcess(process.execPath, [BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--quiet'], {
    env: { ...process.env, BRATS_API_TOKEN: TOKEN, BRATS_QUEUE_LIMIT: String(QUEUE_LIMIT), BRATS_CONCURRENCY: '1', BRATS_MAX_DECOMPRESSED_BYTES: String(256 * 1024 ** 2) },
  });
  url = new URL(server.url);
}, 120_000);
afterAll(async () => {
  if (server !== undefined && server.child.exitCode === null) server.child.kill('SIGKILL');
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!runnable)(`brats serve under hostile clients${runnable ? '' : ' (skipped: build the CLI first; Linux only, for /proc)'}`, () => {
  it('refuses a gzip bomb with 413 and its memory comes back within 150 MB of the baseline', async () => {
    const baseline = await rssMiB(server.child.pid!);
    // A valid header, then 1 GiB of zeros in about 1 MB: gzip members in a row.
    const head = Buffer.from(encodeNifti(createVolume('uint8', new Uint8Array(8), [2, 2, 2])).subarray(0, 352));
    // dim[0..4] = 4, 512, 512, 512, 8: a uint8 image of 1 GiB.
    for (const [offset, value] of [[40, 4], [42, 512], [44, 512], [46, 512], [48, 8]] as const) head.writeInt16LE(value, offset);
    const zeros = gzipSync(Buffer.alloc(16 * 1024 ** 2), { level: 9 });
    const bomb = Buffer.concat([gzipSync(head), ...Array.from({ length: 64 }, () => zeros)]);
    expect(bomb.length).toBeLessThan(2 * 1024 ** 2);

    let peak = baseline;
    const sampler = setInterval(() => void rssMiB(server.child.pid!).then((rss) => (peak = Math.max(peak, rss))).catch(() => undefined), 50);
    const answer = await post(multipart('scan', 'bomb.nii.gz', bomb));
    clearInterval(sampler);
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'SCAN_TOO_LARGE' });
    expect(JSON.parse(answer.body).message).toMatch(/^scan \(bomb\.nii\.gz\): decompressed size exceeds the limit of 268435456 bytes$/);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = await rssMiB(server.child.pid!);
    console.log(`gzip bomb (1 GiB in ${(bomb.length / 1024 ** 2).toFixed(1)} MB): RSS ${baseline.toFixed(0)} MiB before, peak ${peak.toFixed(0)}, ${after.toFixed(0)} after`);
    expect(after - baseline).toBeLessThan(150);
    expect(await settledEntries()).toEqual({ jobs: [], staging: [] });
  });

  it('answers every one of 100 concurrent real-sized uploads: 202 or 503 with Retry-After; no ghost jobs, no staging folders', async () => {
    const body = multipart('scan', 'case.nii.gz', scan);
    const answers = await Promise.all(Array.from({ length: 100 }, () => post(body)));
    const statuses = answers.map((answer) => answer.status);
    const accepted = answers.filter((answer) => answer.status === 202).map((answer) => (JSON.parse(answer.body) as { id: string }).id);
    const refused = answers.filter((answer) => answer.status === 503);
    console.log(`100 concurrent uploads of ${(scan.length / 1024 ** 2).toFixed(1)} MB: ${accepted.length} accepted (202), ${refused.length} refused (503)`);
    expect(statuses.filter((status) => status !== 202 && status !== 503)).toEqual([]);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    // The queue holds QUEUE_LIMIT waiting jobs; one more may already run.
    expect(accepted.length).toBeLessThanOrEqual(QUEUE_LIMIT + 1);
    for (const answer of refused) {
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'QUEUE_FULL' });
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const entries = await settledEntries();
    expect(entries.staging).toEqual([]);
    // Every job on disk is one a client was told about, and each answers.
    expect(entries.jobs).toEqual([...accepted].sort());
    for (const id of accepted) {
      const response = await fetch(new URL(`/v1/segmentations/${id}`, url), { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(response.status).toBe(200);
    }
    // The jobs still waiting are deleted (the running one cannot be): their places in the queue come back.
    for (const id of accepted) {
      const response = await fetch(new URL(`/v1/segmentations/${id}`, url), { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
      expect([204, 409]).toContain(response.status);
    }
    const ready = (await (await fetch(new URL('/readyz', url))).json()) as { status: string; waiting: number };
    expect(ready).toMatchObject({ status: 'ready', waiting: 0 });
  }, 300_000);

  it('a Content-Length shorter than the body: one 400 in the API shape, and no staging folder', async () => {
    const before = (await dataEntries()).jobs;
    const body = multipart('scan', 'case.nii.gz', scan.subarray(0, 4096));
    const text = await raw([
      Buffer.from(`POST /v1/segmentations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${body.length - 200}\r\n\r\n`),
      body,
    ]);
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('"code":"BAD_REQUEST"');
    expect(await settledEntries()).toEqual({ jobs: before, staging: [] });
  });

  it('a garbage multipart body gets 400 BAD_UPLOAD, and no staging folder', async () => {
    const before = (await dataEntries()).jobs;
    const answer = await post(Buffer.from('this is not multipart at all '.repeat(100)));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'BAD_UPLOAD' });
    expect(await settledEntries()).toEqual({ jobs: before, staging: [] });
  });

  it('a client that hangs up mid-upload leaves no job and no staging folder', async () => {
    const before = (await dataEntries()).jobs;
    const body = multipart('scan', 'case.nii.gz', scan);
    // Half the body, then the connection closes without an answer being read.
    await raw(
      [
        Buffer.from(`POST /v1/segmentations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${body.length}\r\n\r\n`),
        body.subarray(0, body.length >> 1),
      ],
      500,
    );
    expect(await settledEntries()).toEqual({ jobs: before, staging: [] });
  });

  it('SIGTERM after refused uploads still exits 0', async () => {
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toContain('stopping: waiting for running jobs');
  }, 120_000);
});
