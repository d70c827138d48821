#!/usr/bin/env node
// Load benchmark of the server on loopback: 200 segmentation jobs submitted at once and 50 malformed uploads in
// between (any upload refused with 503 is sent again after Retry-After). Checks that every valid job finishes and
// none is lost, that every malformed upload gets a 4xx, and that the server's memory stays bounded; prints
// jobs/min and p50/p95 job latency (first upload attempt → succeeded, as the client sees it, 503 waits included).
// Tiny phantoms, a tiny model; the default queue limit of 64 (BRATS_QUEUE_LIMIT), which 200 uploads at once pass.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writePhantomDataset } from '@brats/io';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';

const JOBS = Number(process.env.BENCH_JOBS ?? 200);
const MALFORMED = Number(process.env.BENCH_MALFORMED ?? 50);
const MEMORY_LIMIT_BYTES = 2 * 1024 ** 3;
const here = path.dirname(fileURLToPath(import.meta.url));
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-server-bench-'));

async function writeBundle(bundle) {
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0 });
  // The server on its own (main.js) runs the runtime engines only: the bundle gets its model.onnx.
  await exportBundleToOnnx(bundle);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  await writeBundle(path.join(dir, 'bundle'));
  await writePhantomDataset(path.join(dir, 'msd'), { layout: 'msd', cases: 1, size: [48, 48, 32], seed: 1 });
  await writePhantomDataset(path.join(dir, 'brats'), { layout: 'brats2018', cases: 1, size: [48, 48, 32], seed: 1 });
  const scan4d = await fs.readFile(path.join(dir, 'msd', 'imagesTr', 'PHANTOM_001.nii.gz'));
  const roles = {};
  for (const [role, suffix] of [['flair', 'flair'], ['t1w', 't1'], ['t1gd', 't1ce'], ['t2w', 't2']]) {
    roles[role] = await fs.readFile(path.join(dir, 'brats', 'Phantom_001', `Phantom_001_${suffix}.nii.gz`));
  }

  const server = spawn(process.execPath, [path.join(here, '..', 'dist', 'main.js'), '--model', path.join(dir, 'bundle'), '--port', '0', '--data-dir', path.join(dir, 'data'), '--engine', 'onnxruntime', '--quiet'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BRATS_QUEUE_LIMIT: process.env.BRATS_QUEUE_LIMIT ?? '64', BRATS_MAX_DECOMPRESSED_BYTES: String(16 * 1024 ** 2), BRATS_MAX_UPLOAD_BYTES: String(8 * 1024 ** 2) },
  });
  let serverOut = '';
  const url = await new Promise((resolve, reject) => {
    server.stdout.on('data', (chunk) => {
      serverOut += String(chunk);
      const match = /brats server: (http:\/\/\S+)/.exec(serverOut);
      if (match) resolve(match[1]);
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}: ${serverOut}`)));
  });
  console.log(`server ${url}; ${serverOut.trim()}`);

  let peakRss = 0;
  let lastRss = 0;
  let peakWaiting = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try {
        const text = await (await fetch(`${url}/metrics`)).text();
        lastRss = Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
        peakRss = Math.max(peakRss, lastRss);
        peakWaiting = Math.max(peakWaiting, Number(/^brats_queue_waiting (\d+)/m.exec(text)?.[1] ?? 0));
      } catch {
        // The sampler keeps going while the server is busy; a missed sample is no result.
      }
      await sleep(250);
    }
  })();

  const validForm = (index) => {
    const form = new FormData();
    if (index % 2 === 0) form.append('scan', new Blob([scan4d]), 'case.nii.gz');
    else for (const [role, bytes] of Object.entries(roles)) form.append(role, new Blob([bytes]), `${role}.nii.gz`);
    return form;
  };
  const malformedRequests = [
    () => { const f = new FormData(); f.append('scan', new Blob([Buffer.from('not a scan at all')]), 'x.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('scan', new Blob([gzipSync(Buffer.alloc(1000, 3))]), 'x.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('scan', new Blob([gzipSync(Buffer.alloc(64 * 1024 ** 2))]), 'bomb.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('scan', new Blob([scan4d.subarray(0, 500)]), 'cut.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('flair', new Blob([roles.flair]), 'f.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('scan', new Blob([roles.flair]), 'three-d.nii.gz'); return { body: f }; },
    () => { const f = new FormData(); f.append('notes', new Blob([Buffer.from('hello')]), 'notes.txt'); return { body: f }; },
    () => ({ body: JSON.stringify({ scan: 'x' }), headers: { 'content-type': 'application/json' } }),
    () => { const f = new FormData(); f.append('scan', new Blob([Buffer.alloc(9 * 1024 ** 2)]), 'big.nii'); return { body: f }; },
  ];

  const started = performance.now();
  const jobs = [];
  const retryAfterSeconds = [];
  // A full queue answers 503 before it reads an upload's body, valid or malformed: like a client, send it again
  // after Retry-After until the server has read it. Returns that answer, its body unread.
  const uploadUntilRead = async (makeRequest, onRefused) => {
    for (;;) {
      const { body, headers } = makeRequest();
      const response = await fetch(`${url}/v1/segmentations`, { method: 'POST', body, ...(headers ? { headers } : {}) });
      if (response.status !== 503) return response;
      await response.arrayBuffer();
      const wait = Number(response.headers.get('retry-after') ?? 1);
      onRefused(wait);
      await sleep(wait * 1000);
    }
  };
  const submitValid = async (index) => {
    const submittedAt = performance.now();
    const response = await uploadUntilRead(() => ({ body: validForm(index) }), (wait) => retryAfterSeconds.push(wait));
    if (response.status !== 202) throw new Error(`valid upload ${index}: ${response.status} ${await response.text()}`);
    const { id } = await response.json();
    jobs.push({ id, submittedAt, finishedAt: undefined, status: 'queued' });
  };
  const malformedStatuses = new Map();
  let malformedRetries = 0;
  const submitMalformed = async (index) => {
    let status;
    try {
      const response = await uploadUntilRead(() => malformedRequests[index % malformedRequests.length](), () => malformedRetries++);
      status = response.status;
      await response.arrayBuffer();
    } catch (error) {
      // The server may close the connection after refusing an oversized body before reading it all.
      status = `connection closed (${error.cause?.code ?? error.message})`;
    }
    malformedStatuses.set(status, (malformedStatuses.get(status) ?? 0) + 1);
  };
  const submissions = [];
  const every = Math.max(1, Math.floor(JOBS / Math.max(1, MALFORMED)));
  let malformedSent = 0;
  for (let i = 0; i < JOBS; i++) {
    submissions.push(submitValid(i));
    if (i % every === 0 && malformedSent < MALFORMED) submissions.push(submitMalformed(malformedSent++));
  }
  while (malformedSent < MALFORMED) submissions.push(submitMalformed(malformedSent++));
  let submitting = true;
  let submittedSeconds = 0;
  const submitted = Promise.all(submissions).finally(() => {
    submitting = false;
    submittedSeconds = (performance.now() - started) / 1000;
  });
  // Poll while uploads still arrive, so that each job's finish time is seen when it happens.
  const polled = new Set();
  while (submitting || polled.size < jobs.length) {
    const open = jobs.filter((job) => !polled.has(job));
    await Promise.all(open.map(async (job) => {
      const record = await (await fetch(`${url}/v1/segmentations/${job.id}`)).json();
      if (record.status === 'succeeded' || record.status === 'failed') {
        job.status = record.status;
        job.finishedAt = performance.now();
        polled.add(job);
      }
    }));
    await sleep(200);
  }
  await submitted;
  const elapsedSeconds = (performance.now() - started) / 1000;
  const health = await (await fetch(`${url}/healthz`)).json();
  const metricsText = await (await fetch(`${url}/metrics`)).text();
  sampling = false;
  await sampler;
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));

  const latencies = jobs.map((job) => (job.finishedAt - job.submittedAt) / 1000).sort((a, b) => a - b);
  const succeeded = jobs.filter((job) => job.status === 'succeeded').length;
  const distinct = new Set(jobs.map((job) => job.id)).size;
  const malformedTotal = [...malformedStatuses.values()].reduce((a, b) => a + b, 0);
  const malformedOk = [...malformedStatuses.entries()].every(([status]) => typeof status === 'number' ? status >= 400 && status < 500 : true);
  console.log(`\n${JOBS} jobs + ${malformedTotal} malformed uploads on ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? 'cpu'}), engine onnxruntime`);
  console.log(`  all uploads answered in ${submittedSeconds.toFixed(1)} s; ${retryAfterSeconds.length} upload(s) retried after 503 Retry-After (${retryAfterSeconds.length > 0 ? `${Math.min(...retryAfterSeconds)}-${Math.max(...retryAfterSeconds)} s` : 'none'}); at most ${peakWaiting} job(s) waited`);
  console.log(`  jobs: ${succeeded}/${JOBS} succeeded, ${distinct} distinct ids, in ${elapsedSeconds.toFixed(1)} s → ${((JOBS / elapsedSeconds) * 60).toFixed(0)} jobs/min`);
  console.log(`  job latency (submit → succeeded): p50 ${percentile(latencies, 50).toFixed(2)} s, p95 ${percentile(latencies, 95).toFixed(2)} s, max ${latencies[latencies.length - 1].toFixed(2)} s`);
  console.log(`  malformed uploads: ${[...malformedStatuses.entries()].map(([status, count]) => `${status} x${count}`).join(', ')} (${malformedRetries} sent again after 503 Retry-After)`);
  console.log(`  server memory (RSS): peak ${(peakRss / 1024 ** 2).toFixed(0)} MiB, at the end ${(lastRss / 1024 ** 2).toFixed(0)} MiB (limit ${MEMORY_LIMIT_BYTES / 1024 ** 2} MiB)`);
  console.log(`  server health after the run: ${health.status}; brats_jobs_finished_total ${/^brats_jobs_finished_total\{status="succeeded"\} (\d+)/m.exec(metricsText)?.[1]}`);
  const failures = [];
  if (succeeded !== JOBS || distinct !== JOBS) failures.push(`expected ${JOBS} succeeded jobs with distinct ids`);
  if (malformedTotal !== MALFORMED || !malformedOk) failures.push('every malformed upload must get a 4xx');
  if (peakRss > MEMORY_LIMIT_BYTES) failures.push('server memory past the limit');
  if (health.status !== 'ok') failures.push('server unhealthy after the run');
  await fs.rm(dir, { recursive: true, force: true });
  if (failures.length > 0) {
    console.error(`FAILED: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log('ok: every valid job finished, none lost; every malformed upload refused with 4xx');
}

main().catch(async (error) => {
  console.error(error);
  await fs.rm(dir, { recursive: true, force: true });
  process.exit(1);
});
