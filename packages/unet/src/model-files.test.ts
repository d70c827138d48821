import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelBundleError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUnet } from './model.js';
import { loadLayersModel, saveLayersModel } from './model-files.js';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-model-files-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('layers model files', () => {
  it.each(['bilinear', 'transpose'] as const)('a %s U-Net saved and loaded predicts identically', async (upsampling) => {
    const model = buildUnet({ inputShape: [16, 16, 4], filters: 2, depth: 2, upsampling, batchNorm: upsampling === 'transpose', seed: 3 });
    const target = path.join(dir, upsampling);
    await saveLayersModel(target, model);
    const weightsBytes = (await fs.stat(path.join(target, 'weights.bin'))).size;
    const floats = model.weights.reduce((sum, w) => sum + w.shape.reduce<number>((a, b) => a * (b ?? 1), 1), 0);
    expect(weightsBytes).toBe(floats * 4);
    const loaded = await loadLayersModel(target);
    const input = tf.randomNormal([2, 16, 16, 4], 0, 1, 'float32', 7);
    const expected = (model.predict(input) as tf.Tensor).dataSync();
    const actual = (loaded.predict(input) as tf.Tensor).dataSync();
    expect(Array.from(actual)).toEqual(Array.from(expected));
    expect(loaded.layers.map((layer) => layer.getClassName())).toEqual(model.layers.map((layer) => layer.getClassName()));
  });

  it('a missing weights file is a ModelBundleError naming it', async () => {
    const target = path.join(dir, 'broken');
    await saveLayersModel(target, buildUnet({ inputShape: [8, 8, 1], filters: 1, depth: 1, seed: 1 }));
    await fs.rm(path.join(target, 'weights.bin'));
    await expect(loadLayersModel(target)).rejects.toThrow(ModelBundleError);
    await expect(loadLayersModel(target)).rejects.toThrow(/weights\.bin: weights file missing/);
  });
});
