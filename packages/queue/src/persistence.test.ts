/**
 * What Redis must keep for the queue to survive its own crash: with the append-only file on, a Redis killed with
 * kill -9 and started again still holds every queued job, which a worker then runs; without persistence the queue
 * is gone. Each test starts its own redis-server (Debian's, as .ci/run installs it) on a free loopback port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataset, writePhantomDataset } from '@brats/io';
import { createCohortJobs } from '@brats/ncs2-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, fakeOpener } from '../test/fixtures.js';
import { CohortQueue } from './cohort-queue.js';
import { RedisUnavailableError } from './errors.js';
import { startCohortWorker } from './worker.js';

function findRedisServer(): string | undefined {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return 'redis-server';
  } catch {
    return undefined;
  }
}

const REDIS_SERVER = findRedisServer();
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-queue-persistence-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases: 3, size: [24, 24, 16], seed: 13 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A redis-server of the test's own, its data in `data`; resolves once it answers. */
async function startRedis(port: number, data: string, persistence: string[]): Promise<ChildProcess> {
  await fs.mkdir(data, { recursive: true });
  const server = spawn(REDIS_SERVER!, ['--port', String(port), '--bind', '127.0.0.1', '--dir', data, ...persistence], { stdio: 'ignore' });
  for (let tries = 0; ; tries++) {
    try {
      await (await CohortQueue.open(`redis://127.0.0.1:${port}`, { name: 'ping', connectTimeoutMs: 500 })).close();
      return server;
    } catch (error) {
      if (!(error instanceof RedisUnavailableError) || tries > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function crash(server: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGKILL');
  await exited;
}

describe.skipIf(REDIS_SERVER === undefined)(`a Redis crash${REDIS_SERVER === undefined ? ' (skipped: redis-server is not installed; apt-get install redis-server)' : ''}`, () => {
  it.each([
    ['with appendonly yes (appendfsync always) loses no queued job', ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], 3],
    ['without persistence loses the whole queue', ['--appendonly', 'no', '--save', ''], 0],
  ])('%s', async (_title, persistence, kept) => {
    const port = await closedPort();
    const data = path.join(dir, `redis-${port}`);
    const url = `redis://127.0.0.1:${port}`;
    let server = await startRedis(port, data, persistence as string[]);
    try {
      const refs = (await openDataset(path.join(dir, 'phantoms'))).cases;
      const jobs = createCohortJobs(refs, { bundle: path.join(dir, 'bundle'), out: path.join(dir, `out-${port}`), engine: 'fake' });
      const before = await CohortQueue.open(url, { name: 'cohort' });
      const { ids } = await before.submit(jobs);
      await before.close();
      await crash(server);
      server = await startRedis(port, data, persistence as string[]);

      const after = await CohortQueue.open(url, { name: 'cohort' });
      try {
        expect((await after.counts()).waiting).toBe(kept);
        if (kept === 0) return;
        const worker = await startCohortWorker(url, { name: 'cohort', open: fakeOpener });
        try {
          const outcomes = await after.waitFor(ids, { pollMs: 50 });
          expect(outcomes.map((outcome) => outcome.status)).toEqual(['completed', 'completed', 'completed']);
        } finally {
          await worker.close();
        }
      } finally {
        await after.close();
      }
    } finally {
      await crash(server);
    }
  });
});
