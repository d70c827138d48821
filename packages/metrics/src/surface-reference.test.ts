/**
 * Surface distances against an independent implementation: scipy's binary_erosion (6-connected cross, outside
 * the volume is background) and distance_transform_edt with sampling, run by the Debian python3.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { NO_SHARED_DATA, referencePython, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import {
  BRATS2017_LABELS,
  MSD_LABELS,
  regionMask,
  computeSurfaceDistances,
  computeSurfaceMetrics,
  evaluateCase,
  type GridShape,
  type GridSpacing,
} from './index.js';
import { maskWith, randomBlobs, seededRandom, shiftMask } from './test-helpers.js';

const python = referencePython(['scipy', 'numpy']);
const data = sharedDataDir();
const NO_PYTHON = 'skipped: /usr/bin/python3 with scipy and numpy is not available';

const SCIPY_SCRIPT = `
import json, sys
import numpy as np
from scipy.ndimage import binary_erosion, distance_transform_edt
prediction_path, reference_path = sys.argv[1], sys.argv[2]
shape, spacing = json.loads(sys.argv[3]), json.loads(sys.argv[4])
# Axes of length 1 are dropped, as @brats/metrics erodes a [i, j, 1] slice in 2D.
keep = [axis for axis in range(3) if shape[axis] > 1]
spacing = [spacing[axis] for axis in keep]
def load(p):
    return np.fromfile(p, dtype=np.uint8).reshape(shape, order='F').squeeze().astype(bool)
def edges(mask):
    return mask ^ binary_erosion(mask)
def directed(a, b):
    return distance_transform_edt(~b, sampling=spacing)[a]
ep, er = edges(load(prediction_path)), edges(load(reference_path))
d1, d2 = directed(ep, er), directed(er, ep)
print(json.dumps({
    'predictionToReference': np.sort(d1).tolist(),
    'referenceToPrediction': np.sort(d2).tolist(),
    'hd95': float(max(np.percentile(d1, 95), np.percentile(d2, 95))),
    'hausdorff': float(max(d1.max(), d2.max())),
    'assd': float(np.concatenate([d1, d2]).mean()),
}))
`;

interface ScipyResult {
  predictionToReference: number[];
  referenceToPrediction: number[];
  hd95: number;
  hausdorff: number;
  assd: number;
}

const scratch = mkdtempSync(path.join(tmpdir(), 'brats-metrics-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scipySurface(prediction: Uint8Array, reference: Uint8Array, shape: GridShape, spacing: GridSpacing): ScipyResult {
  const predictionPath = path.join(scratch, 'prediction.raw');
  const referencePath = path.join(scratch, 'reference.raw');
  writeFileSync(predictionPath, prediction);
  writeFileSync(referencePath, reference);
  return runPythonJson<ScipyResult>(python!, SCIPY_SCRIPT, [
    predictionPath,
    referencePath,
    JSON.stringify(shape),
    JSON.stringify(spacing),
  ]);
}

interface LabelFile {
  data: Uint8Array;
  shape: GridShape;
  spacing: GridSpacing;
}

/**
 * Reads a little-endian NIfTI-1 uint8 label map, the form of the shared samples. Written here because this
 * package depends on no reader, and a second, minimal reader is what an independent check wants anyway.
 */
function readLabelFile(file: string): LabelFile {
  const raw = readFileSync(file);
  const bytes = file.endsWith('.gz') ? gunzipSync(raw) : raw;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getInt32(0, true) !== 348) throw new Error(`${file}: not a little-endian NIfTI-1 file`);
  const datatype = view.getInt16(70, true);
  if (datatype !== 2) throw new Error(`${file}: datatype ${datatype}, expected 2 (uint8)`);
  const shape: GridShape = [view.getInt16(42, true), view.getInt16(44, true), view.getInt16(46, true)];
  const spacing: GridSpacing = [view.getFloat32(80, true), view.getFloat32(84, true), view.getFloat32(88, true)];
  const offset = Math.floor(view.getFloat32(108, true));
  const slope = view.getFloat32(112, true);
  const inter = view.getFloat32(116, true);
  if (slope !== 0 && (slope !== 1 || inter !== 0)) throw new Error(`${file}: scaled values (scl_slope ${slope})`);
  const count = shape[0] * shape[1] * shape[2];
  return { data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count).slice(), shape, spacing };
}

function sorted(values: Float64Array): number[] {
  return Array.from(values).sort((a, b) => a - b);
}

describe.skipIf(!python)(python ? 'surface distances against scipy' : `surface distances against scipy (${NO_PYTHON})`, () => {
  it.each([
    { seed: 11, shape: [40, 36, 30] as const, spacing: [1, 1, 1] as const },
    { seed: 12, shape: [40, 36, 30] as const, spacing: [0.7, 1.3, 2.5] as const },
    { seed: 13, shape: [25, 48, 20] as const, spacing: [2, 0.9, 1.1] as const },
    { seed: 14, shape: [32, 32, 1] as const, spacing: [0.5, 0.8, 3] as const },
  ])('random blobs, seed $seed, spacing $spacing', ({ seed, shape, spacing }) => {
    const random = seededRandom(seed);
    const prediction = randomBlobs(shape, 4, random);
    const reference = randomBlobs(shape, 3, random);
    const expected = scipySurface(prediction, reference, shape, spacing);
    const distances = computeSurfaceDistances(prediction, reference, { shape, spacing });
    const actualForward = sorted(distances.predictionToReference);
    const actualBackward = sorted(distances.referenceToPrediction);
    expect(actualForward.length).toBe(expected.predictionToReference.length);
    expect(actualBackward.length).toBe(expected.referenceToPrediction.length);
    actualForward.forEach((value, n) => expect(value).toBeCloseTo(expected.predictionToReference[n]!, 9));
    actualBackward.forEach((value, n) => expect(value).toBeCloseTo(expected.referenceToPrediction[n]!, 9));
    const metrics = computeSurfaceMetrics(prediction, reference, { shape, spacing });
    expect(Math.abs(metrics.hd95 - expected.hd95)).toBeLessThan(1e-3);
    expect(Math.abs(metrics.hausdorff - expected.hausdorff)).toBeLessThan(1e-3);
    expect(Math.abs(metrics.assd - expected.assd)).toBeLessThan(1e-3);
  });

  it('one-voxel-thick structures in a 3D volume (a plate against a line and a voxel)', () => {
    const shape = [20, 16, 12] as const;
    const spacing = [0.8, 1.1, 2.4] as const;
    const plate: [number, number, number][] = [];
    for (let j = 2; j <= 12; j++) for (let i = 3; i <= 15; i++) plate.push([i, j, 5]);
    const line: [number, number, number][] = [[1, 1, 1]];
    for (let i = 0; i < 20; i++) line.push([i, 8, 7]);
    const prediction = maskWith(shape, plate);
    const reference = maskWith(shape, line);
    const expected = scipySurface(prediction, reference, shape, spacing);
    const distances = computeSurfaceDistances(prediction, reference, { shape, spacing });
    expect(distances.predictionToReference.length).toBe(plate.length);
    expect(sorted(distances.referenceToPrediction)).toEqual(expected.referenceToPrediction.map((d) => expect.closeTo(d, 9)));
    const metrics = computeSurfaceMetrics(prediction, reference, { shape, spacing });
    expect(Math.abs(metrics.hd95 - expected.hd95)).toBeLessThan(1e-3);
    expect(Math.abs(metrics.assd - expected.assd)).toBeLessThan(1e-3);
  });

  it('blobs that fill the volume border (outside counts as background)', () => {
    const shape = [20, 18, 12] as const;
    const spacing = [1.2, 1, 2] as const;
    const reference = new Uint8Array(shape[0] * shape[1] * shape[2]).fill(1);
    const prediction = randomBlobs(shape, 6, seededRandom(21));
    const expected = scipySurface(prediction, reference, shape, spacing);
    const metrics = computeSurfaceMetrics(prediction, reference, { shape, spacing });
    expect(Math.abs(metrics.hd95 - expected.hd95)).toBeLessThan(1e-3);
    expect(Math.abs(metrics.hausdorff - expected.hausdorff)).toBeLessThan(1e-3);
    expect(Math.abs(metrics.assd - expected.assd)).toBeLessThan(1e-3);
  });

  describe.skipIf(!data)(data ? 'real BraTS labels' : `real BraTS labels (${NO_SHARED_DATA})`, () => {
    const caseDir = (caseId: string) => path.join(data!, 'brats2018-sample', caseId, `${caseId}_seg.nii.gz`);

    const volumes = new Map<string, LabelFile>();
    async function wholeTumour(caseId: string): Promise<{ mask: Uint8Array; shape: GridShape; spacing: GridSpacing }> {
      if (!volumes.has(caseId)) volumes.set(caseId, readLabelFile(caseDir(caseId)));
      const volume = volumes.get(caseId)!;
      return { mask: regionMask(volume.data, BRATS2017_LABELS, 'WT'), shape: volume.shape, spacing: volume.spacing };
    }

    it.each([
      { name: 'WT against itself shifted by (3, -2, 1), 1 mm', other: 'shift', spacing: undefined },
      { name: 'WT against itself shifted by (3, -2, 1), anisotropic', other: 'shift', spacing: [0.9, 1.1, 2.5] as const },
      { name: 'WT against the WT of another case', other: 'Brats18_TCIA02_606_1', spacing: undefined },
    ])('$name', async ({ other, spacing }) => {
      const a = await wholeTumour('Brats18_CBICA_AQN_1');
      const reference = a.mask;
      const prediction = other === 'shift' ? shiftMask(a.mask, a.shape, [3, -2, 1]) : (await wholeTumour(other)).mask;
      const grid = spacing ?? a.spacing;
      const expected = scipySurface(prediction, reference, a.shape, grid);
      const metrics = computeSurfaceMetrics(prediction, reference, { shape: a.shape, spacing: grid });
      expect(Math.abs(metrics.hd95 - expected.hd95)).toBeLessThan(1e-3);
      expect(Math.abs(metrics.hausdorff - expected.hausdorff)).toBeLessThan(1e-3);
      expect(Math.abs(metrics.assd - expected.assd)).toBeLessThan(1e-3);
    });
  });
});

describe.skipIf(!data)(data ? 'evaluateCase on real labels' : `evaluateCase on real labels (${NO_SHARED_DATA})`, () => {
  const caseDir = (caseId: string) => path.join(data!, 'brats2018-sample', caseId, `${caseId}_seg.nii.gz`);

  it('MSD labels of a case against its BraTS 2017 labels agree perfectly through their mappings', () => {
    const brats = readLabelFile(caseDir('Brats18_CBICA_AQN_1'));
    const msd = readLabelFile(path.join(data!, 'msd-task01-sample', 'labelsTr', 'BRATS_901.nii.gz'));
    expect(msd.shape).toEqual(brats.shape);
    const result = evaluateCase({
      prediction: msd.data,
      predictionMapping: MSD_LABELS,
      reference: brats.data,
      referenceMapping: BRATS2017_LABELS,
      shape: brats.shape,
      spacing: brats.spacing,
    });
    for (const region of ['WT', 'TC', 'ET'] as const) {
      const metrics = result.regions[region]!;
      expect(metrics.dice).toBe(1);
      expect(metrics.hd95).toBe(0);
      expect(metrics.volumeMl.reference).toBeGreaterThan(0);
      expect(metrics.volumeMl.prediction).toBe(metrics.volumeMl.reference);
    }
  });
});
