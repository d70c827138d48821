// The exact shortcuts on a real scan and the shipped model: image-free slices run once, (labels only) slices
// decided by two flipped passes skipping the third, and small batches. The masks must be those of running every slice every time (the
// model's answer for one slice does not depend on the others in its batch).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readModelManifest } from '@brats/io';
import { NO_SHARED_DATA, repositoryRoot, sharedDataDir } from '@brats/vitest-config/fixtures';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../registry.js';
import { segmentCase } from './segment-case.js';

const BUNDLE = path.join(repositoryRoot, 'models', 'brats2018-wt-unet');
const data = sharedDataDir();
// Of the shipped bundle's cases, the one with the most image-free slices in its crop (11 of 144).
const CASE = data === undefined ? undefined : path.join(data, 'brats2018-sample', 'Brats18_CBICA_ABM_1');
const there = CASE !== undefined && existsSync(CASE);

describe.skipIf(!there)(`image-free slices of a real scan (${there ? 'Brats18_CBICA_ABM_1' : NO_SHARED_DATA})`, () => {
  it('run once and reused, and (labels only) third passes skipped, give the label map of running every slice on ONNX Runtime', async () => {
    const manifest = await readModelManifest(BUNDLE);
    const { engine } = await createEngine('onnxruntime', { threads: 2 });
    await engine.load(BUNDLE);
    try {
      const id = path.basename(CASE!);
      const ref = { id, layout: 'brats2017' as const, images: ['flair', 't1', 't1ce', 't2'].map((suffix) => path.join(CASE!, `${id}_${suffix}.nii.gz`)) };
      const options = { tta: true, largestComponent: true, load: { labels: false } };
      const shortcut = await segmentCase(ref, manifest, engine, options);
      const plain = await segmentCase(shortcut.case, manifest, engine, { ...options, reuseConstantSlices: false });
      const skipped = shortcut.reasons.find((reason) => reason.includes('image-free'));
      expect(skipped).toMatch(/^(\d+) of 144 slices repeat an image-free \(constant\) slice the model already ran \(1 distinct\)/);
      expect(Number(/^(\d+)/.exec(skipped!)![1])).toBeGreaterThanOrEqual(5);
      let differ = 0;
      for (let v = 0; v < plain.labels.data.length; v++) if (plain.labels.data[v] !== shortcut.labels.data[v]) differ++;
      expect(differ).toBe(0);
      let largest = 0;
      const [a, b] = [shortcut.probabilities[0]!, plain.probabilities[0]!];
      for (let v = 0; v < a.length; v++) largest = Math.max(largest, Math.abs(a[v]! - b[v]!));
      expect(largest).toBeLessThan(1e-6);
      // Labels only: slices that two of the three flipped passes decide skip the third, and the label map is the
      // same, voxel for voxel, as that of all three passes.
      const early = await segmentCase(shortcut.case, manifest, engine, { ...options, labelsOnly: true });
      const decided = early.reasons.find((reason) => reason.includes('skipped the third flipped pass'));
      expect(decided).toMatch(/^(\d+) of (\d+) slices run skipped the third flipped pass/);
      expect(Number(/^(\d+)/.exec(decided!)![1])).toBeGreaterThanOrEqual(20);
      let changed = 0;
      for (let v = 0; v < early.labels.data.length; v++) if (early.labels.data[v] !== shortcut.labels.data[v]) changed++;
      expect(changed).toBe(0);
      expect(shortcut.labels.data.some((value) => value > 0)).toBe(true);
      // The batch size (the default 4 against 16, and one slice at a time) changes no probability: each slice's
      // answer is its own.
      for (const batchSize of [16, 1]) {
        const other = await segmentCase(shortcut.case, manifest, engine, { ...options, batchSize });
        expect(Buffer.compare(Buffer.from(other.probabilities[0]!.buffer), Buffer.from(shortcut.probabilities[0]!.buffer))).toBe(0);
        expect(Buffer.compare(Buffer.from(other.labels.data), Buffer.from(shortcut.labels.data))).toBe(0);
      }
    } finally {
      await engine.dispose();
    }
  }, 300_000);
});
