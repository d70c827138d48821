import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataset, readNifti, writePhantomDataset, type CaseRef } from '@brats/io';
import {
  CohortEngineCache,
  EngineUnavailableError,
  cohortJobId,
  createCohortJobs,
  runCohortInProcess,
  type CohortJob,
  type ModelOpener,
} from '@brats/ncs2-runtime';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_REDIS, TEST_REDIS, fakeOpener, uniqueQueueName } from '../test/fixtures.js';
import { CohortQueue, type QueueOutcome } from './cohort-queue.js';
import { parseRedisUrl, redisOptions } from './redis.js';
import { startCohortWorker, type CohortWorker, type CohortWorkerEvent } from './worker.js';

let dir: string;
let refs: CaseRef[];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-queue-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases: 4, size: [24, 24, 16], seed: 11 });
  refs = [...(await openDataset(path.join(dir, 'phantoms'))).cases];
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function jobsFor(out: string, cases: readonly CaseRef[] = refs): CohortJob[] {
  return createCohortJobs(cases, { bundle: path.join(dir, 'bundle'), out: path.join(dir, out), engine: 'fake' });
}

/** A queue of its own for one test, cleared afterwards, and the workers started on it stopped. */
async function withQueue<T>(label: string, run: (queue: CohortQueue, name: string, workers: CohortWorker[]) => Promise<T>): Promise<T> {
  const name = uniqueQueueName(label);
  const queue = await CohortQueue.open(TEST_REDIS!, { name });
  const workers: CohortWorker[] = [];
  try {
    return await run(queue, name, workers);
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    await queue.clear(true);
    await queue.close();
  }
}

describe.skipIf(TEST_REDIS === undefined)(`the cohort queue${TEST_REDIS === undefined ? ` (${NO_REDIS})` : ''}`, () => {
  it('adds each case once: a repeated submit adds nothing, and says which jobs were queued with other settings', async () => {
    await withQueue('submit', async (queue) => {
      const jobs = jobsFor('out-submit');
      const first = await queue.submit(jobs);
      expect(first.added).toBe(4);
      expect(first.ids).toEqual(jobs.map(cohortJobId));
      const again = await queue.submit(jobs);
      expect(again).toEqual({ ids: first.ids, added: 0, existing: { waiting: 4 }, differing: [] });
      const changed = await queue.submit(jobs.map((job, index) => (index === 2 ? { ...job, tta: true } : job)));
      expect(changed.added).toBe(0);
      expect(changed.differing).toEqual([first.ids[2]]);
      expect(await queue.counts()).toEqual({ completed: 0, active: 0, waiting: 4, delayed: 0, failed: 0 });
    });
  });

  it('runs every case on workers and gives the same label maps as the in-process runner', async () => {
    const reference = await runCohortInProcess(jobsFor('out-reference'), { engines: new CohortEngineCache(fakeOpener) });
    await withQueue('run', async (queue, name, workers) => {
      const events: CohortWorkerEvent[] = [];
      for (let n = 0; n < 2; n++) workers.push(await startCohortWorker(TEST_REDIS!, { name, open: fakeOpener, onEvent: (event) => events.push(event) }));
      const jobs = jobsFor('out-queue');
      const { ids } = await queue.submit(jobs);
      const progress: number[] = [];
      const outcomes = await queue.waitFor(ids, { pollMs: 50, onProgress: ({ completed, workers: count }) => progress.push(completed + 100 * count) });
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
      // Both workers were seen by the watcher (a count of 2 shows as 200 + completed).
      expect(progress.some((value) => value >= 200)).toBe(true);
      for (const [index, outcome] of outcomes.entries()) {
        const expected = reference[index]!;
        if (outcome.status !== 'completed' || expected.status !== 'completed') throw new Error('expected completions');
        expect(outcome.result.caseId).toBe(refs[index]!.id);
        expect(outcome.result.volumesMl).toEqual(expected.result.volumesMl);
        expect(outcome.result.evaluation).toEqual(expected.result.evaluation);
        const queued = await readNifti(path.join(dir, 'out-queue', `${refs[index]!.id}.nii.gz`));
        const local = await readNifti(path.join(dir, 'out-reference', `${refs[index]!.id}.nii.gz`));
        expect(Array.from(queued.data).reduce((sum, value) => sum + value, 0)).toBeGreaterThan(0);
        expect(Array.from(queued.data)).toEqual(Array.from(local.data));
      }
      const completions = events.filter((event) => event.type === 'completed').map((event) => (event as { jobId: string }).jobId);
      expect(completions.sort()).toEqual([...ids].sort());
    });
  });

  it('fails a case with bad input alone, at its first attempt, with its reason; retry-failed runs it again', async () => {
    const broken = path.join(dir, 'broken');
    await fs.cp(path.join(dir, 'phantoms'), broken, { recursive: true });
    const brokenRefs = [...(await openDataset(broken)).cases];
    const goodT1 = await fs.readFile(brokenRefs[2]!.images[1]!);
    await fs.writeFile(brokenRefs[2]!.images[1]!, 'not a nifti');
    await withQueue('bad-input', async (queue, name, workers) => {
      workers.push(await startCohortWorker(TEST_REDIS!, { name, open: fakeOpener }));
      const { ids } = await queue.submit(jobsFor('out-broken', brokenRefs), { attempts: 3, backoffMs: 10 });
      const outcomes = await queue.waitFor(ids, { pollMs: 50 });
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['completed', 'completed', 'failed', 'completed']);
      const failed = outcomes[2] as Extract<QueueOutcome, { status: 'failed' }>;
      expect(failed.caseId).toBe(brokenRefs[2]!.id);
      expect(failed.attempts).toBe(1);
      expect(failed.reason).toMatch(/^DATASET: .*_t1\.nii\.gz: truncated header/);
      const failures = await queue.failures();
      expect(failures.total).toBe(1);
      expect(failures.cases).toEqual([expect.objectContaining({ jobId: ids[2], caseId: brokenRefs[2]!.id, reason: failed.reason, attempts: 1 })]);
      expect(await queue.counts()).toMatchObject({ completed: 3, failed: 1, waiting: 0, active: 0 });

      await fs.writeFile(brokenRefs[2]!.images[1]!, goodT1);
      expect(await queue.retryFailed()).toBe(1);
      const [retried] = await queue.waitFor([ids[2]!], { pollMs: 50 });
      expect(retried!.status).toBe('completed');
      expect(await queue.counts()).toMatchObject({ completed: 4, failed: 0 });
    });
  });

  it('retries failures that may pass, and fails a job for good after its attempts', async () => {
    let calls = 0;
    const flaky: ModelOpener = async (request) => {
      calls++;
      if (calls === 1) throw new Error('ECONNRESET: the shared volume went away');
      return fakeOpener(request);
    };
    await withQueue('retry', async (queue, name, workers) => {
      const events: CohortWorkerEvent[] = [];
      workers.push(await startCohortWorker(TEST_REDIS!, { name, open: flaky, onEvent: (event) => events.push(event) }));
      const [job] = jobsFor('out-retry');
      const { ids } = await queue.submit([job!], { attempts: 3, backoffMs: 10 });
      const [outcome] = await queue.waitFor(ids, { pollMs: 50 });
      expect(outcome!.status).toBe('completed');
      expect(events.filter((event) => event.type === 'failed')).toEqual([expect.objectContaining({ kind: 'unexpected', willRetry: true, reason: 'ECONNRESET: the shared volume went away' })]);
      expect(events.filter((event) => event.type === 'started').map((event) => (event as { attempt: number }).attempt)).toEqual([1, 2]);
    });
    const missing: ModelOpener = async () => {
      throw new EngineUnavailableError('openvino', 'openvino-node is not installed on this machine', 'Install openvino-node');
    };
    await withQueue('exhausted', async (queue, name, workers) => {
      workers.push(await startCohortWorker(TEST_REDIS!, { name, open: missing }));
      const [job] = jobsFor('out-exhausted');
      const { ids } = await queue.submit([job!], { attempts: 2, backoffMs: 10 });
      const [outcome] = await queue.waitFor(ids, { pollMs: 50 });
      expect(outcome).toMatchObject({ status: 'failed', attempts: 2 });
      expect((outcome as Extract<QueueOutcome, { status: 'failed' }>).reason).toMatch(/^ENGINE_UNAVAILABLE: engine 'openvino' is not available/);
    });
  });

  it('on close, lets a running job finish, or after the timeout stops it before it writes and returns it to the queue', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let opening: () => void = () => {};
    const opened = new Promise<void>((resolve) => (opening = resolve));
    const held: ModelOpener = async (request) => {
      opening();
      await gate;
      return fakeOpener(request);
    };
    await withQueue('close', async (queue, name, workers) => {
      const events: CohortWorkerEvent[] = [];
      const stopping = await startCohortWorker(TEST_REDIS!, { name, open: held, onEvent: (event) => events.push(event) });
      const [job] = jobsFor('out-close');
      const { ids } = await queue.submit([job!]);
      await opened;
      expect(stopping.running).toBe(1);
      const closed = stopping.close({ timeoutMs: 0 });
      // The job is inside its model's opening when the timeout cancels it; it stops at its first engine batch.
      await new Promise((resolve) => setTimeout(resolve, 50));
      release();
      await closed;
      expect(events.map((event) => event.type)).toEqual(['started', 'returned']);
      expect(await queue.state(ids[0]!)).toBe('waiting');
      await expect(fs.access(job!.outputs.labels)).rejects.toThrow();
      // Another worker takes it at once (no lock to wait for) and finishes it.
      workers.push(await startCohortWorker(TEST_REDIS!, { name, open: fakeOpener }));
      const [outcome] = await queue.waitFor(ids, { pollMs: 50 });
      expect(outcome!.status).toBe('completed');
      expect((outcome as Extract<QueueOutcome, { status: 'completed' }>).result.reused).toBe(false);
    });
  });

  it("keeps every BullMQ completion single: one 'completed' event per job", async () => {
    await withQueue('events', async (queue, name, workers) => {
      const events = new QueueEvents(name, { connection: redisOptions(parseRedisUrl(TEST_REDIS!)) });
      await events.waitUntilReady();
      const completed: string[] = [];
      events.on('completed', ({ jobId }) => completed.push(jobId));
      try {
        for (let n = 0; n < 2; n++) workers.push(await startCohortWorker(TEST_REDIS!, { name, open: fakeOpener, concurrency: 2 }));
        const { ids } = await queue.submit(jobsFor('out-events'));
        await queue.waitFor(ids, { pollMs: 50 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(completed.sort()).toEqual([...ids].sort());
        // The results stay in Redis, as BullMQ stores them.
        const raw = new Queue(name, { connection: redisOptions(parseRedisUrl(TEST_REDIS!)) });
        const stored = await raw.getJob(ids[0]!);
        expect((stored!.returnvalue as { caseId: string }).caseId).toBe(refs[0]!.id);
        await raw.close();
      } finally {
        await events.close();
      }
    });
  });
});
