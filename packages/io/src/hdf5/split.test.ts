import { describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError } from '../errors.js';
import { assignNamedSplits, assignSplits, createNumpyUniform, resolveSplitFractions } from './split.js';

describe('createNumpyUniform', () => {
  // Values printed once by numpy: np.random.seed(s); np.random.random(3).
  it.each([
    [816, [0.26156534544993904, 0.1846120507871184, 0.8658447663759532]],
    [0, [0.5488135039273248, 0.7151893663724195, 0.6027633760716439]],
  ])('seed %i reproduces numpy', (seed, expected) => {
    const uniform = createNumpyUniform(seed);
    expect([uniform(), uniform(), uniform()]).toEqual(expected);
  });

  it.each([-1, 1.5, 2 ** 32])('rejects seed %d', (seed) => {
    expect(() => createNumpyUniform(seed)).toThrow(ArgumentError);
  });
});

describe('assignSplits', () => {
  it('matches the seed on 8 cases with seed 816', () => {
    // First draws 0.262 0.185 0.866 0.316 0.966 0.831 0.293 0.040: cases 2 and 4 leave training;
    // their second draws 0.431 and 0.135 are both < 0.5, so both go to testing.
    expect(assignSplits(8, { seed: 816 })).toEqual(['train', 'train', 'testing', 'train', 'testing', 'train', 'train', 'train']);
  });

  it('sends everything to training with fraction 1 and nothing with fraction 0', () => {
    expect(assignSplits(5, { fractions: 1 })).toEqual(Array(5).fill('train'));
    expect(assignSplits(5, { fractions: { train: 0, validation: 1, testing: 0 } })).toEqual(Array(5).fill('validation'));
    expect(assignSplits(5, { fractions: { train: 0, validation: 0, testing: 1 } })).toEqual(Array(5).fill('testing'));
  });

  it('is deterministic and changes with the seed', () => {
    expect(assignSplits(200, { seed: 7 })).toEqual(assignSplits(200, { seed: 7 }));
    expect(assignSplits(200, { seed: 7 })).not.toEqual(assignSplits(200, { seed: 8 }));
  });

  it.each([
    [{ train: 0.5, validation: 0.2, testing: 0.2 }],
    [{ train: -0.1, validation: 0.6, testing: 0.5 }],
    [1.5],
  ])('rejects fractions %j', (fractions) => {
    expect(() => resolveSplitFractions(fractions)).toThrow(ArgumentError);
  });

  it('halves the remainder for a single training fraction', () => {
    const fractions = resolveSplitFractions(0.7);
    expect(fractions.train).toBe(0.7);
    expect(fractions.validation).toBeCloseTo(0.15, 12);
    expect(fractions.testing).toBeCloseTo(0.15, 12);
  });

  const python = referencePython(['numpy']);
  it.skipIf(!python)(`equals the seed's numpy split on 500 cases (${python ? 'Debian numpy' : 'skipped: no Debian python3 with numpy'})`, () => {
    const script = `
import json, sys, numpy as np
n, seed, split = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
np.random.seed(seed)
idx = np.arange(n)
first = np.random.random(n)
other = idx[first >= split]
second = np.random.random(len(other))
labels = ['train'] * n
for i in other[second >= 0.5]: labels[i] = 'validation'
for i in other[second < 0.5]: labels[i] = 'testing'
print(json.dumps(labels))`;
    for (const [seed, split] of [
      [816, 0.85],
      [12345, 0.6],
    ] as const) {
      const expected = runPythonJson(python!, script, ['500', String(seed), String(split)]) as string[];
      expect(assignSplits(500, { seed, fractions: split })).toEqual(expected);
    }
  });

  it.each([
    [3, { train: 0.9, validation: 0.05, testing: 0.05 }],
    [4, { train: 0.72, validation: 0.14, testing: 0.14 }],
    [2, { train: 0.5, validation: 0.5, testing: 0 }],
  ])('gives every non-zero part of explicit fractions at least one of %i cases', (count, fractions) => {
    for (let seed = 0; seed < 40; seed++) {
      const splits = assignSplits(count, { seed, fractions });
      for (const part of ['train', 'validation', 'testing'] as const) {
        if (fractions[part] > 0) expect(splits.filter((split) => split === part).length, `seed ${seed}, ${part}`).toBeGreaterThanOrEqual(1);
        else expect(splits).not.toContain(part);
      }
    }
  });

  it('moves the last case of the largest part into an empty one and keeps every other draw', () => {
    // Seed 816 draws 8 cases at 0.9 / 0.05 / 0.05 (the same draws as the seed-style 0.9).
    const plain = assignSplits(8, { seed: 816, fractions: 0.9 });
    const explicit = assignSplits(8, { seed: 816, fractions: { train: 0.9, validation: 0.05, testing: 0.05 } });
    const changed = explicit.map((split, index) => (split === plain[index] ? -1 : index)).filter((index) => index >= 0);
    // The draws give train x7 and testing x1, no validation: the last training case (index 7) becomes validation.
    expect(plain).toEqual(['train', 'train', 'train', 'train', 'testing', 'train', 'train', 'train']);
    expect(changed).toEqual([7]);
    expect(explicit[7]).toBe('validation');
  });
});

describe('assignNamedSplits', () => {
  it('puts named cases where they are named and every other case in training, in dataset order', () => {
    expect(assignNamedSplits(['a', 'b', 'c', 'd', 'e'], { validation: ['d'], testing: ['b', 'e'] })).toEqual(['train', 'testing', 'train', 'validation', 'testing']);
    expect(assignNamedSplits(['a', 'b'], {})).toEqual(['train', 'train']);
  });

  it('refuses an unknown id and an id named twice', () => {
    expect(() => assignNamedSplits(['a', 'b'], { testing: ['c', 'a'] })).toThrow(new ArgumentError('assignNamedSplits', 'named', 'names case(s) the dataset does not have: c'));
    expect(() => assignNamedSplits(['a', 'b'], { validation: ['a'], testing: ['a'] })).toThrow(new ArgumentError('assignNamedSplits', 'named', 'names case a twice'));
  });
});
