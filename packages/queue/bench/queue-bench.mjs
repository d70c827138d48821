// Cohort throughput: the same phantom cohort segmented in this process (the runtime's in-process runner), then on
// one and on two worker processes sharing a BullMQ queue in Redis on loopback; scans per minute for each, and the
// queue's overhead per job (the one-worker wall time minus the time the worker spent in its jobs, per job). Every
// run must write the same label maps. Uses the built packages (dist/) and an untrained U-Net exported to ONNX, so
// the figures are about throughput, not accuracy.
// Each run is repeated and the fastest kept (the machines this runs on are shared; the fastest run is the one least
// disturbed). Two workers on one machine each get half the cores for ONNX Runtime (`threads`), as `brats worker
// --threads` would be set; the in-process run and the single worker use the engine's default (every core).
// Run: pnpm --filter @brats/queue bench (after pnpm build). Options: --cases N (24), --size X,Y,Z (120,120,78),
// --crop X,Y,Z (96,96,64), --filters N (8), --repeat N (3). Redis: $BRATS_BENCH_REDIS, else a redis-server started
// here on a free loopback port (apt-get install redis-server), else the in-process figure only.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
for (const dist of ['../dist/index.js', '../../ncs2-runtime/dist/index.js', '../../io/dist/index.js', '../../unet/dist/index.js']) {
  if (!existsSync(path.join(here, dist))) {
    console.error(`queue-bench: ${path.join(here, dist)} is missing; build first: pnpm build`);
    process.exit(1);
  }
}
const { CohortQueue } = await import('@brats/queue');
const { CohortEngineCache, createCohortJobs, runCohortInProcess } = await import('@brats/ncs2-runtime');
const { openDataset, writePhantomDataset } = await import('@brats/io');
const { exportBundleToOnnx, writeUntrainedBundle } = await import('@brats/unet');

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? process.argv[index + 1] : fallback;
}
const triple = (text) => text.split(',').map(Number);
const cases = Number(option('cases', '24'));
const size = triple(option('size', '120,120,78'));
const crop = triple(option('crop', '96,96,64'));
const filters = Number(option('filters', '8'));
const repeat = Number(option('repeat', '3'));
const halfCores = Math.max(1, Math.floor(os.availableParallelism() / 2));

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Redis to bench against: given, or started here (and stopped at the end). */
async function startRedis() {
  if (process.env.BRATS_BENCH_REDIS !== undefined) return { url: process.env.BRATS_BENCH_REDIS, stop: async () => {} };
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let tries = 0; ; tries++) {
    try {
      await (await CohortQueue.open(url, { name: 'ping', connectTimeoutMs: 500 })).close();
      break;
    } catch (error) {
      if (tries > 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return { url, stop: async () => void server.kill('SIGTERM') };
}

function startWorker(url, name, threads) {
  const child = spawn(process.execPath, [path.join(here, 'queue-worker.mjs'), url, name, ...(threads === undefined ? [] : [String(threads)])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`a bench worker exited with ${code} before it was ready`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return { ready, stop: async () => (child.kill('SIGTERM'), await exited) };
}

async function sameFiles(a, b, ids) {
  for (const id of ids) {
    const [x, y] = await Promise.all([fs.readFile(path.join(a, `${id}.nii.gz`)), fs.readFile(path.join(b, `${id}.nii.gz`))]);
    if (!x.equals(y)) return false;
  }
  return true;
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-queue-bench-'));
let redis;
try {
  process.stdout.write(`writing ${cases} phantoms ${size.join('x')} and an untrained U-Net (f=${filters}, crop ${crop.join('x')}) exported to ONNX...\n`);
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases, size, seed: 3, compressionLevel: 1 });
  const bundle = path.join(dir, 'model');
  await writeUntrainedBundle(bundle, { crop, filters, depth: 3, dropout: 0, seed: 5 });
  await exportBundleToOnnx(bundle);
  const refs = (await openDataset(path.join(dir, 'phantoms'))).cases;
  const ids = refs.map((ref) => ref.id);
  const jobsInto = (out) => createCohortJobs(refs, { bundle, out: path.join(dir, out), engine: 'onnxruntime' });
  const rows = [];

  let inProcessSeconds = Number.POSITIVE_INFINITY;
  for (let run = 0; run < repeat; run++) {
    const engines = new CohortEngineCache();
    const started = performance.now();
    const outcomes = await runCohortInProcess(jobsInto(`in-process-${run}`), { engines });
    inProcessSeconds = Math.min(inProcessSeconds, (performance.now() - started) / 1000);
    await engines.dispose();
    if (outcomes.some((outcome) => outcome.status !== 'completed')) throw new Error('a case failed in process');
  }
  rows.push({ runner: 'in-process (one case after the other)', threads: 'default', seconds: inProcessSeconds, identical: true });

  redis = await startRedis();
  let overheadMs;
  if (redis === undefined) {
    process.stdout.write('queue-bench: redis-server is not installed (apt-get install redis-server); the queue rows are left out\n');
  } else {
    for (const workers of [1, 2]) {
      const threads = workers === 1 ? undefined : halfCores;
      let best;
      for (let run = 0; run < repeat; run++) {
        const name = `bench-${process.pid}-${workers}-${run}`;
        const queue = await CohortQueue.open(redis.url, { name });
        const processes = Array.from({ length: workers }, () => startWorker(redis.url, name, threads));
        try {
          await Promise.all(processes.map((worker) => worker.ready));
          const out = `queue-${workers}-${run}`;
          const started = performance.now();
          const { ids: jobIds } = await queue.submit(jobsInto(out));
          const ended = await queue.waitFor(jobIds, { pollMs: 20 });
          const seconds = (performance.now() - started) / 1000;
          if (ended.some((outcome) => outcome.status !== 'completed')) throw new Error(`a case failed on ${workers} worker(s): ${JSON.stringify(ended.find((o) => o.status !== 'completed'))}`);
          const jobSeconds = ended.reduce((sum, outcome) => sum + outcome.result.timings.total, 0);
          const identical = await sameFiles(path.join(dir, 'in-process-0'), path.join(dir, out), ids);
          if (best === undefined || seconds < best.seconds) best = { seconds, jobSeconds, identical };
          else best.identical &&= identical;
        } finally {
          await Promise.all(processes.map((worker) => worker.stop()));
          await queue.clear(true);
          await queue.close();
        }
      }
      if (workers === 1) overheadMs = ((best.seconds - best.jobSeconds) / cases) * 1000;
      rows.push({ runner: `queue, ${workers} worker process${workers === 1 ? '' : 'es'}`, threads: threads === undefined ? 'default' : `${threads} each`, seconds: best.seconds, identical: best.identical });
    }
  }

  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  process.stdout.write(`\n${cases} phantom scans ${size.join('x')}, U-Net f=${filters} depth 3 on ${crop[2]} slices of ${crop[0]}x${crop[1]} per scan, ONNX Runtime; ${os.availableParallelism()} CPUs (${cpu}), Node ${process.version}; fastest of ${repeat} runs\n\n`);
  process.stdout.write('| runner | ONNX Runtime threads | wall time | scans/min | vs in-process | label maps as in-process |\n| --- | --- | --- | --- | --- | --- |\n');
  for (const row of rows) {
    process.stdout.write(`| ${row.runner} | ${row.threads} | ${row.seconds.toFixed(1)} s | ${((cases / row.seconds) * 60).toFixed(1)} | ${(inProcessSeconds / row.seconds).toFixed(2)}x | ${row.identical ? 'identical' : 'DIFFERENT'} |\n`);
  }
  if (overheadMs !== undefined) process.stdout.write(`\nqueue overhead per job (1 worker: wall time minus the worker's time in its jobs, per job): ${overheadMs.toFixed(1)} ms\n`);
  if (rows.some((row) => !row.identical)) process.exitCode = 1;
} finally {
  await redis?.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
