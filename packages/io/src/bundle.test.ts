import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBundleError, readModelManifest, writeModelManifest, type ModelManifest } from './bundle.js';
import { resolvePreprocessing } from './preprocess.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-bundle-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const manifest: ModelManifest = {
  format: 'brats-model',
  formatVersion: 1,
  createdAt: '2026-01-01T00:00:00.000Z',
  model: { architecture: 'unet2d', inputShape: [144, 144, 4], filters: 16, depth: 4, upsampling: 'bilinear', batchNorm: false, dropout: 0.2, outputChannels: 1, parameters: 1962769 },
  channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
  preprocessing: resolvePreprocessing(),
  regions: ['WT'],
  threshold: 0.5,
  inputLayout: 'NHWC',
  files: { tfjs: 'model.json' },
};

describe('model manifest', () => {
  it('round-trips through brats-model.json', async () => {
    await writeModelManifest(path.join(dir, 'ok'), manifest);
    expect(await readModelManifest(path.join(dir, 'ok'))).toEqual(manifest);
  });

  it('keeps the orientation the model learnt', async () => {
    await writeModelManifest(path.join(dir, 'oriented'), { ...manifest, orientation: 'RAS' });
    expect((await readModelManifest(path.join(dir, 'oriented'))).orientation).toBe('RAS');
  });

  it('keeps the inference settings chosen on validation', async () => {
    const tuned: ModelManifest = { ...manifest, inference: { tta: true, largestComponent: false } };
    await writeModelManifest(path.join(dir, 'tuned'), tuned);
    expect((await readModelManifest(path.join(dir, 'tuned'))).inference).toEqual({ tta: true, largestComponent: false });
  });

  it.each<[string, unknown, RegExp]>([
    ['another format', { ...manifest, format: 'keras' }, /not a brats-model manifest/],
    ['a newer version', { ...manifest, formatVersion: 2 }, /format version 2; this release reads version 1/],
    ['a channel count that disagrees with the input', { ...manifest, channels: ['FLAIR'] }, /one name per input channel/],
    ['a threshold of 1', { ...manifest, threshold: 1 }, /threshold must be in \(0, 1\)/],
    ['inference settings that are not booleans', { ...manifest, inference: { tta: 'yes', largestComponent: false } }, /inference must be/],
    ['a threshold for a region the model lacks', { ...manifest, inference: { tta: false, largestComponent: false, thresholds: { ET: 0.4 } } }, /inference\.thresholds must map the model's regions/],
    ['a region threshold of 0', { ...manifest, inference: { tta: false, largestComponent: false, thresholds: { WT: 0 } } }, /inference\.thresholds must map the model's regions to numbers in \(0, 1\)/],
    ['an orientation with two letters for one axis', { ...manifest, orientation: 'LPR' }, /orientation must be three letters, one per world axis/],
    ['a fractional enhancing minimum', { ...manifest, inference: { tta: false, largestComponent: false, minEnhancingVoxels: 2.5 } }, /minEnhancingVoxels must be a non-negative integer/],
    ['a negative smallest component', { ...manifest, inference: { tta: false, largestComponent: false, minComponentVoxels: { WT: -1 } } }, /inference\.minComponentVoxels must map the model's regions to non-negative integers/],
    ['a smallest component for a region the model lacks', { ...manifest, inference: { tta: false, largestComponent: false, minComponentVoxels: { ET: 10 } } }, /inference\.minComponentVoxels must map/],
  ])('rejects %s with a ModelBundleError', async (name, content, reason) => {
    const bundle = path.join(dir, name.replace(/ /g, '-'));
    await fs.mkdir(bundle, { recursive: true });
    await fs.writeFile(path.join(bundle, 'brats-model.json'), JSON.stringify(content));
    const error = await readModelManifest(bundle).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelBundleError);
    expect((error as Error).message).toMatch(reason);
  });

  it('names the missing manifest', async () => {
    await expect(readModelManifest(path.join(dir, 'nothing'))).rejects.toThrow(/brats-model\.json: no model manifest here/);
  });
});
