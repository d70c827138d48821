#!/usr/bin/env node
// The server under hostile load, on loopback, with the shipped model and real-sized scans (the BraTS grid, four
// channels): the server's memory (RSS) before, at the peak of and after a gzip bomb (1 GiB of zeros in 1 MB) and a
// burst of 100 concurrent uploads; how long the burst takes to be answered, with what; and how long /healthz takes
// to answer while the accepted jobs run (jobs run in the server's process, so its event loop shares their time).
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createVolume, encodeNifti, writePhantomDataset } from '@brats/io';

const here = path.dirname(fileURLToPath(import.meta.url));
const MODEL = path.resolve(here, '../../../models/brats2018-wt-unet');
const BURST = Number(process.env.BENCH_BURST ?? 100);
const QUEUE_LIMIT = 4;
const BOUNDARY = 'brats-bench-boundary';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-hostile-bench-'));

function multipart(filename, bytes) {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="scan"; filename="${filename}"\r\n\r\n`),
    bytes,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

function post(url, body) {
  return new Promise((resolve) => {
    const request = http.request({ host: url.hostname, port: url.port, path: '/v1/segmentations', method: 'POST', agent: false, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': body.length } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', (error) => resolve(`no answer (${error.code})`));
    request.end(body);
  });
}

const rssMiB = async (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(await fs.readFile(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/** Samples the server's RSS every 50 ms until stopped; returns the peak. */
function sampleRss(pid) {
  let peak = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      peak = Math.max(peak, await rssMiB(pid).catch(() => 0));
      await sleep(50);
    }
  })();
  return async () => {
    running = false;
    await done;
    return peak;
  };
}

async function main() {
  if (process.platform !== 'linux') {
    console.log('hostile bench: skipped (reads the server RSS from /proc)');
    return;
  }
  await writePhantomDataset(path.join(dir, 'msd'), { layout: 'msd', cases: 1, size: [240, 240, 155], seed: 5 });
  const scan = await fs.readFile(path.join(dir, 'msd', 'imagesTr', 'PHANTOM_001.nii.gz'));
  const head = Buffer.from(encodeNifti(createVolume('uint8', new Uint8Array(8), [2, 2, 2])).subarray(0, 352));
  for (const [offset, value] of [[40, 4], [42, 512], [44, 512], [46, 512], [48, 8]]) head.writeInt16LE(value, offset);
  const zeros = gzipSync(Buffer.alloc(16 * 1024 ** 2), { level: 9 });
  const bomb = Buffer.concat([gzipSync(head), ...Array.from({ length: 64 }, () => zeros)]);

  const server = spawn(process.execPath, [path.join(here, '..', 'dist', 'main.js'), '--model', MODEL, '--port', '0', '--data-dir', path.join(dir, 'data'), '--quiet'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BRATS_QUEUE_LIMIT: String(QUEUE_LIMIT), BRATS_CONCURRENCY: '1', BRATS_MAX_DECOMPRESSED_BYTES: String(256 * 1024 ** 2) },
  });
  let out = '';
  const url = new URL(await new Promise((resolve, reject) => {
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /brats server: (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  }));
  const baseline = await rssMiB(server.pid);

  let stop = sampleRss(server.pid);
  const bombStatus = await post(url, multipart('bomb.nii.gz', bomb));
  await sleep(1000);
  const bombPeak = await stop();
  const afterBomb = await rssMiB(server.pid);

  stop = sampleRss(server.pid);
  const started = performance.now();
  const statuses = await Promise.all(Array.from({ length: BURST }, () => post(url, multipart('case.nii.gz', scan))));
  const answeredSeconds = (performance.now() - started) / 1000;
  const counts = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  // While the accepted jobs run: how long the server takes to answer a health check.
  let slowest = 0;
  for (;;) {
    const asked = performance.now();
    const ready = await (await fetch(new URL('/readyz', url))).json();
    slowest = Math.max(slowest, performance.now() - asked);
    if (ready.waiting === 0 && ready.running === 0) break;
    await sleep(50);
  }
  const jobsSeconds = (performance.now() - started) / 1000;
  const burstPeak = await stop();
  await sleep(1000);
  const afterBurst = await rssMiB(server.pid);
  server.kill('SIGTERM');
  const exitCode = await new Promise((resolve) => server.on('exit', resolve));

  console.log(`\nhostile clients on ${os.availableParallelism()} CPUs, the shipped model (onnxruntime), queue limit ${QUEUE_LIMIT}, scans of ${(scan.length / 1024 ** 2).toFixed(1)} MB`);
  console.log(`  server RSS at start: ${baseline.toFixed(0)} MiB`);
  console.log(`  gzip bomb (1 GiB in ${(bomb.length / 1024 ** 2).toFixed(1)} MB): ${bombStatus}; RSS peak ${bombPeak.toFixed(0)} MiB, after ${afterBomb.toFixed(0)} MiB (+${(afterBomb - baseline).toFixed(0)} MiB over start; bound 150)`);
  console.log(`  ${BURST} concurrent uploads: ${Object.entries(counts).map(([status, count]) => `${status} x${count}`).join(', ')}, all answered in ${answeredSeconds.toFixed(1)} s`);
  console.log(`  accepted jobs done after ${jobsSeconds.toFixed(1)} s; slowest /readyz while they ran: ${slowest.toFixed(0)} ms`);
  console.log(`  RSS peak during the burst ${burstPeak.toFixed(0)} MiB, after it ${afterBurst.toFixed(0)} MiB (the engine's buffers, allocated by the first job, stay)`);
  console.log(`  SIGTERM: exit ${exitCode}`);
  await fs.rm(dir, { recursive: true, force: true });
  const unanswered = statuses.filter((status) => typeof status !== 'number').length;
  if (bombStatus !== 413 || afterBomb - baseline >= 150 || unanswered > 0 || exitCode !== 0) {
    console.error('FAILED: the bomb must get 413 with RSS back within 150 MiB, every upload an answer, SIGTERM exit 0');
    process.exit(1);
  }
}

main().catch(async (error) => {
  console.error(error);
  await fs.rm(dir, { recursive: true, force: true });
  process.exit(1);
});
