import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BRATS2017_LABELS, createVolume, generatePhantom, resolvePreprocessing, writeModelManifest, type CanonicalCase } from '@brats/io';
import { segmentCase } from '@brats/ncs2-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUnetManifest } from '../bundle.js';
import { buildUnet } from '../model.js';
import { saveLayersModel } from '../model-files.js';
import { TfjsEngine } from './tfjs-engine.js';

describe('TfjsEngine', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-tfjs-engine-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs a bundle model like the model itself', async () => {
    const options = { inputShape: [8, 8, 4] as const, filters: 2, depth: 1, dropout: 0, seed: 2 };
    const model = buildUnet(options);
    await saveLayersModel(dir, model);
    const manifest = createUnetManifest(model, options, resolvePreprocessing({ crop: [8, 8, 4] }));
    await writeModelManifest(dir, manifest);
    const engine = new TfjsEngine({ backend: 'cpu' });
    expect(await engine.load(dir)).toEqual({ layout: 'NHWC', input: [8, 8, 4], outputChannels: 1, file: path.join(dir, 'model.json'), format: 'tfjs' });
    const input = Float32Array.from({ length: 2 * 8 * 8 * 4 }, (_, v) => Math.sin(v));
    const output = await engine.run(input, 2);
    const direct = (model.predict(tf.tensor4d(input, [2, 8, 8, 4])) as tf.Tensor).dataSync();
    expect(Array.from(output)).toEqual(Array.from(direct));
    await expect(engine.run(input, 3)).rejects.toThrow(/for 3 slices/);
    // It serves the runtime's whole-scan segmentation like any engine.
    const phantom = generatePhantom({ size: [20, 18, 16], seed: 4 });
    const float = (volume: (typeof phantom.channels)['FLAIR']) => createVolume('float32', Float32Array.from(volume.data), volume.shape, { spacing: volume.spacing, affine: volume.affine });
    const { FLAIR, T1w, T1gd, T2w } = phantom.channels;
    const scan: CanonicalCase = { id: phantom.id, layout: 'brats2017', channels: [float(FLAIR), float(T1w), float(T1gd), float(T2w)], labelMapping: BRATS2017_LABELS, ref: { id: phantom.id, layout: 'brats2017', images: [] } };
    // The model's window alone: an untrained model's tumour reaches its faces, beyond which more windows would run.
    const result = await segmentCase(scan, manifest, engine, { batchSize: 2, extendWindow: false });
    expect(result.labels.shape).toEqual([20, 18, 16]);
    // The crop's 4 slices in batches of 2.
    expect(result.engineCalls).toBe(2);
    await engine.dispose();
  });
});
