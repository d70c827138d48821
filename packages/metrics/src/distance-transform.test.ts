import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import { computeSquaredDistanceTransform, type GridShape, type GridSpacing } from './index.js';
import { maskWith, seededRandom } from './test-helpers.js';

/** Brute force: the minimum over every feature voxel, an independent check of the separable algorithm. */
function bruteForce(features: Uint8Array, shape: GridShape, spacing: GridSpacing): Float64Array {
  const [ni, nj] = shape;
  const points: [number, number, number][] = [];
  for (let v = 0; v < features.length; v++) {
    if (features[v]) points.push([v % ni, Math.floor(v / ni) % nj, Math.floor(v / (ni * nj))]);
  }
  const out = new Float64Array(features.length).fill(Number.POSITIVE_INFINITY);
  for (let v = 0; v < features.length; v++) {
    const i = v % ni;
    const j = Math.floor(v / ni) % nj;
    const k = Math.floor(v / (ni * nj));
    for (const [a, b, c] of points) {
      const d = ((i - a) * spacing[0]) ** 2 + ((j - b) * spacing[1]) ** 2 + ((k - c) * spacing[2]) ** 2;
      if (d < out[v]!) out[v] = d;
    }
  }
  return out;
}

describe('computeSquaredDistanceTransform', () => {
  it.each([
    {
      name: 'a row, 2 mm along i',
      shape: [5, 1, 1] as const,
      spacing: [2, 1, 1] as const,
      features: [[1, 0, 0]] as const,
      expected: [4, 0, 4, 16, 36],
    },
    {
      name: 'a 3x3 plane, 2 mm along j',
      shape: [3, 3, 1] as const,
      spacing: [1, 2, 1] as const,
      features: [[1, 1, 0]] as const,
      expected: [5, 4, 5, 1, 0, 1, 5, 4, 5],
    },
    {
      name: 'a column along k, 3 mm',
      shape: [1, 1, 4] as const,
      spacing: [1, 1, 3] as const,
      features: [[0, 0, 0], [0, 0, 3]] as const,
      expected: [0, 9, 9, 0],
    },
    {
      name: 'two features in a 2x2x2 cube, anisotropic',
      shape: [2, 2, 2] as const,
      spacing: [0.5, 1.5, 2] as const,
      features: [[0, 0, 0], [1, 1, 1]] as const,
      // (i,j,k) order i fastest: 000 100 010 110 001 101 011 111
      // 110: min(0.25 + 2.25, 4); 001: min(4, 0.25 + 2.25); 101: min(0.25 + 4, 2.25)
      expected: [0, 0.25, 2.25, 2.5, 2.5, 2.25, 0.25, 0],
    },
  ])('$name', ({ shape, spacing, features, expected }) => {
    const result = computeSquaredDistanceTransform(maskWith(shape, features), shape, spacing);
    expect(Array.from(result)).toEqual(expected.map((value) => expect.closeTo(value, 12)));
  });

  it('is Infinity everywhere without features', () => {
    const result = computeSquaredDistanceTransform(new Uint8Array(12), [2, 3, 2], [1, 1, 1]);
    expect(Array.from(result).every((value) => value === Number.POSITIVE_INFINITY)).toBe(true);
  });

  it.each([
    { seed: 1, shape: [9, 7, 6] as const, spacing: [1, 1, 1] as const, density: 0.02 },
    { seed: 2, shape: [8, 10, 5] as const, spacing: [0.7, 1.3, 2.9] as const, density: 0.05 },
    { seed: 3, shape: [12, 4, 9] as const, spacing: [3, 0.5, 1] as const, density: 0.005 },
  ])('matches brute force on random features (seed $seed, spacing $spacing)', ({ seed, shape, spacing, density }) => {
    const random = seededRandom(seed);
    const features = new Uint8Array(shape[0] * shape[1] * shape[2]);
    for (let v = 0; v < features.length; v++) features[v] = random() < density ? 1 : 0;
    features[Math.floor(random() * features.length)] = 1;
    const expected = bruteForce(features, shape, spacing);
    const actual = computeSquaredDistanceTransform(features, shape, spacing);
    for (let v = 0; v < features.length; v++) expect(actual[v]).toBeCloseTo(expected[v]!, 9);
  });

  it('validates its arguments', () => {
    expect(() => computeSquaredDistanceTransform(new Uint8Array(6), [2, 3, 2])).toThrow(ShapeMismatchError);
    expect(() => computeSquaredDistanceTransform(new Uint8Array(6), [2, 3] as unknown as GridShape)).toThrow(ArgumentError);
    expect(() => computeSquaredDistanceTransform(new Uint8Array(6), [2, 3, 1], [1, 0, 1])).toThrow(
      /computeSquaredDistanceTransform\(\): argument 'spacing'/,
    );
  });
});
