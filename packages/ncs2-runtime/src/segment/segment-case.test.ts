import {
  BRATS2017_LABELS,
  MSD_LABELS,
  createVolume,
  preprocessCase,
  type CanonicalCase,
  type ModelManifest,
  type Volume,
} from '@brats/io';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArgumentError, MAX_BRAIN_ML, WHOLE_TUMOUR_LABELS, planReorientation, writeNifti, type Affine } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testManifest } from '../../test/segment-fixtures.js';
import { EngineError } from '../errors.js';
import { resolveInference } from './inference-settings.js';
import { postprocessRegions, segmentLoadedCase } from './segment-core.js';
import { segmentCase, type SliceRunner } from './segment-case.js';

const SHAPE = [12, 10, 6] as const;
const AFFINE = [
  [-1, 0, 0, 5],
  [0, -1, 0, 7],
  [0, 0, 2, -3],
  [0, 0, 0, 1],
] as const;

/** A scan whose FLAIR is 10 inside the box i 3..6, j 2..5, k 1..3 and 0 elsewhere; other channels a ramp 1..7. */
function makeCase(): CanonicalCase {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const flair = new Float32Array(n);
  for (let k = 1; k <= 3; k++) for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) flair[i + 12 * (j + 10 * k)] = 10;
  const channel = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE, { affine: AFFINE });
  return {
    id: 'box',
    layout: 'brats2017',
    // The engines of these tests look at FLAIR only; the others are images, not blanks (which would be warned about).
    channels: [channel(flair), ...[0, 1, 2].map(() => channel(Float32Array.from({ length: n }, (_, v) => 1 + (v % 7))))] as unknown as CanonicalCase['channels'],
    labelMapping: BRATS2017_LABELS,
    ref: { id: 'box', layout: 'brats2017', images: [] },
  };
}

/** An LPS affine (as BraTS stores scans) of isotropic `mm` voxels at the origin. */
function lpsAffine(mm: number): Affine {
  return [
    [-mm, 0, 0, 0],
    [0, -mm, 0, 0],
    [0, 0, mm, 0],
    [0, 0, 0, 1],
  ];
}

/** The scans of these tests are 1 x 1 x 2 mm: the model's own, so nothing is resampled. */
function manifestFor(outputChannels: 1 | 3, crop: [number, number, number]): ModelManifest {
  return testManifest(crop, { outputChannels, spacing: [1, 1, 2] });
}

/** A fake engine: probability 0.9 where normalised FLAIR is positive (the box), else 0.1; K channels. */
function thresholdRunner(K: number, inner: (h: number, w: number) => number = () => K): SliceRunner {
  return {
    async run(input, batch) {
      const pixels = input.length / 4;
      const height = 8;
      const width = pixels / batch / height;
      const out = new Float32Array(pixels * K);
      for (let p = 0; p < pixels; p++) {
        const h = Math.floor(p / width) % height;
        const w = p % width;
        for (let k = 0; k < K; k++) out[p * K + k] = input[p * 4]! > 0 && k < inner(h, w) ? 0.9 : 0.1;
      }
      return out;
    },
  };
}

describe('segmentCase', () => {
  it('puts a whole-tumour prediction back on the scan grid with its affine', async () => {
    const result = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), thresholdRunner(1), { batchSize: 3 });
    // Crop 8x8x4 of 12x10x6 starts at (2, 1, 1) and holds the whole box.
    const expected = new Uint8Array(720);
    for (let k = 1; k <= 3; k++) for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) expected[i + 12 * (j + 10 * k)] = 1;
    expect(Array.from(result.labels.data)).toEqual(Array.from(expected));
    expect(result.labels.shape).toEqual([12, 10, 6]);
    expect(result.labels.affine).toEqual(AFFINE);
    // Outside the crop window the probability is 0, inside it is what the engine said.
    expect(result.probabilities[0]![0]).toBe(0);
    expect(result.probabilities[0]![3 + 12 * (2 + 10 * 1)]).toBeCloseTo(0.9, 6);
  });

  it.each([
    ['BraTS 2017', BRATS2017_LABELS, [2, 1, 4]],
    ['Decathlon', MSD_LABELS, [1, 2, 3]],
  ] as const)('writes nested regions in %s labels', async (_name, mapping, [oedema, core, enhancing]) => {
    // Inner region count by slice row h of the 8-row crop: rows < 3 → WT only, rows 3-4 → WT+TC, rows ≥ 5 → all three.
    const runner = thresholdRunner(3, (h) => (h < 3 ? 1 : h < 5 ? 2 : 3));
    const result = await segmentCase(makeCase(), manifestFor(3, [8, 8, 4]), runner, { labelMapping: mapping });
    // h = i - 2 (crop start i = 2): i=4 → h 2 (oedema), i=5 → h 3 (core), i=6 → h 4 (core), i=3 → h 1 (oedema).
    const at = (i: number) => result.labels.data[i + 12 * (3 + 10 * 2)];
    expect([at(3), at(4), at(5), at(6)]).toEqual([oedema, oedema, core, core]);
    expect(new Set(result.labels.data)).toEqual(new Set([0, oedema, core]));
    void enhancing;
  });

  it('averages flipped predictions with tta', async () => {
    // An engine that sees only the left half of each slice: flips left-right make the right half appear too.
    const halfRunner: SliceRunner = {
      async run(input, batch) {
        const out = new Float32Array(input.length / 4);
        const width = 8;
        for (let p = 0; p < out.length; p++) out[p] = p % width < 4 ? 0.9 : 0;
        void batch;
        return out;
      },
    };
    const plain = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), halfRunner);
    const tta = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), halfRunner, { tta: true });
    const voxel = 4 + 12 * (2 + 10 * 2); // w = j - 1 = 1 (left half)
    const mirrored = 4 + 12 * (7 + 10 * 2); // w = 6 (right half)
    expect(plain.probabilities[0]![voxel]).toBeCloseTo(0.9, 6);
    expect(plain.probabilities[0]![mirrored]).toBe(0);
    // identity 0.9, left-right flip 0, up-down flip 0.9 → 0.6 on the left; 0, 0.9, 0 → 0.3 on the right.
    expect(tta.probabilities[0]![voxel]).toBeCloseTo(0.6, 6);
    expect(tta.probabilities[0]![mirrored]).toBeCloseTo(0.3, 6);
    // A bundle whose validation chose tta gets it without asking; the caller can still turn it off.
    const tuned: ModelManifest = { ...manifestFor(1, [8, 8, 4]), inference: { tta: true, largestComponent: false } };
    const byBundle = await segmentCase(makeCase(), tuned, halfRunner);
    expect(byBundle.probabilities[0]![mirrored]).toBeCloseTo(0.3, 6);
    const refused = await segmentCase(makeCase(), tuned, halfRunner, { tta: false });
    expect(refused.probabilities[0]![mirrored]).toBe(0);
  });

  it('tta: the mean of the plain and both flipped-back outputs, bit for bit as adding them one after the other', async () => {
    // The crop is the whole scan, so the block maps onto the grid as [k][i][j]; an engine that reads its neighbour
    // to the right and its row, so that each flip gives other values.
    const [height, width, depth] = [12, 10, 6];
    const engine = (input: Float32Array, batch: number): Float32Array => {
      const out = new Float32Array(batch * height * width);
      for (let p = 0; p < out.length; p++) {
        const w = p % width;
        const h = Math.floor(p / width) % height;
        const right = w + 1 < width ? input[(p + 1) * 4 + 1]! : 0;
        out[p] = 1 / (1 + Math.exp(-(0.7 * input[p * 4]! + 0.3 * right + 0.05 * h - 0.02 * w)));
      }
      return out;
    };
    const flip = (values: Float32Array, batch: number, channels: number, axis: 'h' | 'w'): Float32Array => {
      const out = new Float32Array(values.length);
      for (let b = 0; b < batch; b++) for (let h = 0; h < height; h++) for (let w = 0; w < width; w++) for (let c = 0; c < channels; c++) {
        const [sh, sw] = axis === 'h' ? [height - 1 - h, w] : [h, width - 1 - w];
        out[((b * height + h) * width + w) * channels + c] = values[((b * height + sh) * width + sw) * channels + c]!;
      }
      return out;
    };
    const manifest = manifestFor(1, [height, width, depth]);
    const result = await segmentCase(makeCase(), manifest, { run: async (input, batch) => engine(input, batch) }, { tta: true, batchSize: 4 });
    const image = preprocessCase(makeCase(), manifest.preprocessing).image;
    const plain = engine(image, depth);
    const alongWidth = flip(engine(flip(image, depth, 4, 'w'), depth), depth, 1, 'w');
    const alongHeight = flip(engine(flip(image, depth, 4, 'h'), depth), depth, 1, 'h');
    const expected = new Float32Array(plain);
    for (const back of [alongWidth, alongHeight]) for (let v = 0; v < expected.length; v++) expected[v]! += back[v]!;
    for (let v = 0; v < expected.length; v++) expected[v]! /= 3;
    const probabilities = result.probabilities[0]!;
    for (let z = 0; z < depth; z++) for (let h = 0; h < height; h++) for (let w = 0; w < width; w++) {
      const found = probabilities[h + height * (w + width * z)]!;
      expect(Object.is(found, expected[(z * height + h) * width + w]), `voxel ${h}, ${w}, ${z}`).toBe(true);
    }
  });

  it('says where its tta and largest-component settings come from', () => {
    const plain = manifestFor(1, [8, 8, 4]);
    const tuned: ModelManifest = { ...plain, inference: { tta: true, largestComponent: true } };
    const pick = (settings: ReturnType<typeof resolveInference>) => ({ tta: settings.tta, largestComponent: settings.largestComponent, source: settings.source });
    expect(pick(resolveInference(plain))).toEqual({ tta: false, largestComponent: false, source: 'default' });
    expect(pick(resolveInference(plain, { largestComponent: true }))).toEqual({ tta: false, largestComponent: true, source: 'caller' });
    expect(pick(resolveInference(tuned))).toEqual({ tta: true, largestComponent: true, source: 'bundle' });
    expect(pick(resolveInference(tuned, { tta: false }))).toEqual({ tta: false, largestComponent: true, source: 'bundle' });
    expect(pick(resolveInference(tuned, { tta: false, largestComponent: false }))).toEqual({ tta: false, largestComponent: false, source: 'caller' });
    expect(resolveInference(tuned, { tta: false }).reasons).toEqual([
      'tta off (as asked)',
      'largest component on (the bundle chose it on its validation cases)',
      'threshold 0.5 (the bundle\'s)',
    ]);
    expect(resolveInference(plain, { threshold: 0.3 }).threshold).toBe(0.3);
  });

  it('rejects an engine that returns the wrong number of values', async () => {
    const bad: SliceRunner = { run: async () => new Float32Array(3) };
    await expect(segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), bad)).rejects.toThrow(/returned 3 values/);
  });

  it('takes an engine still opening: the same result once it opens, and its failure when it does not', async () => {
    const manifest = manifestFor(1, [8, 8, 4]);
    const direct = await segmentLoadedCase(makeCase(), manifest, thresholdRunner(1));
    const later = await segmentLoadedCase(makeCase(), manifest, new Promise<SliceRunner>((resolve) => setTimeout(() => resolve(thresholdRunner(1)), 20)));
    expect(Array.from(later.labels.data)).toEqual(Array.from(direct.labels.data));
    expect(later.labels.data.some((value) => value === 1)).toBe(true);
    const failed = new Promise<SliceRunner>((_, reject) => setTimeout(() => reject(new EngineError('fake', 'did not load')), 20));
    await expect(segmentLoadedCase(makeCase(), manifest, failed)).rejects.toThrow(EngineError);
  });
});

describe('segmentCase results', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-segment-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('gives volumes in mL from the scan spacing, and says why it chose each setting', async () => {
    const result = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), thresholdRunner(1), { extendWindow: false });
    // The box is 4 x 4 x 3 = 48 voxels of 1 x 1 x 2 mm (the affine's column norms): 96 mm³ = 0.096 mL.
    expect(result.volumesMl.WT).toBeCloseTo(0.096, 9);
    expect(result.labelMapping).toBe(WHOLE_TUMOUR_LABELS);
    expect(result.reasons).toEqual([
      "orientation LPS (voxel axes i, j, k toward left, posterior, superior): the model's own (as BraTS and the Decathlon; the bundle records none)",
      'spacing 1 x 1 x 2 mm: the model\'s own (recorded in the bundle)',
      'preprocessing from the bundle: center crop 8x8x4, block z-score, channels FLAIR, T1w, T1gd, T2w',
      'tta off (the default)',
      'largest component off (the default)',
      "threshold 0.5 (the bundle's)",
      'labels 0/1 whole tumour (the model has one output region, WT)',
    ]);
    // Nothing here changed what was segmented: no notice for the caller to show.
    expect(result.notices).toEqual([]);
    expect(result.engineCalls).toBe(1);
  });

  it('writes a regions model in the input layout\'s labels unless told otherwise', async () => {
    const result = await segmentCase(makeCase(), manifestFor(3, [8, 8, 4]), thresholdRunner(3, (h) => (h < 3 ? 1 : h < 5 ? 2 : 3)));
    expect(result.labelMapping).toBe(BRATS2017_LABELS);
    expect(result.reasons.at(-1)).toBe("labels BraTS 2017-2021 1 core / 2 oedema / 4 enhancing (the input's brats2017 layout)");
    expect(new Set(result.labels.data)).toEqual(new Set([0, 2, 1]));
    // Oedema voxels (label 2) count in WT only; core voxels (1) in WT and TC.
    let core = 0;
    for (const value of result.labels.data) if (value === 1) core++;
    expect(result.volumesMl.TC).toBeCloseTo((core * 2) / 1000, 9);
    expect(result.volumesMl.ET).toBe(0);
  });

  it('makes its masks from the crop block as postprocessRegions makes them from the probability volumes', async () => {
    // Graded, position-dependent probabilities (so that each threshold, the largest component and nesting all cut
    // something), a window wider than the scan along j, flips, and per-region thresholds from the bundle.
    const graded: SliceRunner = {
      async run(input, batch) {
        const pixels = input.length / 4;
        const out = new Float32Array(pixels * 3);
        for (let p = 0; p < pixels; p++) for (let r = 0; r < 3; r++) out[p * 3 + r] = ((p * 7 + r * 3 + Math.round(input[p * 4]!)) % 11) / 10 + (batch % 2) * 0.01;
        return out;
      },
    };
    const manifest: ModelManifest = { ...manifestFor(3, [8, 12, 4]), inference: { tta: true, largestComponent: true, thresholds: { WT: 0.25, TC: 0.45, ET: 0.65 } } };
    for (const options of [{}, { largestComponent: false }, { threshold: 0.5, minEnhancingVoxels: 1000 }]) {
      const result = await segmentCase(makeCase(), manifest, graded, { batchSize: 3, ...options });
      const expected = postprocessRegions(result.probabilities, result.regions, [12, 10, 6], result.inference);
      expect(result.masks.map((mask) => Array.from(mask))).toEqual(expected.masks.map((mask) => Array.from(mask)));
      const counts = result.masks.map((mask) => mask.reduce((sum, value) => sum + value, 0));
      expect(counts[0]).toBeGreaterThan(counts[1]!);
      expect(counts[1]).toBeGreaterThan(0);
    }
  });

  it('with labelsOnly, skips the third flipped pass of slices two passes decide, and labels every voxel as all three passes do', async () => {
    // Inside the box graded, position-dependent probabilities between 0.2 and 0.9 (undecided by two passes); 0.02
    // elsewhere, so the slices without the box (k 0, 4 and 5 of the 6) are background whatever a third pass adds.
    const counting = (value: (p: number, r: number, flair: number) => number): SliceRunner & { slices: number } => ({
      slices: 0,
      async run(input, batch) {
        this.slices += batch;
        const pixels = input.length / 4;
        const out = new Float32Array(pixels * 3);
        for (let p = 0; p < pixels; p++) for (let r = 0; r < 3; r++) out[p * 3 + r] = value(p, r, input[p * 4]!);
        return out;
      },
    });
    // p is the pixel's index in the batch; each slice is answered alone, as by a real model (8 x 12 pixels a slice).
    const graded = (p: number, r: number, flair: number): number => (flair > 0 ? 0.2 + (0.7 * (((p % 96) * 7 + r * 3) % 11)) / 10 : 0.02);
    const manifest: ModelManifest = { ...manifestFor(3, [8, 12, 6]), inference: { tta: true, largestComponent: true, thresholds: { WT: 0.45, TC: 0.5, ET: 0.6 } } };
    // At a threshold of 0.3 they are not: 0.02 + 0.02 and a third output of 1 give a mean of 0.347.
    const cases: [object, number][] = [[{}, 15], [{ largestComponent: false }, 15], [{ threshold: 0.4 }, 15], [{ threshold: 0.3 }, 18]];
    for (const [options, slices] of cases) {
      const full = counting(graded);
      const all = await segmentCase(makeCase(), manifest, full, { extendWindow: false, batchSize: 3, ...options });
      const early = counting(graded);
      const decided = await segmentCase(makeCase(), manifest, early, { extendWindow: false, batchSize: 3, labelsOnly: true, ...options });
      const name = JSON.stringify(options);
      expect(Array.from(decided.labels.data), name).toEqual(Array.from(all.labels.data));
      expect(decided.masks.map((mask) => Array.from(mask)), name).toEqual(all.masks.map((mask) => Array.from(mask)));
      // Every voxel of the box is labelled, and not all alike: the thresholds cut it.
      expect(new Set(decided.labels.data).size, name).toBeGreaterThan(2);
      // 6 slices, each run plain and width-flipped; the height-flipped pass only for the 3 with the box.
      expect(full.slices, name).toBe(18);
      expect(early.slices, name).toBe(slices);
      if (slices === 15) {
        expect(decided.reasons).toContain("3 of 6 slices run skipped the third flipped pass: the plain and width-flipped outputs already decided every voxel's label, whatever the third could add");
        expect(() => decided.probabilities).toThrow(ArgumentError);
        expect(() => decided.probabilities).toThrow(/3 slice\(s\) skipped their third flipped pass/);
      } else {
        expect(decided.probabilities.map((volume) => Array.from(volume))).toEqual(all.probabilities.map((volume) => Array.from(volume)));
      }
    }
    // Where the third pass tips the mean: 0.6 in the top 4 rows of each slice as the engine sees it, 0.1 below, so
    // the height-flipped pass puts its 0.6 on the bottom rows: a mean of 0.433 on top, 0.267 below. Two passes alone
    // (0.6 + 0.6 on top) cannot tell 0.42 from 0.45; the labels must be those of all three passes at either.
    const banded = (p: number): number => (Math.floor((p % 96) / 12) < 4 ? 0.6 : 0.1);
    for (const threshold of [0.42, 0.45]) {
      const all = await segmentCase(makeCase(), manifest, counting(banded), { extendWindow: false, batchSize: 3, threshold, largestComponent: false });
      const decided = await segmentCase(makeCase(), manifest, counting(banded), { extendWindow: false, batchSize: 3, threshold, largestComponent: false, labelsOnly: true });
      expect(Array.from(decided.labels.data), `threshold ${threshold}`).toEqual(Array.from(all.labels.data));
      expect(all.labels.data.some((value) => value > 0)).toBe(threshold === 0.42);
    }
    // Outputs that are not probabilities (above 1) decide nothing: every pass runs, and the probabilities are there.
    const wide = counting((p, r, flair) => (flair > 0 ? 1.5 : 0.02 + (p % 2) * 1.2));
    const result = await segmentCase(makeCase(), manifest, wide, { extendWindow: false, batchSize: 3, labelsOnly: true });
    expect(wide.slices).toBe(18);
    expect(result.probabilities).toHaveLength(3);
    // A resampled scan thresholds interpolated probabilities: no early decision there either.
    const resampledManifest: ModelManifest = { ...manifest, spacing: [1, 1, 1] };
    const resampled = counting(graded);
    await segmentCase(makeCase(), resampledManifest, resampled, { extendWindow: false, batchSize: 3, labelsOnly: true });
    expect(resampled.slices % 3).toBe(0);
    const resampledAll = counting(graded);
    await segmentCase(makeCase(), resampledManifest, resampledAll, { extendWindow: false, batchSize: 3 });
    expect(resampled.slices).toBe(resampledAll.slices);
  });

  it('refuses a multi-region convention for a whole-tumour model', async () => {
    await expect(segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), thresholdRunner(1), { labelMapping: MSD_LABELS })).rejects.toBeInstanceOf(ArgumentError);
  });

  it('runs three engine calls per batch with tta and reports the slices done', async () => {
    const seen: [number, number][] = [];
    const result = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), thresholdRunner(1), { extendWindow: false, tta: true, batchSize: 3, onSlices: (done, total) => seen.push([done, total]) });
    expect(seen).toEqual([
      [3, 4],
      [4, 4],
    ]);
    expect(result.engineCalls).toBe(6);
  });

  it('keeps two batches in flight, flips included, and gives every slice its own answer when the engine answers out of order', async () => {
    /** A position-dependent model (so that flips matter), answering late calls first when `delays` is given. */
    const positional = (delays: boolean): SliceRunner & { most: number } => {
      let calls = 0;
      let running = 0;
      const runner = {
        most: 0,
        async run(input: Float32Array, batch: number): Promise<Float32Array> {
          const call = calls++;
          running++;
          runner.most = Math.max(runner.most, running);
          const width = input.length / 4 / batch / 8;
          const out = new Float32Array(input.length / 4);
          for (let p = 0; p < out.length; p++) out[p] = 1 / (1 + Math.exp(-(input[p * 4]! + 0.3 * (Math.floor(p / width) % 8) - 0.2 * (p % width) + 0.05 * input[p * 4 + 1]!)));
          if (delays) await new Promise((resolve) => setTimeout(resolve, Math.max(0, 24 - 4 * call)));
          running--;
          return out;
        },
      };
      return runner;
    };
    for (const tta of [false, true]) {
      const late = positional(true);
      const prompt = positional(false);
      const manifest = manifestFor(1, [8, 8, 6]);
      const pipelined = await segmentCase(makeCase(), manifest, late, { tta, batchSize: 2 });
      const reference = await segmentCase(makeCase(), manifest, prompt, { tta, batchSize: 2 });
      // Three batches of two slices: both of the first two batches (and their flips) were in the engine at once.
      expect(late.most).toBe(tta ? 6 : 2);
      expect(Buffer.compare(Buffer.from(pipelined.probabilities[0]!.buffer), Buffer.from(reference.probabilities[0]!.buffer))).toBe(0);
      expect(Array.from(pipelined.labels.data)).toEqual(Array.from(reference.labels.data));
      // And the reference itself is each slice's own answer: slice by slice, one call each, averaged by hand.
      const one = positional(false);
      const bySlice = await segmentCase(makeCase(), manifest, one, { tta, batchSize: 1 });
      pipelined.probabilities[0]!.forEach((value, v) => expect(value).toBeCloseTo(bySlice.probabilities[0]![v]!, 6));
    }
  });

  it('runs each distinct image-free slice once and gives its twins the answer: the same result as running every slice', async () => {
    // Slices k 0, 2 and 5 hold no image (every channel 0): after normalisation they are one and the same input.
    const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
    const flair = new Float32Array(n);
    const ramp = new Float32Array(n);
    for (const k of [1, 3, 4]) {
      for (let v = k * 120; v < (k + 1) * 120; v++) ramp[v] = 1 + (v % 7);
      for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) flair[i + 12 * (j + 10 * k)] = 10;
    }
    const channel = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE, { affine: AFFINE });
    const caseData: CanonicalCase = { ...makeCase(), channels: [channel(flair), channel(ramp), channel(ramp), channel(ramp)] };
    const manifest = manifestFor(1, [8, 8, 6]);
    const counting = (): SliceRunner & { slices: number } => {
      const inner = thresholdRunner(1);
      return {
        slices: 0,
        async run(input, batch) {
          this.slices += batch;
          return inner.run(input, batch);
        },
      };
    };
    for (const tta of [false, true]) {
      // A batch of 3 over slices 0, 1, 3 (a gap, so gathered) and then 4.
      const reused = counting();
      const progress: number[] = [];
      const shortcut = await segmentCase(caseData, manifest, reused, { tta, batchSize: 3, onSlices: (done) => progress.push(done) });
      const everyOne = counting();
      const plain = await segmentCase(caseData, manifest, everyOne, { tta, batchSize: 3, reuseConstantSlices: false });
      expect(Array.from(shortcut.labels.data)).toEqual(Array.from(plain.labels.data));
      expect(Array.from(shortcut.probabilities[0]!)).toEqual(Array.from(plain.probabilities[0]!));
      expect(reused.slices).toBe((tta ? 3 : 1) * 4);
      expect(everyOne.slices).toBe((tta ? 3 : 1) * 6);
      expect(progress).toEqual([5, 6]);
      expect(shortcut.reasons).toContain('2 of 6 slices repeat an image-free (constant) slice the model already ran (1 distinct): they took its answer instead of running again');
      expect(plain.reasons.some((reason) => reason.includes('image-free'))).toBe(false);
    }
  });

  it('runs a slice that differs from its first pixel only at its last one: no pixel is left unchecked', async () => {
    // Slices k 0 and 2 hold no image; slice 4 holds one voxel at the crop's last pixel (i 9, j 8), which none of
    // the probes planSlices looks at first sees; the others hold a ramp.
    const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
    const flair = new Float32Array(n);
    const ramp = new Float32Array(n);
    for (const k of [1, 3, 5]) for (let v = k * 120; v < (k + 1) * 120; v++) ramp[v] = 1 + (v % 7);
    flair[9 + 12 * (8 + 10 * 4)] = 50;
    const channel = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE, { affine: AFFINE });
    const caseData: CanonicalCase = { ...makeCase(), channels: [channel(flair), channel(ramp), channel(ramp), channel(ramp)] };
    let slices = 0;
    const inner = thresholdRunner(1);
    const runner: SliceRunner = {
      async run(input, batch) {
        slices += batch;
        return inner.run(input, batch);
      },
    };
    const shortcut = await segmentCase(caseData, manifestFor(1, [8, 8, 6]), runner, { extendWindow: false });
    expect(shortcut.reasons).toContain('1 of 6 slices repeat an image-free (constant) slice the model already ran (1 distinct): they took its answer instead of running again');
    expect(slices).toBe(5);
    const plain = await segmentCase(caseData, manifestFor(1, [8, 8, 6]), thresholdRunner(1), { extendWindow: false, reuseConstantSlices: false });
    expect(Array.from(shortcut.probabilities[0]!)).toEqual(Array.from(plain.probabilities[0]!));
  });

  it('reads a case by reference and gives the same label map as the case read beforehand', async () => {
    const caseData = makeCase();
    const files = await Promise.all(
      ['flair', 't1', 't1ce', 't2'].map(async (suffix, index) => {
        const file = path.join(dir, `box_${suffix}.nii.gz`);
        await writeNifti(file, caseData.channels[index]!);
        return file;
      }),
    );
    const byReference = await segmentCase({ id: 'box', layout: 'brats2017', images: files }, manifestFor(1, [8, 8, 4]), thresholdRunner(1));
    const loaded = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), thresholdRunner(1));
    expect(Array.from(byReference.labels.data)).toEqual(Array.from(loaded.labels.data));
    expect(byReference.labels.affine).toEqual(AFFINE);
    expect(byReference.timings.load).toBeGreaterThan(0);
    expect(loaded.timings.load).toBe(0);
  });
});

describe('segmentCase warnings and spacing', () => {
  /** Probability 0.9 wherever the slice's FLAIR (normalised) is above 0, else 0.1, for any slice size. */
  const flairRunner = (): SliceRunner & { calls: number } => ({
    calls: 0,
    async run(input) {
      this.calls++;
      const out = new Float32Array(input.length / 4);
      for (let p = 0; p < out.length; p++) out[p] = input[p * 4]! > 0 ? 0.9 : 0.1;
      return out;
    },
  });

  it('warns about constant channels and, when every channel is constant, gives an empty map without running the model', async () => {
    const blank = makeCase();
    const runner = flairRunner();
    const zero = () => createVolume('float32', new Float32Array(720), SHAPE, { affine: AFFINE });
    const result = await segmentCase({ ...blank, channels: [zero(), zero(), zero(), zero()] }, manifestFor(1, [8, 8, 4]), runner);
    expect(runner.calls).toBe(0);
    expect(result.labels.data.every((value) => value === 0)).toBe(true);
    expect(result.warnings).toEqual([
      'FLAIR is constant (every voxel 0): it holds no image',
      'T1w is constant (every voxel 0): it holds no image',
      'T1gd is constant (every voxel 0): it holds no image',
      'T2w is constant (every voxel 0): it holds no image',
      'every channel is constant: the label map is empty without running the model',
    ]);
    // One blank channel among real ones is said, and the model still runs.
    const partly = await segmentCase({ ...blank, channels: [blank.channels[0], zero(), blank.channels[2], blank.channels[3]] }, manifestFor(1, [8, 8, 4]), flairRunner());
    expect(partly.warnings).toEqual(['T1w is constant (every voxel 0): it holds no image']);
    expect(partly.volumesMl.WT).toBeGreaterThan(0);
  });

  it('carries the warnings of the case it read', async () => {
    const scan = { ...makeCase(), warnings: ['scan.nii.gz: has 5 frames; frames 0, 1, 2, 3 are read as FLAIR, T1w, T1gd, T2w and the other 1 are ignored'] };
    expect((await segmentCase(scan, manifestFor(1, [8, 8, 4]), flairRunner())).warnings).toEqual(scan.warnings);
  });

  it('resamples a 2 mm scan to a 1 mm model and puts the mask back on the scan grid', async () => {
    // The box scan with an isotropic 2 mm affine: the model (1 mm, crop 24 x 20 x 12) sees it at twice the size.
    const twoMm = lpsAffine(2);
    const base = makeCase();
    const scan: CanonicalCase = { ...base, channels: base.channels.map((channel) => createVolume('float32', channel.data as Float32Array, SHAPE, { affine: twoMm })) as unknown as CanonicalCase['channels'] };
    const manifest: ModelManifest = { ...manifestFor(1, [24, 20, 12]), spacing: [1, 1, 1] };
    const runner = flairRunner();
    const result = await segmentCase(scan, manifest, runner);
    expect(result.labels.shape).toEqual([12, 10, 6]);
    expect(result.labels.affine).toEqual(twoMm);
    // The box (i 3..6, j 2..5, k 1..3) comes back exactly: 48 voxels of 8 mm³.
    const box = new Uint8Array(720);
    for (let k = 1; k <= 3; k++) for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) box[i + 12 * (j + 10 * k)] = 1;
    expect(Array.from(result.labels.data)).toEqual(Array.from(box));
    expect(result.volumesMl.WT).toBeCloseTo(0.384, 9);
    expect(result.reasons[1]).toBe(
      "spacing 2 x 2 x 2 mm resampled to the model's 1 x 1 x 1 mm (recorded in the bundle): grid [12, 10, 6] to [24, 20, 12], images linear, probabilities linear back onto the scan's grid",
    );
    expect(result.notices).toEqual([result.reasons[1]]);
    // Without resampling the 12-voxel-deep scan is cropped to the model's 12 slices as it is, and says so.
    const asIs = await segmentCase(scan, manifest, flairRunner(), { resample: false });
    expect(asIs.warnings).toEqual(["spacing 2 x 2 x 2 mm segmented as it is, although the model learnt 1 x 1 x 1 mm (recorded in the bundle): resampling was switched off"]);
  });
});

describe('segmentCase on a scan that is not a skull-stripped brain', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-skull-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('warns when the FLAIR is non-zero over more than a brain, and not for a brain on a background of zeros', async () => {
    // 12 x 10 x 6 voxels of 16 mm: 4.096 mL each, 2949 mL in all; the model is a 16 mm model, so nothing is resampled.
    const coarse = lpsAffine(16);
    const base = makeCase();
    const withBackground = (fill: number): CanonicalCase => {
      const channels = base.channels.map((channel, index) => {
        const data = Float32Array.from(channel.data as Float32Array, (value) => (index === 0 && value === 0 ? fill : value));
        return createVolume('float32', data, SHAPE, { affine: coarse });
      });
      return { ...base, ref: { ...base.ref, images: ['/scans/head_flair.nii.gz'] }, channels: channels as unknown as CanonicalCase['channels'] };
    };
    const manifest: ModelManifest = { ...manifestFor(1, [8, 8, 4]), spacing: [16, 16, 16] };
    // Every FLAIR voxel non-zero (a background of noise, or a head): 2.9 L, more than the 2.5 L limit.
    const head = await segmentCase(withBackground(3), manifest, thresholdRunner(1));
    expect(head.warnings).toEqual([
      '/scans/head_flair.nii.gz: FLAIR is non-zero over 2.9 L, more than any skull-stripped brain (BraTS brains are 1.2 to 1.8 L, on a background of zeros): ' +
        'the scan may still have its skull, or a background that is not 0. Models learn skull-stripped brains: strip the skull first (e.g. with HD-BET or SynthStrip), or expect wrong label maps',
    ]);
    // The box alone is non-zero: 48 voxels, 197 mL.
    const brain = await segmentCase(withBackground(0), manifest, thresholdRunner(1));
    expect(brain.warnings).toEqual([]);
    expect(MAX_BRAIN_ML).toBe(2500);

    // Read from its files, the head is warned of once (loadCase says it, naming the file; segmentation does not repeat it).
    const files = await Promise.all(
      ['flair', 't1', 't1ce', 't2'].map(async (suffix, index) => {
        const file = path.join(dir, `head_${suffix}.nii.gz`);
        await writeNifti(file, withBackground(3).channels[index]!);
        return file;
      }),
    );
    const read = await segmentCase({ id: 'head', layout: 'brats2017', images: files }, manifest, thresholdRunner(1));
    expect(read.warnings).toEqual([head.warnings[0]!.replace('/scans/head_flair.nii.gz', files[0]!)]);
    // A constant FLAIR is said to hold no image, not to be a head.
    const flat = withBackground(3);
    const constant = { ...flat, channels: [createVolume('float32', new Float32Array(720).fill(3), SHAPE, { affine: coarse }), ...flat.channels.slice(1)] } as unknown as CanonicalCase;
    expect((await segmentCase(constant, manifest, thresholdRunner(1))).warnings).toEqual(['FLAIR is constant (every voxel 3): it holds no image']);
  });
});

describe('segmentCase orientation', () => {
  const regionsRunner = (): SliceRunner => thresholdRunner(3, (h) => (h < 3 ? 1 : h < 5 ? 2 : 3));

  it('turns a scan stored in another orientation to the model\'s, and writes every output back on the scan\'s grid', async () => {
    const lps = makeCase();
    const manifest = manifestFor(3, [8, 8, 4]);
    // The engine's answer depends on the row of the window a voxel lands in: only the same slices give the same labels.
    const reference = await segmentCase(lps, manifest, regionsRunner());
    expect(new Set(reference.labels.data)).toEqual(new Set([0, 1, 2]));
    // The same scan stored sagittally (PIR: i toward posterior, j inferior, k toward the right), each voxel at the same
    // world position (planReorientation agrees with nibabel: @brats/io orientation.test.ts).
    const plan = planReorientation(SHAPE, AFFINE, 'PIR');
    const channels = lps.channels.map((channel) => createVolume('float32', plan.toTarget(channel.data as Float32Array), plan.shape, { affine: plan.affine }));
    const sagittal: CanonicalCase = { ...lps, channels: channels as unknown as CanonicalCase['channels'] };
    const result = await segmentCase(sagittal, manifest, regionsRunner());
    expect(result.labels.shape).toEqual([10, 6, 12]);
    expect(result.labels.affine).toEqual(plan.affine);
    expect(Array.from(result.labels.data)).toEqual(Array.from(plan.toTarget(reference.labels.data)));
    result.masks.forEach((mask, r) => expect(Array.from(mask)).toEqual(Array.from(plan.toTarget(reference.masks[r]!))));
    result.probabilities.forEach((volume, r) => expect(Array.from(volume)).toEqual(Array.from(plan.toTarget(reference.probabilities[r]!))));
    expect(result.volumesMl).toEqual(reference.volumesMl);
    expect(result.case).toBe(sagittal);
    const note =
      "orientation PIR (voxel axes i, j, k toward posterior, inferior, right) turned to the model's LPS (voxel axes i, j, k toward left, posterior, superior) " +
      "(as BraTS and the Decathlon; the bundle records none): axes permuted and reversed, no interpolation, the outputs turned back onto the scan's grid";
    // The orientation first, then what the LPS scan notes as well (here a window beyond the model's along k), the
    // window's inferior face named by the end of the scan's own axis that faces it: k-low in LPS, j-high in PIR.
    const beyond = (face: string): string =>
      `predicted tumour reached the inferior (${face}) face(s) of the model's 8x8x4 window, with scan beyond: 1 more window(s) segmented it there (1 slices, 1 through the engine), normalised with the window's statistics`;
    expect(reference.notices).toEqual([beyond('k-low')]);
    expect(result.notices).toEqual([note, beyond('j-high')]);
    expect(result.reasons).toEqual([note, ...reference.reasons.slice(1).map((line) => (line === beyond('k-low') ? beyond('j-high') : line))]);
    expect(reference.notices.some((line) => line.startsWith('orientation'))).toBe(false);

    // Only the labels wanted, with flips: the same labels, and no probabilities read on the way.
    const labelsOnly = await segmentCase(sagittal, manifest, regionsRunner(), { labelsOnly: true, tta: true });
    const withTta = await segmentCase(lps, manifest, regionsRunner(), { tta: true });
    expect(Array.from(labelsOnly.labels.data)).toEqual(Array.from(plan.toTarget(withTta.labels.data)));
  });

  it('turns a scan to the orientation the bundle records', async () => {
    const manifest: ModelManifest = { ...manifestFor(1, [8, 8, 4]), orientation: 'RAS' };
    const result = await segmentCase(makeCase(), manifest, thresholdRunner(1));
    expect(result.notices[0]).toMatch(/^orientation LPS \(voxel axes i, j, k toward left, posterior, superior\) turned to the model's RAS \(.*\) \(recorded in the bundle\)/);
    // The box is a box in either orientation: the same 48 voxels on the scan's grid.
    const box = new Uint8Array(720);
    for (let k = 1; k <= 3; k++) for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) box[i + 12 * (j + 10 * k)] = 1;
    expect(Array.from(result.labels.data)).toEqual(Array.from(box));
    expect(result.labels.affine).toEqual(AFFINE);
  });
});

describe('segmentCase beyond the model window', () => {
  /** makeCase with FLAIR 10 in the box i0..i1, j0..j1, k0..k1 instead. */
  const boxAt = ([i0, i1]: [number, number], [j0, j1]: [number, number], [k0, k1]: [number, number]): CanonicalCase => {
    const base = makeCase();
    const flair = new Float32Array(SHAPE[0] * SHAPE[1] * SHAPE[2]);
    for (let k = k0; k <= k1; k++) for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) flair[i + 12 * (j + 10 * k)] = 10;
    const channels = [createVolume('float32', flair, SHAPE, { affine: AFFINE }), ...base.channels.slice(1)] as unknown as CanonicalCase['channels'];
    return { ...base, channels };
  };
  const count = (data: ArrayLike<number>): number => Array.from(data).filter((value) => value > 0).length;
  const box = (labels: ArrayLike<number>, [i0, i1]: [number, number], [j0, j1]: [number, number], [k0, k1]: [number, number]): boolean => {
    for (let k = 0; k < 6; k++) for (let j = 0; j < 10; j++) for (let i = 0; i < 12; i++) {
      const inside = i >= i0 && i <= i1 && j >= j0 && j <= j1 && k >= k0 && k <= k1;
      if ((labels[i + 12 * (j + 10 * k)]! > 0) !== inside) return false;
    }
    return true;
  };
  /** 0.6 + 0.01·h where normalised FLAIR is positive, else 0.1: the answer depends on where the window puts a voxel. */
  const rowRunner = (): SliceRunner & { slices: number } => ({
    slices: 0,
    async run(input, batch) {
      this.slices += batch;
      const pixels = input.length / 4;
      const out = new Float32Array(pixels);
      for (let p = 0; p < pixels; p++) out[p] = input[p * 4]! > 0 ? 0.6 + 0.01 * (Math.floor(p / 8) % 8) : 0.1;
      return out;
    },
  });

  it('segments a tumour that crosses the i-low face of the window in a window beyond it, normalised like the window', async () => {
    // The 8 x 8 x 4 window of the 12 x 10 x 6 scan starts at (2, 1, 1); the box i 0..4 crosses its i-low face.
    const caseData = boxAt([0, 4], [3, 5], [2, 3]);
    const runner = rowRunner();
    const progress: [number, number][] = [];
    const result = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), runner, { batchSize: 4, onSlices: (done, total) => progress.push([done, total]) });
    expect(box(result.labels.data, [0, 4], [3, 5], [2, 3])).toBe(true);
    // The window's 4 slices, then the 4 of the window beyond: the slices in all grow when it starts.
    expect(progress).toEqual([
      [4, 4],
      [8, 8],
    ]);
    expect(result.volumesMl.WT).toBeCloseTo((30 * 2) / 1000, 9);
    // One more window, at i 0 (the scan's edge): its 4 slices once more through the engine.
    expect(runner.slices).toBe(8);
    const note = "predicted tumour reached the right (i-low) face(s) of the model's 8x8x4 window, with scan beyond: 1 more window(s) segmented it there (4 slices, 4 through the engine), normalised with the window's statistics";
    expect(result.reasons).toContain(note);
    expect(result.notices).toEqual([note]);
    expect(result.warnings).toEqual([]);
    // Where the windows overlap, the model's own window answers (h = i - 2); beyond it the new one (h = i).
    const at = (i: number): number => result.probabilities[0]![i + 12 * (4 + 10 * 2)]!;
    expect([at(0), at(1), at(2), at(3), at(4)].map((value) => Number(value.toFixed(6)))).toEqual([0.6, 0.61, 0.6, 0.61, 0.62]);
  });

  it('gives the image-free slices of a window beyond the answer of the one it ran: the same result as running every slice', async () => {
    // FLAIR alone, the box at k 2..3: slices k 1 and 4 of each window hold no image, one input that runs once.
    const boxed = boxAt([0, 4], [3, 5], [2, 3]);
    const empty = createVolume('float32', new Float32Array(SHAPE[0] * SHAPE[1] * SHAPE[2]), SHAPE, { affine: AFFINE });
    const caseData = { ...boxed, channels: [boxed.channels[0], empty, empty, empty] } as unknown as CanonicalCase;
    const reused = rowRunner();
    const shortcut = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), reused, { batchSize: 4 });
    const everyOne = rowRunner();
    const plain = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), everyOne, { batchSize: 4, reuseConstantSlices: false });
    // 3 of 4 slices in each window, the model's and the one beyond at i 0.
    expect([reused.slices, everyOne.slices]).toEqual([6, 8]);
    expect(box(shortcut.labels.data, [0, 4], [3, 5], [2, 3])).toBe(true);
    // Slice k 4 at i 0..1, where the window beyond answers, is 0.1 as run, not the 0 of a slice left empty.
    expect(shortcut.probabilities[0]![0 + 12 * (4 + 10 * 4)]).toBeCloseTo(0.1, 6);
    expect(Array.from(shortcut.probabilities[0]!)).toEqual(Array.from(plain.probabilities[0]!));
  });

  it('without extension keeps the window alone and warns that the tumour reaches its edge', async () => {
    const caseData = boxAt([0, 4], [3, 5], [2, 3]);
    const runner = rowRunner();
    const result = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), runner, { batchSize: 4, extendWindow: false });
    expect(box(result.labels.data, [2, 4], [3, 5], [2, 3])).toBe(true);
    expect(runner.slices).toBe(4);
    expect(result.warnings).toEqual([
      "predicted tumour reaches the right (i-low) face(s) of the model's 8x8x4 window and the scan goes on beyond: that part was not segmented (window extension is off)",
    ]);
    expect(result.reasons.some((reason) => reason.includes('more window'))).toBe(false);
    expect(result.notices).toEqual([]);
  });

  it('segments the slices beyond the k-low face, only those, in the model window and in the windows beyond', async () => {
    // Box k 0..2 crosses the window's k-low face (k 1); j 6..9 crosses its j-high face (j 8) as well.
    const caseData = boxAt([4, 6], [6, 9], [0, 2]);
    const runner = rowRunner();
    const result = await segmentCase(caseData, manifestFor(1, [8, 8, 4]), runner, { batchSize: 4 });
    expect(box(result.labels.data, [4, 6], [6, 9], [0, 2])).toBe(true);
    // The window at j 2 (to the scan's edge) runs 4 slices; then slice k 0 in both windows.
    expect(runner.slices).toBe(4 + 4 + 1 + 1);
    expect(result.reasons).toContain(
      "predicted tumour reached the posterior (j-high), inferior (k-low) face(s) of the model's 8x8x4 window, with scan beyond: 3 more window(s) segmented it there (6 slices, 6 through the engine), normalised with the window's statistics",
    );
  });

  it('needs no window beyond a tumour inside the window, and none beyond a face at the scan edge', async () => {
    const inside = rowRunner();
    const plain = await segmentCase(boxAt([4, 6], [3, 5], [2, 3]), manifestFor(1, [8, 8, 4]), inside);
    expect(inside.slices).toBe(4);
    expect(plain.reasons.some((reason) => reason.includes('face'))).toBe(false);
    // A window as large as the scan along i and j: the box touches faces the scan ends at.
    const edge = rowRunner();
    const whole = await segmentCase(boxAt([0, 3], [0, 2], [2, 3]), manifestFor(1, [12, 10, 4]), edge);
    expect(edge.slices).toBe(4);
    expect(box(whole.labels.data, [0, 3], [0, 2], [2, 3])).toBe(true);
  });

  it('extends a resampled scan on the model grid, before the probabilities go back to the scan grid', async () => {
    // A 1 mm model on the 1 x 1 x 2 mm scan: k is resampled to 12 slices, the window of 4 sits at k 4..7 of them.
    const manifest = testManifest([8, 8, 4], { outputChannels: 1, spacing: [1, 1, 1] });
    const caseData = boxAt([0, 4], [3, 5], [2, 3]);
    const extended = await segmentCase(caseData, manifest, rowRunner());
    const alone = await segmentCase(caseData, manifest, rowRunner(), { extendWindow: false });
    const columns = (labels: ArrayLike<number>, i: number): number => {
      let found = 0;
      for (let k = 0; k < 6; k++) for (let j = 0; j < 10; j++) found += labels[i + 12 * (j + 10 * k)]! > 0 ? 1 : 0;
      return found;
    };
    // Column i 0 (outside the window along i) is segmented only with the extension; i 3 (inside) in both alike.
    expect(columns(alone.labels.data, 0)).toBe(0);
    expect(columns(extended.labels.data, 0)).toBe(columns(extended.labels.data, 3));
    expect(columns(extended.labels.data, 3)).toBe(columns(alone.labels.data, 3));
    expect(columns(extended.labels.data, 3)).toBeGreaterThan(0);
    expect(count(extended.labels.data)).toBeGreaterThan(count(alone.labels.data));
  });
});
