import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BRATS2017_LABELS, createVolume, resolvePreprocessing, writeModelManifest, type CanonicalCase, type ModelManifest, type Volume } from '@brats/io';
import { segmentCase } from '@brats/ncs2-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUnet } from '../model.js';
import { saveLayersModel } from '../model-files.js';
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
    const result = await segmentCase(makeCase(), manifestFor(1, [8, 8, 4]), engine);
    expect(result.labels.shape).toEqual([12, 10, 6]);
    await engine.dispose();
  });
});
