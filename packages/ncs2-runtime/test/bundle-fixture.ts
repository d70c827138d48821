/**
 * Test bundles around the pointwise.onnx fixture: NHWC [batch, 2, 3, 2] in, [batch, 2, 3, 1] out,
 * y = sigmoid(0.5 x0 - x1 + 0.25), so expected outputs are computed by hand in the tests.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolvePreprocessing, writeModelManifest, type BundleFiles, type ModelManifest } from '@brats/io';

export const FIXTURE_ONNX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'pointwise.onnx');

/** The fixture's probabilities for an NHWC input, computed independently of any engine. */
export function expectedPointwise(input: Float32Array): number[] {
  const output: number[] = [];
  for (let i = 0; i < input.length; i += 2) output.push(1 / (1 + Math.exp(-(0.5 * input[i]! - input[i + 1]! + 0.25))));
  return output;
}

/** Writes a bundle folder holding the fixture as model.onnx and a manifest that names `files`. */
export async function writeFixtureBundle(dir: string, files: BundleFiles = { onnx: 'model.onnx' }): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await fs.copyFile(FIXTURE_ONNX, path.join(dir, 'model.onnx'));
  const manifest: ModelManifest = {
    format: 'brats-model',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { architecture: 'unet2d', inputShape: [2, 3, 2], filters: 1, depth: 0, upsampling: 'bilinear', batchNorm: false, dropout: 0, outputChannels: 1, parameters: 3 },
    channels: ['FLAIR', 'T1w'],
    preprocessing: resolvePreprocessing(),
    regions: ['WT'],
    threshold: 0.5,
    inputLayout: 'NHWC',
    files,
  };
  await writeModelManifest(dir, manifest);
  return dir;
}
