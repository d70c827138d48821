import { BRATS2017_LABELS, createVolume, type CanonicalCase, type Volume } from '@brats/io';
import { describe, expect, it } from 'vitest';
import { testManifest } from '../../test/segment-fixtures.js';
import type { SliceRunner } from './segment-case.js';
import { datasetReference, tuneInference } from './tune.js';

const SHAPE = [12, 10, 6] as const;

/** FLAIR 10 in the box i 3..6, j 2..5, k 1..3 (48 voxels), labelled 2 (oedema: WT); other channels 1. */
function boxCase(): CanonicalCase {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const flair = new Float32Array(n);
  const labels = new Uint8Array(n);
  for (let k = 1; k <= 3; k++) {
    for (let j = 2; j <= 5; j++) {
      for (let i = 3; i <= 6; i++) {
        flair[i + 12 * (j + 10 * k)] = 10;
        labels[i + 12 * (j + 10 * k)] = 2;
      }
    }
  }
  const channel = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE);
  const ones = () => channel(new Float32Array(n).fill(1));
  return {
    id: 'box',
    layout: 'brats2017',
    channels: [channel(flair), ones(), ones(), ones()],
    labels: createVolume('uint8', labels, SHAPE),
    labelMapping: BRATS2017_LABELS,
    ref: { id: 'box', layout: 'brats2017', images: [] },
  };
}

const MANIFEST = testManifest([8, 8, 4], { files: { onnx: 'model.onnx' } });

/**
 * 0.9 where the slice shows the box (normalised FLAIR > 0), and a spurious 0.9 at slice pixel (h 7, w 0) whatever
 * the input: on the scan that is i 9, j 1 in each of the 4 cropped slices, a 4-voxel component apart from the box.
 */
function spuriousRunner(): SliceRunner & { calls: number } {
  return {
    calls: 0,
    async run(input, batch) {
      this.calls++;
      const out = new Float32Array(input.length / 4);
      for (let p = 0; p < out.length; p++) {
        const h = Math.floor(p / 8) % 8;
        const w = p % 8;
        out[p] = input[p * 4]! > 0 || (h === 7 && w === 0) ? 0.9 : 0.1;
      }
      void batch;
      return out;
    },
  };
}

describe('tuneInference', () => {
  it('scores every option through segmentCase, keeps the simplest best, and runs each engine pass once', async () => {
    const runner = spuriousRunner();
    const inference = await tuneInference([boxCase()], MANIFEST, runner, { bundle: '/m/bundle', data: '/m/data/val', now: new Date('2026-12-01T00:00:00Z') });
    // Plain: 48 box voxels + 4 spurious → Dice 2·48 / (52 + 48) = 0.96. The largest component drops the 4 → 1.
    // Flips: the spurious pixel moves with each flip, so its mean is 0.3 < 0.5 and it vanishes → 1; both → 1.
    expect(inference.selection.candidates).toEqual([
      { tta: false, largestComponent: false, mean: 0.96, perCase: [0.96] },
      { tta: false, largestComponent: true, mean: 1, perCase: [1] },
      { tta: true, largestComponent: false, mean: 1, perCase: [1] },
      { tta: true, largestComponent: true, mean: 1, perCase: [1] },
    ]);
    // A tie goes to the simpler option.
    expect({ tta: inference.tta, largestComponent: inference.largestComponent }).toEqual({ tta: false, largestComponent: true });
    expect(inference.selection).toMatchObject({ metric: 'mean WT Dice', data: '../data/val', cases: ['box'], chosenAt: '2026-12-01T00:00:00.000Z' });
    // One batch of 4 slices: plain, left-right and up-down passes, shared by the four options.
    expect(runner.calls).toBe(3);
  });

  it('refuses cases without a reference and an empty case list', async () => {
    const unlabelled = { ...boxCase() };
    delete unlabelled.labels;
    await expect(tuneInference([unlabelled], MANIFEST, spuriousRunner(), { bundle: '.', data: '.' })).rejects.toThrow(/case box has no reference label map/);
    await expect(tuneInference([], MANIFEST, spuriousRunner(), { bundle: '.', data: '.' })).rejects.toThrow(/is empty/);
  });

  it.each([
    ['/work/models/m', '/work/data/set', '../../data/set'],
    ['/work/models/m', '/work/models/m', '.'],
    ['models/m', 'models/m/val', 'val'],
  ])('records the dataset of bundle %s and data %s as %s', (bundle, data, expected) => {
    expect(datasetReference(bundle, data)).toBe(expected);
  });
});
