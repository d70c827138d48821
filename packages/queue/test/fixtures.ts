/** Test fixtures: a Redis to test against (or why not), phantom cases and a fake engine with a known answer. */
import { createServer } from 'node:net';
import type { ModelOpener } from '@brats/ncs2-runtime';
import { brightFlairEngine, testManifest } from '../../ncs2-runtime/test/segment-fixtures.js';

/** The Redis the tests use: $BRATS_TEST_REDIS (.ci/run starts one on a loopback port), or undefined. */
export const TEST_REDIS = process.env.BRATS_TEST_REDIS;

/** Reason in the names of tests that skip without it. */
export const NO_REDIS = 'skipped: no Redis (set BRATS_TEST_REDIS=redis://127.0.0.1:6391 after redis-server --port 6391; .ci/run does)';

let queueCount = 0;
/** A queue name no other test (or run) uses. */
export function uniqueQueueName(label: string): string {
  return `test-${label}-${process.pid}-${Date.now().toString(36)}-${++queueCount}`;
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export const CROP: [number, number, number] = [16, 16, 8];

// The runtime's own segmentation fixtures: the same manifest and fake engine its cohort tests use.
export const MANIFEST = testManifest(CROP);
export { brightFlairEngine };

/** Opens the fake engine for any request. */
export const fakeOpener: ModelOpener = async () => ({ manifest: MANIFEST, engine: brightFlairEngine(), reason: 'the test engine' });
