import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArgumentError } from '../errors.js';
import { downloadFile, partialPathFor } from './download.js';
import { FetchError } from './errors.js';
import { md5Of, startTestServer, type TestServer } from './fixtures.js';

// Random bytes: a resume that put a chunk in the wrong place could not still match the MD5.
const BODY = randomBytes(200_000);
const BODY_MD5 = md5Of(BODY);
const FAST = { retryDelayMs: 1, idleTimeoutMs: 10_000 };

let dir: string;
let server: TestServer | undefined;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-download-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await fs.rm(dir, { recursive: true, force: true });
});

async function listDir(): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}

describe('downloadFile', () => {
  it('downloads the whole file, verifies its MD5 and leaves no partial file', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY } });
    const target = path.join(dir, 'x.bin');
    const seen: number[] = [];
    const result = await downloadFile(server.url('/x.bin'), target, {
      md5: BODY_MD5,
      expectedBytes: BODY.byteLength,
      onProgress: (progress) => seen.push(progress.doneBytes),
    });
    expect(result).toMatchObject({ bytes: BODY.byteLength, md5: BODY_MD5, resumedFrom: 0, requests: 1, alreadyPresent: false });
    expect(md5Of(await fs.readFile(target))).toBe(BODY_MD5);
    expect(await listDir()).toEqual(['x.bin']);
    expect(server.requests).toEqual([{ path: '/x.bin', range: undefined, ifRange: undefined, status: 200 }]);
    expect(seen.at(-1)).toBe(BODY.byteLength);
  });

  it('resumes a partial file with a Range request for only the missing bytes', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY } });
    const target = path.join(dir, 'x.bin');
    await fs.writeFile(partialPathFor(target), BODY.subarray(0, 123_457));
    const result = await downloadFile(server.url('/x.bin'), target, { md5: BODY_MD5 });
    expect(server.requests.map((request) => [request.range, request.status])).toEqual([['bytes=123457-', 206]]);
    expect(result.resumedFrom).toBe(123_457);
    expect(md5Of(await fs.readFile(target))).toBe(BODY_MD5);
    expect(await listDir()).toEqual(['x.bin']);
  });

  it('resumes after the connection drops mid-way and the MD5 still matches', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY, dropFirstAfter: 70_000 } });
    const target = path.join(dir, 'x.bin');
    const notices: string[] = [];
    const result = await downloadFile(server.url('/x.bin'), target, { md5: BODY_MD5, ...FAST, onNotice: (line) => notices.push(line) });
    expect(result.md5).toBe(BODY_MD5);
    expect(result.requests).toBe(2);
    const second = server.requests[1]!;
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(second.range ?? '')?.[1]);
    // The client resumes from what it wrote: more than nothing, never more than the server sent.
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(70_000);
    expect(second.ifRange).toBe('"fixture-1"');
    expect(second.status).toBe(206);
    expect(notices.some((line) => line.includes('retry 1 of 5'))).toBe(true);
    expect(md5Of(await fs.readFile(target))).toBe(BODY_MD5);
  });

  it('restarts from zero when the server ignores Range (200 instead of 206)', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY, honourRange: false } });
    const target = path.join(dir, 'x.bin');
    await fs.writeFile(partialPathFor(target), BODY.subarray(0, 50_000));
    const notices: string[] = [];
    const result = await downloadFile(server.url('/x.bin'), target, { md5: BODY_MD5, onNotice: (line) => notices.push(line) });
    expect(server.requests.map((request) => [request.range, request.status])).toEqual([['bytes=50000-', 200]]);
    // Appending the full body to the partial would give 250,000 bytes and a wrong MD5.
    expect((await fs.stat(target)).size).toBe(BODY.byteLength);
    expect(result.md5).toBe(BODY_MD5);
    expect(notices.some((line) => line.includes('restarting from zero'))).toBe(true);
  });

  it('completes a partial file that already holds every byte (416 from the server)', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY } });
    const target = path.join(dir, 'x.bin');
    await fs.writeFile(partialPathFor(target), BODY);
    const result = await downloadFile(server.url('/x.bin'), target, { md5: BODY_MD5 });
    expect(server.requests.map((request) => [request.range, request.status])).toEqual([[`bytes=${BODY.byteLength}-`, 416]]);
    expect(result).toMatchObject({ md5: BODY_MD5, resumedFrom: BODY.byteLength });
    expect(await listDir()).toEqual(['x.bin']);
  });

  it('follows redirects, keeping the Range header', async () => {
    server = await startTestServer({ '/old': { kind: 'redirect', location: '/x.bin' }, '/x.bin': { kind: 'file', body: BODY } });
    const target = path.join(dir, 'x.bin');
    await fs.writeFile(partialPathFor(target), BODY.subarray(0, 1000));
    await downloadFile(server.url('/old'), target, { md5: BODY_MD5 });
    expect(server.requests.map((request) => [request.path, request.range, request.status])).toEqual([
      ['/old', 'bytes=1000-', 302],
      ['/x.bin', 'bytes=1000-', 206],
    ]);
    expect(md5Of(await fs.readFile(target))).toBe(BODY_MD5);
  });

  it('refuses a wrong checksum: no final file, the partial file deleted', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY } });
    const target = path.join(dir, 'x.bin');
    const wrong = '0'.repeat(32);
    const error = await downloadFile(server.url('/x.bin'), target, { md5: wrong }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ code: 'FETCH', failure: 'checksum', expected: wrong, actual: BODY_MD5 });
    expect(await listDir()).toEqual([]);
  });

  it('refuses a server whose size differs from the expected one before receiving the body', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'file', body: BODY } });
    const error = await downloadFile(server.url('/x.bin'), path.join(dir, 'x.bin'), { expectedBytes: 7 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'size', expected: '7', actual: String(BODY.byteLength) });
    expect(await listDir()).toEqual([]);
  });

  it('does not retry a 404', async () => {
    server = await startTestServer({});
    const error = await downloadFile(server.url('/missing.tar'), path.join(dir, 'x.bin'), FAST).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'http', status: 404 });
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 503 with backoff, then gives up with a network failure', async () => {
    server = await startTestServer({ '/x.bin': { kind: 'status', status: 503 } });
    const error = await downloadFile(server.url('/x.bin'), path.join(dir, 'x.bin'), { ...FAST, retries: 2 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'network', status: 503 });
    expect(server.requests).toHaveLength(3);
  });

  it('gives up on a refused connection after the retries', async () => {
    server = await startTestServer({});
    const url = server.url('/x.bin');
    await server.close();
    server = undefined;
    const error = await downloadFile(url, path.join(dir, 'x.bin'), { ...FAST, retries: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'network' });
    expect((error as FetchError).message).toContain('ECONNREFUSED');
  });

  it('keeps a final file already present when its MD5 matches, and refuses one that does not', async () => {
    const target = path.join(dir, 'x.bin');
    await fs.writeFile(target, BODY);
    const result = await downloadFile('http://127.0.0.1:9/never-requested', target, { md5: BODY_MD5 });
    expect(result).toMatchObject({ alreadyPresent: true, requests: 0, md5: BODY_MD5 });
    const error = await downloadFile('http://127.0.0.1:9/never-requested', target, { md5: 'f'.repeat(32) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'exists', actual: BODY_MD5 });
  });

  it.each([
    ['a short md5', { md5: 'abc' }, 'md5'],
    ['a negative retry count', { retries: -1 }, 'retries'],
    ['a fractional timeout', { idleTimeoutMs: 0.5 }, 'idleTimeoutMs'],
  ])('rejects %s', async (_name, options, argument) => {
    const error = await downloadFile('http://127.0.0.1:9/x', path.join(dir, 'x.bin'), options).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).argument).toBe(argument);
  });
});
