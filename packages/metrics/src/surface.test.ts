import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import {
  computeAssd,
  computeHausdorff,
  computeHd95,
  computePercentile,
  computeSurfaceDistances,
  computeSurfaceMetrics,
  extractSurface,
  imageDiagonalMm,
  type EmptyConvention,
  type GridShape,
  type GridSpacing,
} from './index.js';
import { maskWhere, maskWith } from './test-helpers.js';

function cube(shape: GridShape, from: number, to: number): Uint8Array {
  const voxels: [number, number, number][] = [];
  for (let k = from; k <= to; k++) for (let j = from; j <= to; j++) for (let i = from; i <= to; i++) voxels.push([i, j, k]);
  return maskWith(shape, voxels);
}

function count(mask: Uint8Array): number {
  return mask.reduce((sum, value) => sum + value, 0);
}

describe('extractSurface', () => {
  it.each([
    { name: '3x3x3 cube inside 5x5x5', shape: [5, 5, 5] as const, mask: cube([5, 5, 5], 1, 3), surface: 26, interior: [2, 2, 2] },
    // Outside the volume is background, so a mask filling the volume keeps only its centre as interior.
    { name: '3x3x3 cube filling the volume', shape: [3, 3, 3] as const, mask: cube([3, 3, 3], 0, 2), surface: 26, interior: [1, 1, 1] },
    { name: '4x4x4 cube inside 6x6x6', shape: [6, 6, 6] as const, mask: cube([6, 6, 6], 1, 4), surface: 64 - 8, interior: [2, 2, 2] },
    { name: 'a one-voxel-thick plate in 3D', shape: [5, 5, 3] as const, mask: maskWhere([5, 5, 3], (_i, _j, k) => k === 1), surface: 25, interior: undefined },
    { name: 'a full 2x2x2 volume', shape: [2, 2, 2] as const, mask: cube([2, 2, 2], 0, 1), surface: 8, interior: undefined },
    // An axis of length 1 has no neighbours: a slice erodes in 2D (4-connected), a column in 1D.
    { name: 'a full 5x5x1 slice', shape: [5, 5, 1] as const, mask: new Uint8Array(25).fill(1), surface: 16, interior: [2, 2, 0] },
    { name: 'a full 1x1x5 column', shape: [1, 1, 5] as const, mask: new Uint8Array(5).fill(1), surface: 2, interior: [0, 0, 2] },
    { name: 'a 3x3 square inside a 5x5x1 slice', shape: [5, 5, 1] as const, mask: maskWhere([5, 5, 1], (i, j) => i >= 1 && i <= 3 && j >= 1 && j <= 3), surface: 8, interior: [2, 2, 0] },
  ])('$name', ({ shape, mask, surface, interior }) => {
    const result = extractSurface(mask, shape);
    expect(count(result)).toBe(surface);
    if (interior !== undefined) {
      const [i, j, k] = interior;
      expect(result[i! + shape[0] * (j! + shape[1] * k!)]).toBe(0);
    }
    for (let v = 0; v < mask.length; v++) if (result[v]) expect(mask[v]).toBe(1);
  });
});

describe('computePercentile (numpy linear interpolation)', () => {
  it.each([
    { values: [4, 1, 3, 2], percentile: 50, expected: 2.5 },
    { values: [4, 1, 3, 2], percentile: 95, expected: 3.85 },
    { values: [4, 1, 3, 2], percentile: 0, expected: 1 },
    { values: [4, 1, 3, 2], percentile: 100, expected: 4 },
    { values: [0, 1, 2, 3, 4], percentile: 95, expected: 3.8 },
    { values: [7], percentile: 95, expected: 7 },
  ])('p$percentile of $values = $expected', ({ values, percentile, expected }) => {
    expect(computePercentile(values, percentile)).toBeCloseTo(expected, 12);
  });

  it('is NaN for no values and rejects a percentile outside [0, 100]', () => {
    expect(computePercentile([], 50)).toBeNaN();
    expect(() => computePercentile([1], 101)).toThrow(ArgumentError);
  });
});

describe('surface metrics, hand-computed', () => {
  // Shapes with axes of length 1 erode in fewer dimensions: a row's surface is its two ends.
  it.each([
    {
      name: 'a 5-voxel row against its first voxel, 1 mm',
      shape: [8, 1, 1] as const,
      spacing: [1, 1, 1] as const,
      prediction: [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]] as const,
      reference: [[0, 0, 0]] as const,
      // Prediction surface {0, 4}: prediction → reference 0, 4 (p95 = 3.8); reference → prediction 0.
      hd95: 3.8,
      hausdorff: 4,
      assd: 4 / 3,
    },
    {
      name: 'the same row, 2 mm along i',
      shape: [8, 1, 1] as const,
      spacing: [2, 3, 5] as const,
      prediction: [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]] as const,
      reference: [[0, 0, 0]] as const,
      hd95: 7.6,
      hausdorff: 8,
      assd: 8 / 3,
    },
    {
      name: 'two voxels against one, 1.5 mm along i',
      shape: [3, 1, 1] as const,
      spacing: [1.5, 1, 1] as const,
      prediction: [[0, 0, 0], [2, 0, 0]] as const,
      reference: [[0, 0, 0]] as const,
      // prediction → reference: 0, 3 (p95 = 2.85); reference → prediction: 0.
      hd95: 2.85,
      hausdorff: 3,
      assd: 1,
    },
    {
      name: 'two single voxels, anisotropic 3D',
      shape: [3, 3, 3] as const,
      spacing: [0.5, 2, 3] as const,
      prediction: [[0, 0, 0]] as const,
      reference: [[2, 1, 2]] as const,
      hd95: Math.sqrt(1 + 4 + 36),
      hausdorff: Math.sqrt(1 + 4 + 36),
      assd: Math.sqrt(1 + 4 + 36),
    },
    {
      name: 'a voxel against a 3x3x3 cube centred on it',
      shape: [5, 5, 5] as const,
      spacing: [1, 2, 3] as const,
      prediction: [[2, 2, 2]] as const,
      reference: 'cube' as const,
      // Cube surface to the centre: 6 face centres (1, 2, 3 mm, twice each), 12 edges, 8 corners.
      hd95: undefined,
      hausdorff: Math.sqrt(1 + 4 + 9),
      assd: undefined,
    },
  ])('$name', ({ shape, spacing, prediction, reference, hd95, hausdorff, assd }) => {
    const predicted = maskWith(shape, prediction);
    const truth = reference === 'cube' ? cube(shape, 1, 3) : maskWith(shape, reference);
    const options = { shape: shape as GridShape, spacing: spacing as GridSpacing };
    const metrics = computeSurfaceMetrics(predicted, truth, options);
    expect(metrics.hausdorff).toBeCloseTo(hausdorff, 12);
    expect(computeHausdorff(predicted, truth, options)).toBeCloseTo(hausdorff, 12);
    if (hd95 !== undefined) {
      expect(metrics.hd95).toBeCloseTo(hd95, 12);
      expect(computeHd95(predicted, truth, options)).toBeCloseTo(hd95, 12);
    }
    if (assd !== undefined) {
      expect(metrics.assd).toBeCloseTo(assd, 12);
      expect(computeAssd(predicted, truth, options)).toBeCloseTo(assd, 12);
    }
  });

  it('reads a cube surface against its centre voxel with spacing', () => {
    const shape = [5, 5, 5] as const;
    const spacing = [1, 2, 3] as const;
    const distances = computeSurfaceDistances(maskWith(shape, [[2, 2, 2]]), cube(shape, 1, 3), { shape, spacing });
    expect(Array.from(distances.predictionToReference)).toEqual([1]);
    const faces = [1, 1, 2, 2, 3, 3];
    const edges = [
      ...Array<number>(4).fill(Math.sqrt(1 + 4)),
      ...Array<number>(4).fill(Math.sqrt(1 + 9)),
      ...Array<number>(4).fill(Math.sqrt(4 + 9)),
    ];
    const corners = Array<number>(8).fill(Math.sqrt(14));
    const expected = [...faces, ...edges, ...corners].sort((a, b) => a - b);
    const actual = Array.from(distances.referenceToPrediction).sort((a, b) => a - b);
    expect(actual).toEqual(expected.map((value) => expect.closeTo(value, 12)));
    // 26 values: rank 0.95·25 = 23.75 falls among the corners.
    expect(computeHd95(maskWith(shape, [[2, 2, 2]]), cube(shape, 1, 3), { shape, spacing })).toBeCloseTo(Math.sqrt(14), 12);
    const mean = (1 + expected.reduce((sum, value) => sum + value, 0)) / 27;
    expect(computeAssd(maskWith(shape, [[2, 2, 2]]), cube(shape, 1, 3), { shape, spacing })).toBeCloseTo(mean, 12);
  });

  it('takes a percentile other than 95', () => {
    const shape = [8, 1, 1] as const;
    const prediction = maskWith(shape, [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [4, 0, 0]]);
    const reference = maskWith(shape, [[0, 0, 0]]);
    // Directed sets [0, 4] and [0]: medians 2 and 0.
    expect(computeHausdorff(prediction, reference, { shape, percentile: 50 })).toBeCloseTo(2, 12);
  });

  it('is 0 for identical masks and thresholds probability maps', () => {
    const shape = [5, 5, 5] as const;
    const mask = cube(shape, 1, 3);
    expect(computeSurfaceMetrics(mask, mask, { shape })).toEqual({ hd95: 0, hausdorff: 0, assd: 0 });
    const probabilities = Float32Array.from(mask, (value) => (value ? 0.8 : 0.2));
    expect(computeSurfaceMetrics(probabilities, mask, { shape })).toEqual({ hd95: 0, hausdorff: 0, assd: 0 });
    expect(computeSurfaceMetrics(probabilities, mask, { shape, threshold: 0.9 })).toEqual({
      hd95: Number.NaN,
      hausdorff: Number.NaN,
      assd: Number.NaN,
    });
  });
});

describe('empty masks', () => {
  const shape = [4, 3, 2] as const;
  const spacing = [1, 2, 3] as const;
  const diagonal = Math.sqrt(16 + 36 + 36);
  const empty = new Uint8Array(24);
  const some = maskWith(shape, [[1, 1, 0], [2, 1, 1]]);

  it('the image diagonal is √Σ(n·s)² (373.13 mm for BraTS)', () => {
    expect(imageDiagonalMm(shape, spacing)).toBeCloseTo(diagonal, 12);
    expect(imageDiagonalMm([240, 240, 155], [1, 1, 1])).toBeCloseTo(373.1287, 4);
  });

  it.each([
    { name: 'both empty', convention: 'monai', prediction: empty, reference: empty, expected: Number.NaN },
    { name: 'empty reference', convention: 'monai', prediction: some, reference: empty, expected: Number.NaN },
    { name: 'empty prediction', convention: 'monai', prediction: empty, reference: some, expected: Number.NaN },
    { name: 'both empty', convention: 'brats', prediction: empty, reference: empty, expected: 0 },
    { name: 'empty reference', convention: 'brats', prediction: some, reference: empty, expected: diagonal },
    { name: 'empty prediction', convention: 'brats', prediction: empty, reference: some, expected: diagonal },
  ])('$name under $convention', ({ convention, prediction, reference, expected }) => {
    const metrics = computeSurfaceMetrics(prediction, reference, { shape, spacing, convention: convention as EmptyConvention });
    for (const value of [metrics.hd95, metrics.hausdorff, metrics.assd]) {
      if (Number.isNaN(expected)) expect(value).toBeNaN();
      else expect(value).toBeCloseTo(expected, 12);
    }
  });

  it('directed sets toward an empty mask hold Infinity', () => {
    const distances = computeSurfaceDistances(some, empty, { shape, spacing });
    expect(Array.from(distances.predictionToReference)).toEqual([Infinity, Infinity]);
    expect(distances.referenceToPrediction.length).toBe(0);
    expect(distances.referenceEmpty).toBe(true);
    expect(distances.predictionEmpty).toBe(false);
  });
});

describe('argument validation', () => {
  const shape = [2, 2, 2] as const;
  const mask = new Uint8Array(8);

  it('rejects a length that does not match the shape', () => {
    try {
      computeHd95(mask, new Uint8Array(7), { shape });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ShapeMismatchError);
      expect((error as ShapeMismatchError).message).toMatch(/^computeHd95\(\): argument 'reference' length/);
      expect((error as ShapeMismatchError).actual).toEqual([7]);
    }
  });

  it.each([
    { name: 'a missing options object', call: () => computeAssd(mask, mask, undefined as never), argument: 'options' },
    { name: 'a 2D shape', call: () => computeAssd(mask, mask, { shape: [4, 2] as never }), argument: 'options.shape' },
    { name: 'a zero spacing', call: () => computeAssd(mask, mask, { shape, spacing: [1, 0, 1] }), argument: 'options.spacing' },
    { name: 'a NaN spacing', call: () => computeAssd(mask, mask, { shape, spacing: [1, Number.NaN, 1] }), argument: 'options.spacing' },
    { name: 'an unknown convention', call: () => computeAssd(mask, mask, { shape, convention: 'x' as never }), argument: 'options.convention' },
    { name: 'a bad percentile', call: () => computeHausdorff(mask, mask, { shape, percentile: -5 }), argument: 'options.percentile' },
  ])('rejects $name', ({ call, argument }) => {
    try {
      call();
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });
});
