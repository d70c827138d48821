import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { describe, expect, it } from 'vitest';
import { ArgumentError, DatasetError } from './errors.js';
import { DEFAULT_MODEL_ORIENTATION, axisEndDirection, describeOrientation, isOrientation, orientationOf, planReorientation, reorientCase } from './orientation.js';
import { BRATS2017_LABELS } from './regions.js';
import { createVolume, type Affine } from './volume.js';
import type { CanonicalCase } from './layouts/case.js';

const SHAPE = [2, 3, 4] as const;
const RAS: Affine = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

/** World position of voxel (i, j, k). */
function world(affine: Affine, voxel: readonly number[]): number[] {
  return [0, 1, 2].map((r) => affine[r]![0]! * voxel[0]! + affine[r]![1]! * voxel[1]! + affine[r]![2]! * voxel[2]! + affine[r]![3]!);
}

/** An affine whose voxel axes run along the given world directions (unit vectors scaled by `spacing`), origin `origin`. */
function affineOf(columns: readonly (readonly number[])[], spacing: readonly number[], origin: readonly number[]): Affine {
  const row = (r: number): [number, number, number, number] => [columns[0]![r]! * spacing[0]!, columns[1]![r]! * spacing[1]!, columns[2]![r]! * spacing[2]!, origin[r]!];
  return [row(0), row(1), row(2), [0, 0, 0, 1]];
}

describe('orientationOf', () => {
  it('reads the letters of BraTS, RAS and a sagittal grid', () => {
    expect(orientationOf([[-1, 0, 0, 0], [0, -1, 0, 239], [0, 0, 1, 0], [0, 0, 0, 1]])).toBe('LPS');
    expect(orientationOf(RAS)).toBe('RAS');
    // i toward posterior, j inferior, k toward the right: a sagittal acquisition.
    expect(orientationOf(affineOf([[0, -1, 0], [0, 0, -1], [1, 0, 0]], [1, 1, 1], [0, 0, 0]))).toBe('PIR');
  });

  it('gives an oblique grid the nearest letters, and refuses an axis without direction', () => {
    const c = Math.cos((20 * Math.PI) / 180);
    const s = Math.sin((20 * Math.PI) / 180);
    // LPS turned 20 degrees about z: still nearest to LPS.
    expect(orientationOf(affineOf([[-c, -s, 0], [s, -c, 0], [0, 0, 1]], [1, 1, 1], [0, 0, 0]))).toBe('LPS');
    expect(() => orientationOf(affineOf([[1, 0, 0], [0, 0, 0], [0, 0, 1]], [1, 1, 1], [0, 0, 0]))).toThrow(ArgumentError);
  });

  it('checks orientation letters and says them in words', () => {
    expect(['LPS', 'RAS', 'PIR', 'SAL'].every(isOrientation)).toBe(true);
    expect(['LPR', 'LP', 'lps', 'XYZ', 3].some(isOrientation)).toBe(false);
    expect(describeOrientation('LPS')).toBe('LPS (voxel axes i, j, k toward left, posterior, superior)');
    expect(describeOrientation('PIR')).toBe('PIR (voxel axes i, j, k toward posterior, inferior, right)');
    expect(DEFAULT_MODEL_ORIENTATION).toBe('LPS');
  });

  it('names the direction each end of a voxel axis faces', () => {
    const ends = (codes: string): string[] => ([0, 1, 2] as const).flatMap((axis) => [axisEndDirection(codes, axis, 'low'), axisEndDirection(codes, axis, 'high')]);
    expect(ends('LPS')).toEqual(['right', 'left', 'anterior', 'posterior', 'inferior', 'superior']);
    expect(ends('PIR')).toEqual(['anterior', 'posterior', 'superior', 'inferior', 'left', 'right']);
    expect(() => axisEndDirection('LPR', 0, 'low')).toThrow(ArgumentError);
  });
});

describe('planReorientation', () => {
  it('turns a RAS grid to LPS by reversing i and j, voxel for voxel, each voxel at the same world position', () => {
    const data = Float32Array.from({ length: 24 }, (_, v) => v);
    const plan = planReorientation(SHAPE, RAS, 'LPS');
    expect(plan.from).toBe('RAS');
    expect(plan.identity).toBe(false);
    expect(plan.axes).toEqual([
      { source: 0, reversed: true },
      { source: 1, reversed: true },
      { source: 2, reversed: false },
    ]);
    expect(plan.shape).toEqual([2, 3, 4]);
    // By hand: i' = 1 - i, j' = 2 - j; the origin moves to the far corner (1, 2, 0) mm.
    expect(plan.affine).toEqual([
      [-1, 0, 0, 1],
      [0, -1, 0, 2],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
    const turned = plan.toTarget(data);
    for (let k = 0; k < 4; k++) {
      for (let j = 0; j < 3; j++) {
        for (let i = 0; i < 2; i++) {
          expect(turned[i + 2 * (j + 3 * k)]).toBe(data[1 - i + 2 * (2 - j + 3 * k)]);
          expect(world(plan.affine, [i, j, k])).toEqual(world(RAS, [1 - i, 2 - j, k]));
        }
      }
    }
    expect(Array.from(plan.toSource(turned))).toEqual(Array.from(data));
    expect(orientationOf(plan.affine)).toBe('LPS');
  });

  it('turns a sagittal grid to LPS with its axes permuted, and keeps the same array when nothing turns', () => {
    const spacing = [0.9, 1.2, 3];
    const affine = affineOf([[0, -1, 0], [0, 0, -1], [1, 0, 0]], spacing, [10, -20, 30]);
    const plan = planReorientation(SHAPE, affine, 'LPS');
    expect(plan.from).toBe('PIR');
    // L is k reversed (k runs right), P is i, S is j reversed (j runs inferior).
    expect(plan.axes).toEqual([
      { source: 2, reversed: true },
      { source: 0, reversed: false },
      { source: 1, reversed: true },
    ]);
    expect(plan.shape).toEqual([4, 2, 3]);
    expect(plan.spacing).toEqual([3, 0.9, 1.2]);
    const data = Float32Array.from({ length: 24 }, (_, v) => v);
    const turned = plan.toTarget(data);
    for (let c = 0; c < 3; c++) {
      for (let b = 0; b < 2; b++) {
        for (let a = 0; a < 4; a++) {
          const source = [b, 2 - c, 3 - a];
          expect(turned[a + 4 * (b + 2 * c)]).toBe(data[source[0]! + 2 * (source[1]! + 3 * source[2]!)]);
          world(plan.affine, [a, b, c]).forEach((value, r) => expect(value).toBeCloseTo(world(affine, source)[r]!, 9));
        }
      }
    }
    expect(Array.from(plan.toSource(turned))).toEqual(Array.from(data));
    const lps = planReorientation(SHAPE, plan.affine, 'LPS');
    expect(lps.identity).toBe(true);
    expect(lps.toTarget(turned)).toBe(turned);
    expect(() => planReorientation(SHAPE, RAS, 'LPX')).toThrow(ArgumentError);
    expect(() => plan.toTarget(new Float32Array(5))).toThrow(ArgumentError);
  });

  it('turns a case\'s channels and label map, and leaves an LPS case as it is', () => {
    const affine = RAS;
    const volume = (offset: number) => createVolume('float32', Float32Array.from({ length: 24 }, (_, v) => v + offset), SHAPE, { affine });
    const labels = createVolume('uint8', Uint8Array.from({ length: 24 }, (_, v) => v % 3), SHAPE, { affine });
    const caseData: CanonicalCase = {
      id: 'ras',
      layout: 'brats2017',
      channels: [volume(0), volume(100), volume(200), volume(300)],
      labels,
      labelMapping: BRATS2017_LABELS,
      ref: { id: 'ras', layout: 'brats2017', images: [] },
    };
    const { case: turned, plan } = reorientCase(caseData, 'LPS');
    // The first voxel of the LPS grid is the scan's (1, 2, 0): index 1 + 2 * 2 = 5.
    expect(turned.channels.map((channel) => channel.data[0])).toEqual([5, 105, 205, 305]);
    expect(turned.labels!.data[0]).toBe(labels.data[1 + 2 * 2]);
    expect(turned.channels[0].affine).toEqual(plan.affine);
    expect(turned.labels!.affine).toEqual(plan.affine);
    expect(caseData.channels[0].data[0]).toBe(0);
    const back = reorientCase(turned, 'LPS');
    expect(back.case).toBe(turned);
    // A grid whose j axis has no direction has no orientation: the case's file is named.
    const flat: Affine = [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
    const broken: CanonicalCase = { ...caseData, ref: { id: 'ras', layout: 'brats2017', images: ['/data/ras/ras_flair.nii.gz'] }, channels: caseData.channels.map((channel) => ({ ...channel, affine: flat })) as unknown as CanonicalCase['channels'] };
    const error = (() => {
      try {
        reorientCase(broken, 'LPS');
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toBe("case ras: /data/ras/ras_flair.nii.gz: its voxel-to-world affine has no orientation (voxel axis j has no direction (column 1 is [0, 0, 0])): which way its slices run is unknown");
  });
});

const python = referencePython(['nibabel', 'numpy']);

describe.skipIf(!python)(`reorientation against nibabel${python ? '' : ' (skipped: Debian python3-nibabel is not installed)'}`, () => {
  // nibabel's own reorientation (io_orientation, ornt_transform, as_reoriented) of the same grid and values.
  const script = `
import sys, json, numpy as np, nibabel as nib
job = json.loads(sys.argv[1])
data = np.array(job['data'], dtype=np.float32).reshape(job['shape'], order='F')
img = nib.Nifti1Image(data, np.array(job['affine']))
codes = ''.join(nib.aff2axcodes(img.affine))
turned = img.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(img.affine), nib.orientations.axcodes2ornt(tuple(job['to']))))
out = np.asarray(turned.dataobj)
print(json.dumps({'codes': codes, 'shape': list(out.shape), 'affine': turned.affine.tolist(), 'data': out.flatten(order='F').tolist()}))
`;
  const c = Math.cos((35 * Math.PI) / 180);
  const s = Math.sin((35 * Math.PI) / 180);
  it.each([
    ['RAS to LPS', RAS, 'LPS'],
    ['LPS to RAS', affineOf([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], [1, 1, 1], [0, 239, 0]), 'RAS'],
    ['sagittal PIR, anisotropic, to LPS', affineOf([[0, -1, 0], [0, 0, -1], [1, 0, 0]], [0.9, 1.2, 3], [10, -20, 30]), 'LPS'],
    ['coronal LSA to LPS', affineOf([[-1, 0, 0], [0, 0, 1], [0, 1, 0]], [1, 2, 1], [5, 5, 5]), 'LPS'],
    ['oblique (35 degrees about x) to LPS', affineOf([[-1, 0, 0], [0, -c, s], [0, s, c]], [1, 1, 1], [0, 0, 0]), 'LPS'],
    ['LPS to PIR', affineOf([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], [1, 1, 2], [0, 0, 0]), 'PIR'],
  ] as const)('%s: the same letters, values and affine as nibabel', (_name, affine, to) => {
    const data = Float32Array.from({ length: 24 }, (_, v) => v * 1.5 - 7);
    const expected = runPythonJson<{ codes: string; shape: number[]; affine: number[][]; data: number[] }>(python!, script, [
      JSON.stringify({ data: Array.from(data), shape: SHAPE, affine, to: [...to] }),
    ]);
    const plan = planReorientation(SHAPE, affine, to);
    expect(plan.from).toBe(expected.codes);
    expect(plan.shape).toEqual(expected.shape);
    expect(Array.from(plan.toTarget(data))).toEqual(expected.data);
    plan.affine.forEach((row, r) => row.forEach((value, col) => expect(value).toBeCloseTo(expected.affine[r]![col]!, 9)));
  });
});
