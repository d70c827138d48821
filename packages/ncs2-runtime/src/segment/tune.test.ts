import { BRATS2017_LABELS, createVolume, type CanonicalCase, type Volume } from '@brats/io';
import { describe, expect, it } from 'vitest';
import { testManifest } from '../../test/segment-fixtures.js';
import type { SliceRunner } from './segment-case.js';
import { segmentCase } from './segment-case.js';
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

/** Index of voxel (i, j, k) on SHAPE. */
const at = (i: number, j: number, k: number): number => i + SHAPE[0] * (j + SHAPE[1] * k);

/** Four empty channels and an empty label map on SHAPE, for a test to mark. */
function blank(): { channels: Float32Array[]; labels: Uint8Array } {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  return { channels: [0, 1, 2, 3].map(() => new Float32Array(n)), labels: new Uint8Array(n) };
}

/** A BraTS 2017 case of the marked channels (FLAIR, T1w, T1gd, T2w) and label map. */
function markedCase(id: string, channels: readonly Float32Array[], labels: Uint8Array): CanonicalCase {
  const volume = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE);
  return { ...boxCase(), id, channels: channels.map(volume) as unknown as CanonicalCase['channels'], labels: createVolume('uint8', labels, SHAPE) };
}

/** A three-region engine that answers each pixel from its four input values alone. */
function pixelRunner(answer: (flair: number, t1w: number, t1gd: number, t2w: number) => readonly [number, number, number]): SliceRunner {
  return {
    async run(input) {
      const pixels = input.length / 4;
      const out = new Float32Array(pixels * 3);
      for (let p = 0; p < pixels; p++) out.set(answer(input[p * 4]!, input[p * 4 + 1]!, input[p * 4 + 2]!, input[p * 4 + 3]!), p * 3);
      return out;
    },
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
    // The window alone: the spurious pixel sits on its edge, where windows beyond it would add more (window-extension.ts).
    const inference = await tuneInference([boxCase()], MANIFEST, runner, { bundle: '/m/bundle', data: '/m/data/val', now: new Date('2026-12-01T00:00:00Z'), extendWindow: false });
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

  it('chooses a threshold per region and the smallest enhancing tumour on a regions model, through the predict path', async () => {
    // Reference: a box of oedema (label 2, WT) with a core of 8 voxels (label 1, TC) and no enhancing tumour.
    // Markers per channel (normalised positive where set): FLAIR the box, T1w the core, T1gd 2 voxels of the
    // core, T2w a ring of 12 voxels beside the box.
    const { channels: [flair, t1w, t1gd, t2w], labels } = blank();
    for (let k = 1; k <= 3; k++) {
      for (let j = 2; j <= 5; j++) {
        for (let i = 3; i <= 6; i++) [flair![at(i, j, k)], labels[at(i, j, k)]] = [10, 2];
        t2w![at(7, j, k)] = 10;
      }
    }
    for (let k = 2; k <= 3; k++) for (let j = 3; j <= 4; j++) for (let i = 4; i <= 5; i++) [t1w![at(i, j, k)], labels[at(i, j, k)]] = [10, 1];
    for (let k = 2; k <= 3; k++) t1gd![at(4, 3, k)] = 10;
    const regionsCase = markedCase('core', [flair!, t1w!, t1gd!, t2w!], labels);
    // WT 0.9 in the box and 0.42 on the ring; TC 0.45 in the core; ET 0.9 on the 2 voxels.
    const runner: SliceRunner = {
      async run(input) {
        const pixels = input.length / 4;
        const out = new Float32Array(pixels * 3);
        for (let p = 0; p < pixels; p++) {
          out[p * 3] = input[p * 4]! > 0 ? 0.9 : input[p * 4 + 3]! > 0 ? 0.42 : 0.1;
          out[p * 3 + 1] = input[p * 4 + 1]! > 0 ? 0.45 : 0.1;
          out[p * 3 + 2] = input[p * 4 + 2]! > 0 ? 0.9 : 0.1;
        }
        return out;
      },
    };
    const manifest = testManifest([8, 8, 4], { outputChannels: 3, files: { onnx: 'model.onnx' } });
    const inference = await tuneInference([regionsCase], manifest, runner, { bundle: '.', data: '.' });
    // At 0.5 everywhere: WT exact (1), TC missed (0), and so ET, nested in TC, empty like its reference (1); flips
    // change nothing: a tie.
    expect(inference.selection.candidates.map((candidate) => candidate.mean)).toEqual([2 / 3, 2 / 3, 2 / 3, 2 / 3]);
    expect({ tta: inference.tta, largestComponent: inference.largestComponent }).toEqual({ tta: false, largestComponent: false });
    // WT keeps 0.5 (0.4 would add the ring); TC needs a threshold under 0.45: 0.4 is the nearest to 0.5.
    expect(inference.thresholds).toEqual({ WT: 0.5, TC: 0.4, ET: 0.5 });
    const tc = inference.selection.thresholdCandidates!.TC!;
    expect(tc.map((entry) => entry.threshold)).toEqual([0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]);
    expect(tc.map((entry) => entry.mean)).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0]);
    // With TC found, 2 predicted ET voxels face an empty reference (0 at any threshold): relabelled as core from
    // 25 voxels on, ET scores 1.
    expect(inference.minEnhancingVoxels).toBe(25);
    expect(inference.selection.enhancingCandidates).toEqual([0, 25, 50, 100, 200, 400, 800].map((minEnhancingVoxels) => ({ minEnhancingVoxels, mean: minEnhancingVoxels === 0 ? 0 : 1 })));

    // Predict with the chosen settings: core labelled 1, the rest of the box 2, no 4, and the reasons say why.
    const tuned = await segmentCase(regionsCase, { ...manifest, inference }, runner);
    expect(Array.from(tuned.labels.data)).toEqual(Array.from(labels));
    expect(tuned.reasons).toContain('thresholds WT 0.5, TC 0.4, ET 0.5 (the bundle chose them on its validation cases)');
    expect(tuned.reasons).toContain('enhancing tumour under 25 voxels relabelled as core (the bundle chose it on its validation cases)');
    expect(tuned.reasons).toContain('enhancing tumour of 2 voxels (under 25) relabelled as core');
  });

  it('decides the largest component again under the chosen thresholds, where a lower WT threshold adds an island', async () => {
    // Reference: oedema (label 2) in the box i 3..6, j 2..5, k 1..3 (48 voxels), nothing else. Markers: FLAIR the
    // box's inner 2x2 columns (12 voxels), T2w the rest of the box (36), T1gd one voxel at i 9, j 8, k 2 (apart from
    // the box), T1w one voxel inside (unused, so that no channel is constant).
    const { channels: [flair, t1w, t1gd, t2w], labels } = blank();
    for (let k = 1; k <= 3; k++) {
      for (let j = 2; j <= 5; j++) {
        for (let i = 3; i <= 6; i++) {
          labels[at(i, j, k)] = 2;
          if (i >= 4 && i <= 5 && j >= 3 && j <= 4) flair![at(i, j, k)] = 10;
          else t2w![at(i, j, k)] = 10;
        }
      }
    }
    t1gd![at(9, 8, 2)] = 10;
    t1w![at(4, 3, 2)] = 10;
    const islandCase = markedCase('island', [flair!, t1w!, t1gd!, t2w!], labels);
    // WT 0.9 inside, 0.38 on the rest of the box, 0.42 on the island; TC and ET 0.1 everywhere.
    const runner = pixelRunner((flairValue, _t1w, t1gdValue, t2wValue) => [flairValue > 0 ? 0.9 : t2wValue > 0 ? 0.38 : t1gdValue > 0 ? 0.42 : 0.1, 0.1, 0.1]);
    const manifest = testManifest([8, 8, 4], { outputChannels: 3, files: { onnx: 'model.onnx' } });
    const inference = await tuneInference([islandCase], manifest, runner, { bundle: '.', data: '.' });
    // At 0.5 WT is the 12 inner voxels, one component: Dice 24 / 60 whatever the component step (TC and ET empty
    // like their references: 1), so the first choice leaves the component step off.
    expect(inference.selection.candidates.map((candidate) => candidate.mean)).toEqual([0.8, 0.8, 0.8, 0.8].map(() => (0.4 + 1 + 1) / 3));
    // 0.4 and 0.45 add the island alone (Dice 24 / 61); 0.35 (nearer 0.5 than 0.3) takes the whole box and the
    // island: Dice 96 / 97.
    expect(inference.thresholds).toEqual({ WT: 0.35, TC: 0.5, ET: 0.5 });
    // Under 0.35 the component step drops the island: WT Dice 1.
    expect(inference.selection.componentCandidates).toEqual([
      { largestComponent: false, mean: (96 / 97 + 1 + 1) / 3, perCase: [(96 / 97 + 1 + 1) / 3] },
      { largestComponent: true, mean: 1, perCase: [1] },
    ]);
    expect({ tta: inference.tta, largestComponent: inference.largestComponent }).toEqual({ tta: false, largestComponent: true });
    // Predict with the choice: exactly the reference.
    const tuned = await segmentCase(islandCase, { ...manifest, inference }, runner);
    expect(Array.from(tuned.labels.data)).toEqual(Array.from(labels));
  });

  it("keeps an inner region's largest component too where it raises the mean, once the whole tumour's step is on", async () => {
    // Reference: oedema in the box i 2..7, j 1..6, k 1..3 (108 voxels) around a core (label 1) at i 3..4, j 2..3,
    // k 1..3 (12 voxels). Predicted: WT the box and an island at i 9, j 8, k 2 (apart from it); TC the core and an
    // island inside the box at i 7, j 6, k 3 (apart from the core); ET nothing.
    const { channels: [flair, t1w, t1gd, t2w], labels } = blank();
    for (let k = 1; k <= 3; k++) for (let j = 1; j <= 6; j++) for (let i = 2; i <= 7; i++) [flair![at(i, j, k)], labels[at(i, j, k)]] = [10, 2];
    for (let k = 1; k <= 3; k++) for (let j = 2; j <= 3; j++) for (let i = 3; i <= 4; i++) [t1w![at(i, j, k)], labels[at(i, j, k)]] = [10, 1];
    flair![at(9, 8, 2)] = 10;
    t1w![at(7, 6, 3)] = 10;
    t1gd![at(5, 5, 2)] = 10;
    t2w![at(6, 5, 2)] = 10;
    const twoIslands = markedCase('islands', [flair!, t1w!, t1gd!, t2w!], labels);
    const runner = pixelRunner((flairValue, t1wValue) => [flairValue > 0 ? 0.9 : 0.1, t1wValue > 0 ? 0.9 : 0.1, 0.1]);
    const manifest = testManifest([8, 8, 4], { outputChannels: 3, files: { onnx: 'model.onnx' } });
    const inference = await tuneInference([twoIslands], manifest, runner, { bundle: '.', data: '.' });
    expect(inference.largestComponent).toBe(true);
    // With the WT island gone: WT 1, TC 2 x 12 / (13 + 12) with its island and 1 without it, ET empty like its
    // reference (1) with or without its step, which is then left off.
    const withIsland = (1 + 24 / 25 + 1) / 3;
    expect(inference.selection.innerComponentCandidates).toEqual([
      { region: 'TC', largestComponent: false, mean: withIsland, perCase: [withIsland] },
      { region: 'TC', largestComponent: true, mean: 1, perCase: [1] },
      { region: 'ET', largestComponent: false, mean: 1, perCase: [1] },
      { region: 'ET', largestComponent: true, mean: 1, perCase: [1] },
    ]);
    expect(inference.componentRegions).toEqual(['TC']);
    // Tuning the tuned bundle again scores every option as it stands, not on top of the recorded choice.
    const again = await tuneInference([twoIslands], { ...manifest, inference }, runner, { bundle: '.', data: '.' });
    expect(again.selection.candidates).toEqual(inference.selection.candidates);
    expect(again.selection.innerComponentCandidates).toEqual(inference.selection.innerComponentCandidates);
    // Predict with the choice: exactly the reference, and it says why.
    const tuned = await segmentCase(twoIslands, { ...manifest, inference }, runner);
    expect(Array.from(tuned.labels.data)).toEqual(Array.from(labels));
    expect(tuned.reasons).toContain('largest component of TC kept as well (the bundle chose it on its validation cases)');
    // Without the whole tumour's step, no inner one: the TC island stays.
    const plain = await segmentCase(twoIslands, { ...manifest, inference }, runner, { largestComponent: false });
    expect(plain.labels.data[at(7, 6, 3)]).toBe(1);
    expect(plain.labels.data[at(9, 8, 2)]).toBe(2);
  });

  it('removes enhancing specks smaller than the minimum chosen by lesion-wise Dice, keeping two true lesions', async () => {
    // A 24 x 16 x 6 grid of 4 mm voxels (64 mm³ each), the model's own window and spacing. Reference: oedema in the box
    // i 1..22, j 1..14, k 1..4; core (1) over its top layer k 4; two enhancing lesions (4) of 16 voxels, A at i 2..3,
    // j 2..3 and B at i 18..19, j 10..11, k 1..4. Predicted: each region as marked, and ET also a speck at (10, 7, 4)
    // inside the core, more than 3 dilation steps from A and B.
    const grid = [24, 16, 6] as const;
    const n = grid[0] * grid[1] * grid[2];
    const index = (i: number, j: number, k: number): number => i + grid[0] * (j + grid[1] * k);
    const [flair, t1w, t1gd, t2w] = [0, 1, 2, 3].map(() => new Float32Array(n));
    const labels = new Uint8Array(n);
    for (let k = 1; k <= 4; k++) for (let j = 1; j <= 14; j++) for (let i = 1; i <= 22; i++) [flair![index(i, j, k)], labels[index(i, j, k)]] = [10, k === 4 ? 1 : 2];
    for (let k = 4; k <= 4; k++) for (let j = 1; j <= 14; j++) for (let i = 1; i <= 22; i++) t1w![index(i, j, k)] = 10;
    for (const [i0, j0] of [[2, 2], [18, 10]] as const) {
      for (let k = 1; k <= 4; k++) for (let j = j0; j <= j0 + 1; j++) for (let i = i0; i <= i0 + 1; i++) [t1w![index(i, j, k)], t1gd![index(i, j, k)], labels[index(i, j, k)]] = [10, 10, 4];
    }
    t1gd![index(10, 7, 4)] = 10;
    const spacing = [4, 4, 4] as const;
    const volume = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, grid, { spacing });
    const specks: CanonicalCase = {
      ...boxCase(),
      id: 'specks',
      channels: [flair!, t1w!, t1gd!, t2w!].map(volume) as unknown as CanonicalCase['channels'],
      labels: createVolume('uint8', labels, grid, { spacing }),
    };
    const runner = pixelRunner((flairValue, t1wValue, t1gdValue) => [flairValue > 0 ? 0.9 : 0.1, t1wValue > 0 ? 0.9 : 0.1, t1gdValue > 0 ? 0.9 : 0.1]);
    const manifest = testManifest([24, 16, 6], { outputChannels: 3, spacing, files: { onnx: 'model.onnx' } });
    const inference = await tuneInference([specks], manifest, runner, { bundle: '.', data: '.' });
    // ET: every speck kept, A and B are found and the speck is a false positive: (1 + 1) / 3, Dice 2 x 32 / (33 + 32).
    // A minimum of 10 voxels takes the speck alone: 1 and 1. From 20 voxels A and B go too: both missed, 0 and 0.
    expect(inference.selection.componentMinimumCandidates!.ET).toEqual([
      { minComponentVoxels: 0, lesionWiseDice: 2 / 3, dice: 64 / 65 },
      { minComponentVoxels: 10, lesionWiseDice: 1, dice: 1 },
      ...[20, 50, 100, 200, 400].map((minComponentVoxels) => ({ minComponentVoxels, lesionWiseDice: 0, dice: 0 })),
    ]);
    // WT and TC are one component each: every minimum up to their size ties, and the smallest (none) is kept.
    expect(inference.minComponentVoxels).toEqual({ ET: 10 });
    expect(inference.minEnhancingVoxels).toBe(0);
    // Predict with the choice: the speck is core again, so the label map is exactly the reference, and it says so.
    const tuned = await segmentCase(specks, { ...manifest, inference }, runner);
    expect(Array.from(tuned.labels.data)).toEqual(Array.from(labels));
    expect(tuned.reasons).toContain('components under 10 voxels (ET) removed (the bundle chose it on its validation cases)');
    expect(tuned.reasons).toContain('1 enhancing-tumour component under 10 voxels removed (now core)');
    // Asking for every component keeps the speck.
    const every = await segmentCase(specks, { ...manifest, inference }, runner, { largestComponent: false });
    expect(every.labels.data[index(10, 7, 4)]).toBe(4);
  });

  it.each([
    ['/work/models/m', '/work/data/set', '../../data/set'],
    ['/work/models/m', '/work/models/m', '.'],
    ['models/m', 'models/m/val', 'val'],
  ])('records the dataset of bundle %s and data %s as %s', (bundle, data, expected) => {
    expect(datasetReference(bundle, data)).toBe(expected);
  });
});
