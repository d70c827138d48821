/**
 * Several batches in flight on one engine, as segmentCase keeps them (two batches, with flips three runs each): every
 * ONNX Runtime engine gives the label map it gives with one batch at a time. onnxruntime-web fails a run that starts
 * while another of the same session is under way; runOrtSession queues them. A file of its own: onnxruntime-web
 * fixes its thread count per process, and this test runs it with every core, as the CLI does.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDataset, readModelManifest, writePhantomDataset } from '@brats/io';
import { repositoryRoot } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBundleEngine, probeEngines, segmentCase, type SliceRunner } from './index.js';

const MODEL = path.join(repositoryRoot, 'models/brats-regions-unet');
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-concurrency-'));
  await writePhantomDataset(dir, { layout: 'brats2018', cases: 1, size: [160, 160, 144], seed: 7 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('an ONNX Runtime engine with several batches in flight', () => {
  const check = async (name: string, context: { skip: (note?: string) => void }): Promise<void> => {
    const probe = (await probeEngines()).find((entry) => entry.name === name);
    if (probe?.installed !== true) context.skip(`${name} is not installed here`);
    const { engine } = await openBundleEngine(MODEL, name, {});
    try {
      const manifest = await readModelManifest(MODEL);
      const [ref] = (await openDataset(dir)).cases;
      const pipelined = await segmentCase(ref!, manifest, engine, { tta: true });
      // The same engine behind a runner that lets one run start only when the one before has ended.
      let queue: Promise<unknown> = Promise.resolve();
      const oneAtATime: SliceRunner = {
        run: (input, batch) => {
          const next = queue.then(() => engine.run(input, batch));
          queue = next.catch(() => undefined);
          return next;
        },
      };
      const sequential = await segmentCase(ref!, manifest, oneAtATime, { tta: true });
      expect(pipelined.engineCalls).toBe(sequential.engineCalls);
      expect(Buffer.compare(Buffer.from(pipelined.labels.data), Buffer.from(sequential.labels.data))).toBe(0);
      expect(pipelined.volumesMl.ET).toBeGreaterThan(0);
    } finally {
      await engine.dispose();
    }
  };
  it('onnxruntime-web segments a case with flips as it does one run at a time', (context) => check('onnxruntime-web', context), 180_000);
  it('onnxruntime segments a case with flips as it does one run at a time', (context) => check('onnxruntime', context), 180_000);
});
