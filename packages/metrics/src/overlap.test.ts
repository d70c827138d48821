import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import {
  binarizeMask,
  computeConfusion,
  computeDice,
  computeIou,
  computePrecision,
  computeSensitivity,
  computeSoftDice,
  computeSpecificity,
  overlapFromConfusion,
  type EmptyConvention,
} from './index.js';

const PREDICTION = [1, 1, 1, 0, 0, 0, 1, 0];
const REFERENCE = [1, 1, 0, 1, 0, 0, 0, 0];

describe('computeConfusion', () => {
  it.each([
    { name: 'mixed', prediction: PREDICTION, reference: REFERENCE, threshold: 0.5, counts: [2, 2, 1, 3] },
    { name: 'probabilities at 0.5', prediction: [0.9, 0.5, 0.49, 0.1], reference: [1, 0, 1, 0], threshold: 0.5, counts: [1, 1, 1, 1] },
    { name: 'probabilities at 0.3', prediction: [0.9, 0.5, 0.49, 0.1], reference: [1, 0, 1, 0], threshold: 0.3, counts: [2, 1, 0, 1] },
    { name: 'label values as masks', prediction: [4, 0, 2], reference: [1, 1, 0], threshold: 0.5, counts: [1, 1, 1, 0] },
    { name: 'both empty', prediction: [0, 0, 0], reference: [0, 0, 0], threshold: 0.5, counts: [0, 0, 0, 3] },
  ])('$name', ({ prediction, reference, threshold, counts }) => {
    const [truePositive, falsePositive, falseNegative, trueNegative] = counts;
    expect(computeConfusion(Float32Array.from(prediction), Uint8Array.from(reference), { threshold })).toEqual({
      truePositive,
      falsePositive,
      falseNegative,
      trueNegative,
    });
  });
});

describe('overlap metrics, hand-computed', () => {
  // TP 2, FP 2, FN 1, TN 3.
  it.each([
    { metric: 'dice', compute: computeDice, expected: 4 / 7 },
    { metric: 'iou', compute: computeIou, expected: 2 / 5 },
    { metric: 'sensitivity', compute: computeSensitivity, expected: 2 / 3 },
    { metric: 'specificity', compute: computeSpecificity, expected: 3 / 5 },
    { metric: 'precision', compute: computePrecision, expected: 2 / 4 },
  ])('$metric = $expected', ({ compute, expected }) => {
    expect(compute(PREDICTION, REFERENCE)).toBeCloseTo(expected, 12);
    expect(compute(Uint8Array.from(PREDICTION), Uint8Array.from(REFERENCE), { convention: 'brats' })).toBeCloseTo(expected, 12);
  });

  it('thresholds probability maps before counting', () => {
    expect(computeDice([0.9, 0.5, 0.49, 0.1], [1, 0, 1, 0])).toBeCloseTo(0.5, 12);
    expect(computeDice([0.9, 0.5, 0.49, 0.1], [1, 0, 1, 0], { threshold: 0.3 })).toBeCloseTo(4 / 5, 12);
  });
});

describe('empty-mask conventions', () => {
  const NaN_ = Number.NaN;
  // Columns: dice, iou, sensitivity, specificity, precision.
  it.each([
    { name: 'both empty', convention: 'monai', prediction: [0, 0, 0, 0], reference: [0, 0, 0, 0], expected: [NaN_, NaN_, NaN_, 1, NaN_] },
    { name: 'both empty', convention: 'brats', prediction: [0, 0, 0, 0], reference: [0, 0, 0, 0], expected: [1, 1, 1, 1, 1] },
    { name: 'empty reference', convention: 'monai', prediction: [1, 0, 0, 0], reference: [0, 0, 0, 0], expected: [NaN_, NaN_, NaN_, 3 / 4, 0] },
    { name: 'empty reference', convention: 'brats', prediction: [1, 0, 0, 0], reference: [0, 0, 0, 0], expected: [0, 0, 0, 3 / 4, 0] },
    { name: 'empty prediction', convention: 'monai', prediction: [0, 0, 0, 0], reference: [1, 1, 0, 0], expected: [0, 0, 0, 1, NaN_] },
    { name: 'empty prediction', convention: 'brats', prediction: [0, 0, 0, 0], reference: [1, 1, 0, 0], expected: [0, 0, 0, 1, 0] },
    { name: 'both full', convention: 'monai', prediction: [1, 1, 1], reference: [1, 1, 1], expected: [1, 1, 1, NaN_, 1] },
    { name: 'both full', convention: 'brats', prediction: [1, 1, 1], reference: [1, 1, 1], expected: [1, 1, 1, 1, 1] },
    { name: 'full reference', convention: 'brats', prediction: [1, 0, 1], reference: [1, 1, 1], expected: [0.8, 2 / 3, 2 / 3, 0, 1] },
  ] as const)('$name under $convention', ({ convention, prediction, reference, expected }) => {
    const options = { convention: convention as EmptyConvention };
    const actual = [computeDice, computeIou, computeSensitivity, computeSpecificity, computePrecision].map((compute) =>
      compute(prediction, reference, options),
    );
    actual.forEach((value, index) => {
      if (Number.isNaN(expected[index])) expect(value).toBeNaN();
      else expect(value).toBeCloseTo(expected[index]!, 12);
    });
  });

  it('defaults to monai', () => {
    expect(computeDice([1, 0], [0, 0])).toBeNaN();
  });
});

describe('overlapFromConfusion', () => {
  it.each([
    ['dice', 2 * 5 / (2 * 5 + 3 + 2)],
    ['iou', 5 / 10],
    ['sensitivity', 5 / 7],
    ['specificity', 90 / 93],
    ['precision', 5 / 8],
  ] as const)('%s from counts', (metric, expected) => {
    const counts = { truePositive: 5, falsePositive: 3, falseNegative: 2, trueNegative: 90 };
    expect(overlapFromConfusion(metric, counts)).toBeCloseTo(expected, 12);
  });

  it('rejects negative counts and unknown metrics', () => {
    const counts = { truePositive: -1, falsePositive: 0, falseNegative: 0, trueNegative: 0 };
    expect(() => overlapFromConfusion('dice', counts)).toThrow(ArgumentError);
    expect(() =>
      overlapFromConfusion('f1' as 'dice', { truePositive: 1, falsePositive: 0, falseNegative: 0, trueNegative: 0 }),
    ).toThrow(/is 'f1', which is unknown; known: dice, iou, sensitivity, specificity, precision/);
  });
});

describe('computeSoftDice', () => {
  it.each([
    { name: 's = 1 (seed)', prediction: [0.8, 0.6, 0.1, 0], reference: [1, 1, 0, 0], smooth: 1, expected: 3.8 / 4.5 },
    { name: 's = 0', prediction: [0.8, 0.6, 0.1, 0], reference: [1, 1, 0, 0], smooth: 0, expected: 0.8 },
    { name: 'default s is 1', prediction: [0.8, 0.6, 0.1, 0], reference: [1, 1, 0, 0], smooth: undefined, expected: 3.8 / 4.5 },
    { name: 'both empty, s = 1', prediction: [0, 0], reference: [0, 0], smooth: 1, expected: 1 },
    { name: 'empty reference, s = 1', prediction: [0.5, 0.5], reference: [0, 0], smooth: 1, expected: 1 / 2 },
  ])('$name', ({ prediction, reference, smooth, expected }) => {
    const options = smooth === undefined ? {} : { smooth };
    expect(computeSoftDice(Float32Array.from(prediction), reference, options)).toBeCloseTo(expected, 6);
  });

  it('is NaN for both empty with s = 0 and rejects non-probabilities', () => {
    expect(computeSoftDice([0, 0], [0, 0], { smooth: 0 })).toBeNaN();
    expect(() => computeSoftDice([1.5, 0], [1, 0])).toThrow(ArgumentError);
    expect(() => computeSoftDice([0.5, 0], [1, 0], { smooth: -1 })).toThrow(/options.smooth/);
  });
});

describe('argument validation', () => {
  it('names the function and argument', () => {
    const error = (() => {
      try {
        computeDice([1, 0, 1], [1, 0]);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ShapeMismatchError);
    expect((error as ShapeMismatchError).message).toMatch(/^computeDice\(\): argument 'reference' length/);
    expect((error as ShapeMismatchError).expected).toEqual([3]);
    expect((error as ShapeMismatchError).actual).toEqual([2]);
  });

  it.each([
    { call: () => computeIou(null as unknown as number[], [1]), argument: 'prediction', functionName: 'computeIou' },
    { call: () => computeDice([1], [1], { threshold: Number.NaN }), argument: 'options.threshold', functionName: 'computeDice' },
    {
      call: () => computePrecision([1], [1], { convention: 'kaggle' as EmptyConvention }),
      argument: 'options.convention',
      functionName: 'computePrecision',
    },
    { call: () => binarizeMask({} as number[]), argument: 'values', functionName: 'binarizeMask' },
  ])('$functionName rejects $argument', ({ call, argument, functionName }) => {
    try {
      call();
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).argument).toBe(argument);
      expect((error as ArgumentError).functionName).toBe(functionName);
    }
  });

  it('binarizeMask thresholds at ≥', () => {
    expect(Array.from(binarizeMask([0.2, 0.5, 0.7, 3], 0.5))).toEqual([0, 1, 1, 1]);
  });
});
