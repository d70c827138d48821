/** Test fixtures: a Redis to test against (or why not), phantom cases and a fake engine with a known answer. */
import { createServer } from 'node:net';
import { resolvePreprocessing, type ModelManifest } from '@brats/io';
import type { InferenceEngine, ModelOpener } from '@brats/ncs2-runtime';

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

export const MANIFEST: ModelManifest = {
  format: 'brats-model',
  formatVersion: 1,
  createdAt: '2026-01-01T00:00:00Z',
  model: { architecture: 'unet2d', inputShape: [CROP[0], CROP[1], 4], filters: 2, depth: 1, upsampling: 'bilinear', batchNorm: false, dropout: 0, outputChannels: 1, parameters: 0 },
  channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
  preprocessing: resolvePreprocessing({ crop: CROP, target: 'wt' }),
  regions: ['WT'],
  threshold: 0.5,
  inputLayout: 'NHWC',
  files: { tfjs: 'model.json' },
};

/** A fake engine with a known answer: probability 0.9 where normalised FLAIR is above 1 (bright oedema), else 0.1. */
export function brightFlairEngine(): InferenceEngine {
  return {
    name: 'fake',
    device: 'CPU',
    version: 'fake 1',
    layout: undefined,
    async load() {
      throw new Error('not used');
    },
    async run(input) {
      const pixels = input.length / 4;
      const out = new Float32Array(pixels);
      for (let p = 0; p < pixels; p++) out[p] = input[p * 4]! > 1 ? 0.9 : 0.1;
      return out;
    },
    async perfCounters() {
      return undefined;
    },
    async dispose() {},
  };
}

/** Opens the fake engine for any request. */
export const fakeOpener: ModelOpener = async () => ({ manifest: MANIFEST, engine: brightFlairEngine(), reason: 'the test engine' });
