/**
 * Cohort inference across processes: `brats predict --queue` submits, `brats worker` processes (the built CLI, as
 * real processes) run the cases. One worker is killed with kill -9 while it holds jobs; every case must still end
 * with exactly one label map, voxel-identical to the in-process run, and no case may complete twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNifti, writePhantomDataset } from '@brats/io';
import { CohortQueue } from '@brats/queue';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../dist/bin.js');
const PRELOAD = path.resolve(here, '../../test/module-log.mjs');
const REDIS = process.env.BRATS_TEST_REDIS;
const built = existsSync(BIN);
const skipReason = REDIS === undefined ? ' (skipped: no Redis; set BRATS_TEST_REDIS=redis://127.0.0.1:6391, as .ci/run does)' : built ? '' : ' (skipped: build the CLI first, pnpm build)';
const CASES = 12;

let dir: string;
let bundle: string;
let phantoms: string;
let reference: string;
let queueCount = 0;

/** A queue name of its own for one test. */
function queueName(label: string): string {
  return `cli-${label}-${process.pid}-${Date.now().toString(36)}-${++queueCount}`;
}

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first match of `pattern` in the worker's stdout. */
  waitFor: (pattern: RegExp) => Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A `brats worker` process (the built CLI) on queue `name`, with short locks so a dead worker's jobs come back fast. */
function startWorker(name: string, extra: readonly string[] = [], env: NodeJS.ProcessEnv = {}, preload?: string): WorkerProcess {
  const args = [
    ...(preload === undefined ? [] : ['--import', preload]),
    BIN,
    'worker',
    '--queue',
    REDIS!,
    '--queue-name',
    name,
    '--lock-duration',
    '2000',
    '--stalled-interval',
    '500',
    ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += String(chunk);
    for (const waiter of [...waiters]) {
      const match = waiter.pattern.exec(stdout);
      if (match !== null) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    output: () => `${stdout}${stderr === '' ? '' : `\n[stderr]\n${stderr}`}`,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const match = pattern.exec(stdout);
        if (match !== null) return resolve(match);
        waiters.push({ pattern, resolve });
        void exited.then(({ code, signal }) => reject(new Error(`the worker exited (${code ?? signal}) before printing ${pattern}:\n${stdout}\n${stderr}`)));
      }),
    exited,
  };
}

/** Job ids in `done` lines: the workers' completion log. */
function completions(output: string): string[] {
  return [...output.matchAll(/^done \S+ \(job (\S+)\)/gm)].map((match) => match[1]!);
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

async function expectSameLabelMaps(out: string, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const queued = await readNifti(path.join(out, `${id}.nii.gz`));
    const local = await readNifti(path.join(reference, `${id}.nii.gz`));
    expect(queued.dtype).toBe('uint8');
    expect(queued.shape).toEqual(local.shape);
    expect(queued.affine).toEqual(local.affine);
    expect(Array.from(queued.data)).toEqual(Array.from(local.data));
  }
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-worker-'));
  phantoms = path.join(dir, 'phantoms');
  bundle = path.join(dir, 'model');
  reference = path.join(dir, 'in-process');
  await writePhantomDataset(phantoms, { layout: 'brats2018', cases: CASES, size: [48, 48, 32], seed: 21 });
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0, seed: 3 });
  await exportBundleToOnnx(bundle);
  const { code, stderr } = await runCaptured(['predict', '--model', bundle, phantoms, '--out', reference, '--engine', 'onnxruntime']);
  expect(stderr).not.toMatch(/error/);
  expect(code).toBe(0);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(REDIS === undefined || !built)(`brats worker and brats predict --queue${skipReason}`, () => {
  it('re-delivers the jobs of a worker killed with kill -9: one label map per case, identical to the in-process run, none completed twice', async () => {
    const name = queueName('kill');
    const out = path.join(dir, 'queued');
    const queue = await CohortQueue.open(REDIS!, { name });
    const killed = startWorker(name, ['--concurrency', '2']);
    let survivor: WorkerProcess | undefined;
    try {
      await killed.waitFor(/^worker \S+ ready/m);
      const submitted = await runCaptured(['predict', '--model', bundle, phantoms, '--out', out, '--engine', 'onnxruntime', '--queue', REDIS!, '--queue-name', name]);
      expect(submitted.code).toBe(0);
      expect(submitted.stdout).toContain(`queued ${CASES} case(s)`);
      expect(submitted.stdout).toContain(`brats queue status --queue ${REDIS} --queue-name ${name}`);

      // Killed as soon as it has taken a job: its first job is still loading the model, so it dies holding it.
      await killed.waitFor(/^started /m);
      killed.child.kill('SIGKILL');
      expect((await killed.exited).signal).toBe('SIGKILL');
      const held = [...killed.output().matchAll(/^started (\S+) \(job (\S+), attempt 1\)$/gm)].map((match) => match[2]!);
      expect(held.length).toBeGreaterThanOrEqual(1);
      expect(completions(killed.output())).toEqual([]);
      for (const id of held) expect(await queue.state(id)).toBe('active');

      survivor = startWorker(name, ['--concurrency', '2']);
      const survivorId = (await survivor.waitFor(/^worker (\S+) ready/m))[1]!;
      const waited = await runCaptured(['predict', '--model', bundle, phantoms, '--out', out, '--engine', 'onnxruntime', '--queue', REDIS!, '--queue-name', name, '--wait']);
      expect(waited.stderr).not.toContain('failed');
      expect(waited.code).toBe(0);
      expect(waited.stdout).toContain('queued 0 case(s); already in the queue:');
      expect(waited.stdout).toContain(`${CASES} label map(s) written to ${out}`);

      // The held jobs came back through the stalled-job check and were finished by the other worker.
      for (const id of held) {
        expect(survivor.output()).toContain(`put back job ${id}`);
        const job = await queue.describe(id);
        expect(job).toMatchObject({ state: 'completed', processedBy: survivorId, attemptsMade: 1 });
        expect(job!.attemptsStarted).toBeGreaterThanOrEqual(2);
      }
      // Exactly one completion per case, across both workers' completion logs.
      const done = [...completions(killed.output()), ...completions(survivor.output())];
      expect(done).toHaveLength(CASES);
      expect(new Set(done).size).toBe(CASES);
      expect(await queue.counts()).toEqual({ completed: CASES, active: 0, waiting: 0, delayed: 0, failed: 0 });

      // One label map per case and nothing half-written beside them.
      const files = await fs.readdir(out);
      const ids = (await fs.readdir(phantoms, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
      expect(files.filter((file) => file.endsWith('.nii.gz')).sort()).toEqual(ids.map((id) => `${id}.nii.gz`));
      expect(files.filter((file) => file.includes('.partial'))).toEqual([]);
      await expectSameLabelMaps(out, ids);
      const summary = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8')) as { cases: unknown[]; failures: string[] };
      const local = JSON.parse(await fs.readFile(path.join(reference, 'predictions.json'), 'utf8')) as { cases: unknown[] };
      expect(summary.cases).toEqual(local.cases);
      expect(summary.failures).toEqual([]);

      // SIGTERM: the worker stops taking jobs, lets running ones finish and exits cleanly.
      survivor.child.kill('SIGTERM');
      expect((await survivor.exited).code).toBe(0);
      expect(survivor.output()).toContain('worker stopped');
    } finally {
      for (const worker of [killed, survivor]) if (worker !== undefined && worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
      await queue.clear(true);
      await queue.close();
    }
  });

  it('fails a malformed case alone, with its reason in brats queue status; the others are written', async () => {
    const name = queueName('malformed');
    const broken = path.join(dir, 'broken');
    const out = path.join(dir, 'queued-broken');
    await fs.cp(phantoms, broken, { recursive: true });
    await fs.writeFile(path.join(broken, 'Phantom_005', 'Phantom_005_t1.nii.gz'), 'not a nifti');
    const worker = startWorker(name);
    try {
      await worker.waitFor(/^worker \S+ ready/m);
      const run = await runCaptured(['predict', '--model', bundle, broken, '--out', out, '--engine', 'onnxruntime', '--queue', REDIS!, '--queue-name', name, '--wait']);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('1 case(s) failed:');
      expect(run.stderr).toMatch(/case Phantom_005: DATASET: .*Phantom_005_t1\.nii\.gz: truncated header/);
      expect(run.stdout).toContain(`${CASES - 1} label map(s) written to ${out}`);
      expect(worker.output()).toMatch(/^failed Phantom_005 \(job \S+\): DATASET: .* \(bad input, not retried\)$/m);
      const written = (await fs.readdir(out)).filter((file) => file.endsWith('.nii.gz'));
      expect(written).toHaveLength(CASES - 1);
      expect(written).not.toContain('Phantom_005.nii.gz');
      await expectSameLabelMaps(out, written.map((file) => file.replace(/\.nii\.gz$/, '')));

      const status = await runCaptured(['queue', 'status', '--queue', REDIS!, '--queue-name', name]);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(new RegExp(`^done ${CASES - 1}, active 0, waiting 0, delayed 0 \\(retry pending\\), failed 1; workers 1$`, 'm'));
      expect(status.stdout).toMatch(/^ {2}Phantom_005 \(job Phantom_005-[0-9a-f]{16}, 1 attempt\(s\)\): DATASET: .*truncated header/m);
      const json = await runCaptured(['queue', 'status', '--queue', REDIS!, '--queue-name', name, '--json']);
      const parsed = JSON.parse(json.stdout) as { counts: { completed: number; failed: number }; failed: { total: number; cases: Array<{ caseId: string; reason: string }> } };
      expect(parsed.counts).toMatchObject({ completed: CASES - 1, failed: 1 });
      expect(parsed.failed.total).toBe(1);
      expect(parsed.failed.cases[0]).toMatchObject({ caseId: 'Phantom_005', reason: expect.stringMatching(/^DATASET: /) });

      // Fixed, re-queued, run: the queue then holds no failure.
      await fs.copyFile(path.join(phantoms, 'Phantom_005', 'Phantom_005_t1.nii.gz'), path.join(broken, 'Phantom_005', 'Phantom_005_t1.nii.gz'));
      const retried = await runCaptured(['queue', 'retry-failed', '--queue', REDIS!, '--queue-name', name]);
      expect(retried.stdout).toContain('re-queued 1 failed job(s)');
      const again = await runCaptured(['predict', '--model', bundle, broken, '--out', out, '--engine', 'onnxruntime', '--queue', REDIS!, '--queue-name', name, '--wait']);
      expect(again.code).toBe(0);
      await expectSameLabelMaps(out, ['Phantom_005']);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.exited;
      const cleared = await runCaptured(['queue', 'clear', '--queue', REDIS!, '--queue-name', name]);
      expect(cleared.code).toBe(0);
    }
  });

  it('loads bullmq only for the queue commands, and a worker on ONNX Runtime loads no TensorFlow.js', async () => {
    const log = path.join(dir, 'worker.modules');
    const worker = startWorker(queueName('modules'), [], { BRATS_MODULE_LOG: log }, PRELOAD);
    await worker.waitFor(/^worker \S+ ready/m);
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    const modules = (await fs.readFile(log, 'utf8')).split('\n');
    expect(modules.some((module) => /[/\\]bullmq[/\\]/.test(module))).toBe(true);
    expect(modules.filter((module) => /[/\\]@tensorflow[/\\+]/.test(module))).toEqual([]);

    const predictLog = path.join(dir, 'predict.modules');
    const child = spawn(process.execPath, ['--import', PRELOAD, BIN, 'predict', '--model', bundle, path.join(phantoms, 'Phantom_001'), '--out', path.join(dir, 'plain'), '--engine', 'onnxruntime'], {
      stdio: 'ignore',
      env: { ...process.env, BRATS_MODULE_LOG: predictLog },
    });
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
    const predictModules = (await fs.readFile(predictLog, 'utf8')).split('\n');
    expect(predictModules.some((module) => module.includes('onnxruntime-node'))).toBe(true);
    expect(predictModules.filter((module) => /[/\\](bullmq|ioredis)[/\\]/.test(module))).toEqual([]);
  });
});

describe('queue commands without a Redis to talk to', () => {
  it('say so in one line and exit 2, without hanging', async () => {
    const port = await closedPort();
    for (const argv of [
      ['queue', 'status', '--queue', `redis://127.0.0.1:${port}`],
      ['worker', '--queue', `redis://127.0.0.1:${port}`],
      ['predict', '--model', bundle, phantoms, '--out', path.join(dir, 'never'), '--queue', `redis://127.0.0.1:${port}`, '--wait'],
    ]) {
      const run = await runCaptured(argv);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr.trim().split('\n')).toEqual([`error: cannot reach Redis at redis://127.0.0.1:${port}/0: connect ECONNREFUSED 127.0.0.1:${port}. Start redis-server there, or check the --queue address`]);
    }
  });

  it('refuse an address that is not redis:// as a usage error', async () => {
    const run = await runCaptured(['queue', 'status', '--queue', 'http://127.0.0.1:6379']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("error: --queue: queue address 'http://127.0.0.1:6379' has scheme http, not redis");
    const wait = await runCaptured(['predict', 'x', '--out', 'y', '--wait']);
    expect(wait.code).toBe(1);
    expect(wait.stderr).toContain('error: --wait needs --queue');
  });
});
