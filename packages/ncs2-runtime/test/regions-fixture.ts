/**
 * A regions model with a known answer, for the tests of every package that shows or writes regions: the hand-made
 * pointwise ONNX model of fixtures/regions-pointwise.onnx (see make-fixtures.py) as a bundle, and a case of nested
 * bright boxes that it segments into three nested regions exactly.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVolume, resolvePreprocessing, writeModelManifest, writeNifti } from '@brats/io';

export const REGIONS_POINTWISE_ONNX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'regions-pointwise.onnx');

/** Voxels of each region the nested-box case gives under {@link writeRegionsPointwiseBundle}: WT ⊃ TC ⊃ ET. */
export const NESTED_BOX_VOXELS = { WT: 24 * 24 * 12, TC: 16 * 16 * 8, ET: 8 * 8 * 4 } as const;

/** A regions bundle (WT, TC, ET; crop 32 x 32 x 16) around the pointwise ONNX model, for the runtime engines. */
export async function writeRegionsPointwiseBundle(bundle: string): Promise<void> {
  await fs.mkdir(bundle, { recursive: true });
  await fs.copyFile(REGIONS_POINTWISE_ONNX, path.join(bundle, 'model.onnx'));
  await writeModelManifest(bundle, {
    format: 'brats-model',
    formatVersion: 1,
    createdAt: '2026-12-02T00:00:00.000Z',
    model: { architecture: 'unet2d', inputShape: [32, 32, 4], filters: 1, depth: 0, upsampling: 'bilinear', batchNorm: false, dropout: 0, outputChannels: 3, parameters: 15 },
    channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
    preprocessing: resolvePreprocessing({ crop: [32, 32, 16], target: 'regions' }),
    regions: ['WT', 'TC', 'ET'],
    threshold: 0.5,
    inputLayout: 'NHWC',
    files: { onnx: 'model.onnx' },
  });
}

/** The four files of a nested-box case, by role. */
export interface NestedBoxFiles {
  flair: string;
  t1w: string;
  t1gd: string;
  t2w: string;
}

/**
 * The four files of a case (48 x 48 x 32, 1 mm, LPS) with nested bright boxes: FLAIR (and T2w) in i, j 12..35, k 10..21;
 * T1w in i, j 16..31, k 12..19; T1gd in i, j 20..27, k 14..17, all inside the bundle's crop window. Named as BraTS
 * 2017-2021 names them (`Boxes_001_flair.nii.gz`, …) or, with `naming: 'brats2023'`, as BraTS 2023+ does
 * (`Boxes-001-t2f.nii.gz`, …), in a case folder under `dir`.
 */
export async function writeNestedBoxCase(dir: string, naming: 'brats2017' | 'brats2023' = 'brats2017'): Promise<NestedBoxFiles> {
  const shape: [number, number, number] = [48, 48, 32];
  const box = (from: number, to: number, kFrom: number, kTo: number): Int16Array => {
    const data = new Int16Array(shape[0] * shape[1] * shape[2]);
    for (let k = kFrom; k <= kTo; k++) for (let j = from; j <= to; j++) for (let i = from; i <= to; i++) data[i + shape[0] * (j + shape[1] * k)] = 10;
    return data;
  };
  const id = naming === 'brats2017' ? 'Boxes_001' : 'Boxes-001';
  const folder = path.join(dir, id);
  await fs.mkdir(folder, { recursive: true });
  const suffixes = naming === 'brats2017' ? { flair: '_flair', t1w: '_t1', t1gd: '_t1ce', t2w: '_t2' } : { flair: '-t2f', t1w: '-t1n', t1gd: '-t1c', t2w: '-t2w' };
  const images = { flair: box(12, 35, 10, 21), t1w: box(16, 31, 12, 19), t1gd: box(20, 27, 14, 17), t2w: box(12, 35, 10, 21) };
  const files = {} as NestedBoxFiles;
  for (const role of ['flair', 't1w', 't1gd', 't2w'] as const) {
    files[role] = path.join(folder, `${id}${suffixes[role]}.nii.gz`);
    // LPS, as BraTS stores its scans: the model's own orientation, nothing to turn.
    await writeNifti(files[role], createVolume('int16', images[role], shape, { affine: [[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] }));
  }
  return files;
}
