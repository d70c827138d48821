import type { Affine } from '@brats/io';
import { describe, expect, it } from 'vitest';
import { resampleLinear, resampledAffine, resampledShape } from './resample.js';

describe('resampling between grids', () => {
  it.each([
    [[240, 240, 155], [1, 1, 1], [1.5, 1.5, 1.5], [160, 160, 103]],
    [[240, 240, 155], [1, 1, 1], [1, 1, 3], [240, 240, 52]],
    [[512, 512, 30], [0.5, 0.5, 5], [1, 1, 1], [256, 256, 150]],
  ] as const)('a grid of %j at %j mm becomes %j at %j mm', (shape, spacing, target, expected) => {
    expect(resampledShape(shape, spacing, target)).toEqual(expected);
  });

  it('reproduces a linear ramp exactly inside the field of view and holds the edge values outside', () => {
    // f(i) = 3i + 1 on 10 voxels, upsampled to 20: voxel n sits at i = (n + 0.5) / 2 - 0.5.
    const ramp = Float32Array.from({ length: 10 }, (_, i) => 3 * i + 1);
    const up = resampleLinear(ramp, [10, 1, 1], [20, 1, 1]);
    up.forEach((value, n) => {
      const i = Math.min(Math.max((n + 0.5) / 2 - 0.5, 0), 9);
      expect(value).toBeCloseTo(3 * i + 1, 5);
    });
    expect(up[0]).toBe(1);
    expect(up[19]).toBe(28);
  });

  it('is separable and exact for a trilinear function along every axis', () => {
    const from = [6, 5, 4] as const;
    const to = [9, 7, 8] as const;
    const f = (i: number, j: number, k: number) => 1 + 2 * i - j + 0.5 * k;
    const values = new Float32Array(6 * 5 * 4);
    for (let k = 0; k < 4; k++) for (let j = 0; j < 5; j++) for (let i = 0; i < 6; i++) values[i + 6 * (j + 5 * k)] = f(i, j, k);
    const out = resampleLinear(values, from, to);
    const at = (n: number, size: number, target: number) => Math.min(Math.max((n + 0.5) * (size / target) - 0.5, 0), size - 1);
    for (let k = 0; k < 8; k++) for (let j = 0; j < 7; j++) for (let i = 0; i < 9; i++) {
      expect(out[i + 9 * (j + 7 * k)]).toBeCloseTo(f(at(i, 6, 9), at(j, 5, 7), at(k, 4, 8)), 4);
    }
  });

  it('places each new voxel centre where the old grid has it in world coordinates', () => {
    const affine: Affine = [
      [0, -1.5, 0, 100],
      [2, 0, 0, -50],
      [0, 0, 3, 10],
      [0, 0, 0, 1],
    ];
    const from = [40, 30, 20] as const;
    const to = resampledShape(from, [2, 1.5, 3], [1, 1, 1]);
    expect(to).toEqual([80, 45, 60]);
    const next = resampledAffine(affine, from, to);
    const world = (a: Affine, x: readonly number[]) => [0, 1, 2].map((r) => a[r]![0]! * x[0]! + a[r]![1]! * x[1]! + a[r]![2]! * x[2]! + a[r]![3]!);
    for (const n of [[0, 0, 0], [79, 44, 59], [13, 7, 31]]) {
      const old = n.map((value, d) => (value + 0.5) * (from[d]! / to[d]!) - 0.5);
      world(next, n).forEach((value, r) => expect(value).toBeCloseTo(world(affine, old)[r]!, 9));
    }
    // The new columns are the old ones scaled to 1 mm voxels.
    expect([next[1]![0], next[0]![1], next[2]![2]]).toEqual([1, -1, 1]);
  });
});
