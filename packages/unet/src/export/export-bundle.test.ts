import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ModelBundleError, readModelManifest, resolvePreprocessing, writeModelManifest, type ModelManifest } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUnet } from '../model.js';
import { saveLayersModel } from '../model-files.js';
import { exportBundleToOnnx } from './index.js';
import { randomInput } from './test-helpers.js';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-onnx-bundle-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function manifestFor(inputShape: [number, number, number]): ModelManifest {
  return {
    format: 'brats-model',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { architecture: 'unet2d', inputShape, filters: 4, depth: 2, upsampling: 'bilinear', batchNorm: false, dropout: 0.2, outputChannels: 1, parameters: 0 },
    channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
    preprocessing: resolvePreprocessing(),
    regions: ['WT'],
    threshold: 0.5,
    inputLayout: 'NHWC',
    files: { tfjs: 'model.json' },
  };
}

describe('exportBundleToOnnx', () => {
  it('writes model.onnx that ONNX Runtime runs like the saved tfjs model, and records it in the manifest', async () => {
    const bundle = path.join(dir, 'ok');
    const model = buildUnet({ inputShape: [16, 16, 4], filters: 4, depth: 2, seed: 1 });
    await saveLayersModel(bundle, model);
    await writeModelManifest(bundle, manifestFor([16, 16, 4]));

    const result = await exportBundleToOnnx(bundle);
    expect(result.path).toBe(path.join(bundle, 'model.onnx'));
    expect((await fs.stat(result.path)).size).toBe(result.bytes);
    expect((await readModelManifest(bundle)).files).toEqual({ tfjs: 'model.json', onnx: 'model.onnx' });
    expect((await fs.readdir(bundle)).filter((name) => name.endsWith('.partial'))).toEqual([]);

    const input = randomInput(3 * 16 * 16 * 4, 2);
    const expected = tf.tidy(() => (model.predict(tf.tensor4d(input, [3, 16, 16, 4])) as tf.Tensor).dataSync());
    const session = await ort.InferenceSession.create(result.path);
    const output = await session.run({ input: new ort.Tensor('float32', input, [3, 16, 16, 4]) });
    const actual = output.probabilities!.data as Float32Array;
    expect(Math.max(...actual.map((value, index) => Math.abs(value - expected[index]!)))).toBeLessThan(1e-4);
    await session.release();
    model.dispose();
  });

  it('keeps the INT8 model while model.onnx stays the same, and drops it when model.onnx changes', async () => {
    const bundle = path.join(dir, 'int8');
    const model = buildUnet({ inputShape: [16, 16, 4], filters: 2, depth: 1, seed: 4 });
    await saveLayersModel(bundle, model);
    model.dispose();
    await writeModelManifest(bundle, manifestFor([16, 16, 4]));
    await exportBundleToOnnx(bundle);
    const quantization = {
      method: 'static QDQ',
      calibration: { data: 'd', cases: ['a'], slices: 1 },
      validation: { cases: ['b'], fp32: { WT: 0.9 }, int8: { WT: 0.9 } },
      speed: { engine: 'e', fp32SecondsPerSlice: 2, int8SecondsPerSlice: 1 },
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    const withInt8 = async () => {
      const manifest = await readModelManifest(bundle);
      await writeModelManifest(bundle, { ...manifest, files: { ...manifest.files, onnxInt8: 'model-int8.onnx' }, quantization });
      await fs.writeFile(path.join(bundle, 'model-int8.onnx'), 'int8');
    };
    await withInt8();
    // The same weights export to the same bytes: the INT8 model made from them stays.
    await exportBundleToOnnx(bundle);
    expect((await readModelManifest(bundle)).files.onnxInt8).toBe('model-int8.onnx');
    expect((await readModelManifest(bundle)).quantization).toEqual(quantization);
    // model.onnx that differs from what the weights give (e.g. weights trained further): the INT8 model is stale.
    await fs.writeFile(path.join(bundle, 'model.onnx'), 'older');
    await exportBundleToOnnx(bundle);
    const after = await readModelManifest(bundle);
    expect(after.files).toEqual({ tfjs: 'model.json', onnx: 'model.onnx' });
    expect(after.quantization).toBeUndefined();
    await expect(fs.stat(path.join(bundle, 'model-int8.onnx'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses a model whose input disagrees with the manifest', async () => {
    const bundle = path.join(dir, 'mismatch');
    const model = buildUnet({ inputShape: [16, 16, 4], filters: 2, depth: 1, seed: 1 });
    await saveLayersModel(bundle, model);
    await writeModelManifest(bundle, manifestFor([32, 32, 4]));
    const error = await exportBundleToOnnx(bundle).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelBundleError);
    expect((error as Error).message).toMatch(/model input is \[16, 16, 4\] but the manifest says \[32, 32, 4\]/);
    await expect(fs.stat(path.join(bundle, 'model.onnx'))).rejects.toThrow(/ENOENT/);
    model.dispose();
  });

  it('names a folder without a manifest', async () => {
    await expect(exportBundleToOnnx(path.join(dir, 'none'))).rejects.toThrow(ModelBundleError);
  });
});
