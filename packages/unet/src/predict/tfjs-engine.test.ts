import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  BRATS2017_LABELS,
  MSD_LABELS,
  createVolume,
  resolvePreprocessing,
  writeModelManifest,
  type CanonicalCase,
  type ModelManifest,
  type Volume,
} from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUnet } from '../model.js';
import { saveLayersModel } from '../model-files.js';
import { keepLargestComponent, labelComponents } from './components.js';
import { predictCase, resolveInference, type SliceRunner } from './predictor.js';
import { TfjsEngine } from './tfjs-engine.js';

const SHAPE = [12, 10, 6] as const;
const AFFINE = [
  [-1, 0, 0, 5],
  [0, -1, 0, 7],
  [0, 0, 2, -3],
  [0, 0, 0, 1],
] as const;

/** A scan whose FLAIR is 10 inside the box i 3..6, j 2..5, k 1..3 and 0 elsewhere; other channels constant 1. */
function makeCase(): CanonicalCase {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const flair = new Float32Array(n);
  for (let k = 1; k <= 3; k++) for (let j = 2; j <= 5; j++) for (let i = 3; i <= 6; i++) flair[i + 12 * (j + 10 * k)] = 10;
  const channel = (data: Float32Array): Volume<'float32'> => createVolume('float32', data, SHAPE, { affine: AFFINE });
  return {
    id: 'box',
    layout: 'brats2017',
    channels: [channel(flair), channel(new Float32Array(n).fill(1)), channel(new Float32Array(n).fill(1)), channel(new Float32Array(n).fill(1))],
    labelMapping: BRATS2017_LABELS,
    ref: { id: 'box', layout: 'brats2017', images: [] },
  };
}

function manifestFor(outputChannels: 1 | 3, crop: [number, number, number]): ModelManifest {
  return {
    format: 'brats-model',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00Z',
    model: { architecture: 'unet2d', inputShape: [crop[0], crop[1], 4], filters: 2, depth: 1, upsampling: 'bilinear', batchNorm: false, dropout: 0, outputChannels, parameters: 0 },
    channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
    preprocessing: resolvePreprocessing({ crop, target: outputChannels === 1 ? 'wt' : 'regions' }),
    regions: outputChannels === 1 ? ['WT'] : ['WT', 'TC', 'ET'],
    threshold: 0.5,
    inputLayout: 'NHWC',
    files: { tfjs: 'model.json' },
  };
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

describe('predictCase', () => {
  it('puts a whole-tumour prediction back on the scan grid with its affine', async () => {
    const result = await predictCase(makeCase(), manifestFor(1, [8, 8, 4]), thresholdRunner(1), { batchSize: 3 });
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
    const result = await predictCase(makeCase(), manifestFor(3, [8, 8, 4]), runner, { labelMapping: mapping });
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
    const plain = await predictCase(makeCase(), manifestFor(1, [8, 8, 4]), halfRunner);
    const tta = await predictCase(makeCase(), manifestFor(1, [8, 8, 4]), halfRunner, { tta: true });
    const voxel = 4 + 12 * (2 + 10 * 2); // w = j - 1 = 1 (left half)
    const mirrored = 4 + 12 * (7 + 10 * 2); // w = 6 (right half)
    expect(plain.probabilities[0]![voxel]).toBeCloseTo(0.9, 6);
    expect(plain.probabilities[0]![mirrored]).toBe(0);
    // identity 0.9, left-right flip 0, up-down flip 0.9 → 0.6 on the left; 0, 0.9, 0 → 0.3 on the right.
    expect(tta.probabilities[0]![voxel]).toBeCloseTo(0.6, 6);
    expect(tta.probabilities[0]![mirrored]).toBeCloseTo(0.3, 6);
    // A bundle whose validation chose tta gets it without asking; the caller can still turn it off.
    const tuned: ModelManifest = { ...manifestFor(1, [8, 8, 4]), inference: { tta: true, largestComponent: false } };
    const byBundle = await predictCase(makeCase(), tuned, halfRunner);
    expect(byBundle.probabilities[0]![mirrored]).toBeCloseTo(0.3, 6);
    const refused = await predictCase(makeCase(), tuned, halfRunner, { tta: false });
    expect(refused.probabilities[0]![mirrored]).toBe(0);
  });

  it('says where its tta and largest-component settings come from', () => {
    const plain = manifestFor(1, [8, 8, 4]);
    const tuned: ModelManifest = { ...plain, inference: { tta: true, largestComponent: true } };
    expect(resolveInference(plain)).toEqual({ tta: false, largestComponent: false, source: 'default' });
    expect(resolveInference(plain, { largestComponent: true })).toEqual({ tta: false, largestComponent: true, source: 'caller' });
    expect(resolveInference(tuned)).toEqual({ tta: true, largestComponent: true, source: 'bundle' });
    expect(resolveInference(tuned, { tta: false })).toEqual({ tta: false, largestComponent: true, source: 'bundle' });
    expect(resolveInference(tuned, { tta: false, largestComponent: false })).toEqual({ tta: false, largestComponent: false, source: 'caller' });
  });

  it('rejects an engine that returns the wrong number of values', async () => {
    const bad: SliceRunner = { run: async () => new Float32Array(3) };
    await expect(predictCase(makeCase(), manifestFor(1, [8, 8, 4]), bad)).rejects.toThrow(/returned 3 values/);
  });
});

describe('connected components', () => {
  it('joins diagonal neighbours (26-connectivity) and keeps the largest component', () => {
    const mask = new Uint8Array(27 * 2);
    const at = (i: number, j: number, k: number) => i + 3 * (j + 3 * k);
    mask[at(0, 0, 0)] = 1;
    mask[at(1, 1, 1)] = 1; // touches (0,0,0) only by a corner
    mask[at(2, 2, 5)] = 1;
    mask[at(2, 1, 5)] = 1;
    mask[at(2, 0, 5)] = 1;
    const { sizes } = labelComponents(mask, [3, 3, 6]);
    expect(sizes.slice(1).sort()).toEqual([2, 3]);
    const kept = keepLargestComponent(mask, [3, 3, 6]);
    expect(kept.reduce((a, b) => a + b, 0)).toBe(3);
    expect(kept[at(2, 0, 5)]).toBe(1);
  });
});

describe('TfjsEngine', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-tfjs-engine-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs a bundle model like the model itself', async () => {
    const model = buildUnet({ inputShape: [8, 8, 4], filters: 2, depth: 1, dropout: 0, seed: 2 });
    await saveLayersModel(dir, model);
    await writeModelManifest(dir, manifestFor(1, [8, 8, 4]));
    const engine = new TfjsEngine({ backend: 'cpu' });
    expect(await engine.load(dir)).toEqual({ layout: 'NHWC', input: [8, 8, 4], outputChannels: 1, file: path.join(dir, 'model.json'), format: 'tfjs' });
    const input = Float32Array.from({ length: 2 * 8 * 8 * 4 }, (_, v) => Math.sin(v));
    const output = await engine.run(input, 2);
    const direct = (model.predict(tf.tensor4d(input, [2, 8, 8, 4])) as tf.Tensor).dataSync();
    expect(Array.from(output)).toEqual(Array.from(direct));
    await expect(engine.run(input, 3)).rejects.toThrow(/for 3 slices/);
    const result = await predictCase(makeCase(), manifestFor(1, [8, 8, 4]), engine);
    expect(result.labels.shape).toEqual([12, 10, 6]);
    await engine.dispose();
  });
});
