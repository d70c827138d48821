import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import {
  BRATS2017_LABELS,
  ConfusionMatrixMetric,
  DiceMetric,
  HausdorffDistanceMetric,
  IouMetric,
  SoftDiceMetric,
  SurfaceDistanceMetric,
  regionMasksFromLabels,
  type Reduction,
} from './index.js';

const GRID = { shape: [4, 1, 1] as const };
// Case A: WT Dice 1, TC Dice 0.5. Case B: WT Dice 0 (empty prediction), TC empty reference (NaN under monai, 0 under brats).
const CASE_A = {
  prediction: { WT: [1, 1, 0, 0], TC: [1, 0, 0, 0] },
  reference: { WT: [1, 1, 0, 0], TC: [1, 1, 1, 0] },
};
const CASE_B = {
  prediction: { WT: [0, 0, 0, 0], TC: [1, 0, 0, 0] },
  reference: { WT: [0, 0, 1, 1], TC: [0, 0, 0, 0] },
};

function filled(convention: 'monai' | 'brats' = 'monai'): DiceMetric {
  const metric = new DiceMetric({ convention });
  metric.update(CASE_A.prediction, CASE_A.reference, GRID, 'A');
  metric.update(CASE_B.prediction, CASE_B.reference, GRID, 'B');
  return metric;
}

describe('DiceMetric reductions', () => {
  it('update returns the case values by region', () => {
    const metric = new DiceMetric();
    expect(metric.update(CASE_A.prediction, CASE_A.reference, GRID)).toEqual({ WT: 1, TC: 0.5 });
  });

  it.each([
    { reduction: 'none', expected: [{ caseId: 'A', values: { WT: 1, TC: 0.5 } }, { caseId: 'B', values: { WT: 0, TC: Number.NaN } }] },
    { reduction: 'mean', expected: 0.5 },
    { reduction: 'median', expected: 0.5 },
    { reduction: 'per-case', expected: [{ caseId: 'A', value: 0.75 }, { caseId: 'B', value: 0 }] },
    { reduction: 'per-region', expected: { WT: 0.5, TC: 0.5 } },
  ] as const)('monai, $reduction', ({ reduction, expected }) => {
    expect(filled().aggregate(reduction as Reduction)).toEqual(expected);
  });

  it.each([
    { reduction: 'mean', expected: 1.5 / 4 },
    { reduction: 'median', expected: 0.25 },
    { reduction: 'per-region', expected: { WT: 0.5, TC: 0.25 } },
  ] as const)('brats, $reduction', ({ reduction, expected }) => {
    expect(filled('brats').aggregate(reduction as Reduction)).toEqual(expected);
  });

  it('counts NaNs, uses the constructor reduction by default and resets', () => {
    const metric = filled();
    expect(metric.countValues()).toEqual({ total: 4, nan: 1 });
    expect(metric.caseCount).toBe(2);
    expect(metric.aggregate()).toBe(0.5);
    const perRegion = new DiceMetric({ reduction: 'per-region' });
    perRegion.update(CASE_A.prediction, CASE_A.reference, GRID);
    expect(perRegion.aggregate()).toEqual({ WT: 1, TC: 0.5 });
    metric.reset();
    expect(metric.caseCount).toBe(0);
    expect(metric.aggregate('mean')).toBeNaN();
    expect(metric.aggregate('none')).toEqual([]);
  });

  it('names cases by their order when no id is given', () => {
    const metric = new DiceMetric();
    metric.update([1, 0, 0, 0], [1, 0, 0, 0], GRID);
    metric.update([1, 0, 0, 0], [0, 1, 0, 0], GRID);
    expect(metric.aggregate('per-case')).toEqual([{ caseId: 'case-0', value: 1 }, { caseId: 'case-1', value: 0 }]);
    expect(metric.aggregate('per-region')).toEqual({ foreground: 0.5 });
  });

  it('takes the region masks of label maps', () => {
    const metric = new DiceMetric();
    const reference = regionMasksFromLabels([0, 1, 2, 4], BRATS2017_LABELS);
    const prediction = regionMasksFromLabels([0, 2, 2, 4], BRATS2017_LABELS);
    expect(metric.update(prediction, reference, GRID)).toEqual({ WT: 1, TC: 2 / 3, ET: 1 });
  });
});

describe('other accumulators', () => {
  it.each([
    { name: 'IouMetric', metric: new IouMetric(), expected: 1 / 3 },
    { name: 'sensitivity', metric: new ConfusionMatrixMetric({ metric: 'sensitivity' }), expected: 1 / 2 },
    { name: 'specificity', metric: new ConfusionMatrixMetric({ metric: 'specificity' }), expected: 1 / 2 },
    { name: 'precision', metric: new ConfusionMatrixMetric({ metric: 'precision' }), expected: 1 / 2 },
    { name: 'SoftDiceMetric s = 1', metric: new SoftDiceMetric(), expected: (2 * (0.8 + 0.1) + 1) / (2 + 1.5 + 1) },
    { name: 'IouMetric at threshold 0.7', metric: new IouMetric({ threshold: 0.7 }), expected: 1 / 2 },
  ])('$name', ({ metric, expected }) => {
    // Binarised at 0.5: prediction {0, 2}, reference {0, 1}: TP 1, FP 1, FN 1, TN 1; soft: I 0.9, T 2, P 1.5.
    metric.update([0.8, 0.1, 0.6, 0], [1, 1, 0, 0], GRID);
    expect(metric.aggregate('mean')).toBeCloseTo(expected, 12);
  });

  it('HausdorffDistanceMetric and SurfaceDistanceMetric take each case’s spacing', () => {
    const shape = [8, 1, 1] as const;
    const row = [1, 1, 1, 1, 1, 0, 0, 0];
    const voxel = [1, 0, 0, 0, 0, 0, 0, 0];
    const hd95 = new HausdorffDistanceMetric({ percentile: 95 });
    const hausdorff = new HausdorffDistanceMetric();
    const assd = new SurfaceDistanceMetric();
    for (const metric of [hd95, hausdorff, assd]) {
      metric.update(row, voxel, { shape, spacing: [1, 1, 1] }, 'one');
      metric.update(row, voxel, { shape, spacing: [2, 1, 1] }, 'two');
    }
    expect(hd95.aggregate('per-case')).toEqual([{ caseId: 'one', value: expect.closeTo(3.8, 12) }, { caseId: 'two', value: expect.closeTo(7.6, 12) }]);
    expect(hausdorff.aggregate('mean')).toBeCloseTo(6, 12);
    // The row erodes in 1D (surface = its two ends): ASSD 4/3 mm at 1 mm, 8/3 mm at 2 mm.
    expect(assd.aggregate('median')).toBeCloseTo((4 / 3 + 8 / 3) / 2, 12);
  });

  it('distance metrics follow the convention for empty masks', () => {
    const shape = [2, 2, 1] as const;
    const brats = new HausdorffDistanceMetric({ percentile: 95, convention: 'brats' });
    const monai = new HausdorffDistanceMetric({ percentile: 95 });
    for (const metric of [brats, monai]) metric.update([1, 0, 0, 0], [0, 0, 0, 0], { shape, spacing: [3, 4, 1] });
    expect(brats.aggregate('mean')).toBeCloseTo(Math.sqrt(36 + 64 + 1), 12);
    expect(monai.aggregate('mean')).toBeNaN();
    expect(monai.countValues()).toEqual({ total: 1, nan: 1 });
  });
});

describe('accumulator validation', () => {
  it('rejects an unknown reduction, listing the known ones', () => {
    expect(() => new DiceMetric({ reduction: 'sum' as Reduction })).toThrow(
      /DiceMetric\(\): argument 'options.reduction' is 'sum', which is unknown; known: none, mean, median, per-case, per-region/,
    );
    expect(() => filled().aggregate('mean_batch' as Reduction)).toThrow(ArgumentError);
  });

  it.each([
    { name: 'an unknown metric', make: () => new ConfusionMatrixMetric({ metric: 'f1' as 'dice' }), argument: 'options.metric' },
    { name: 'a bad percentile', make: () => new HausdorffDistanceMetric({ percentile: 120 }), argument: 'options.percentile' },
    { name: 'a negative smoothing', make: () => new SoftDiceMetric({ smooth: -1 }), argument: 'options.smooth' },
    { name: 'an unknown convention', make: () => new IouMetric({ convention: 'x' as never }), argument: 'options.convention' },
  ])('rejects $name', ({ make, argument }) => {
    try {
      make();
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });

  it('rejects region sets that differ and masks that do not match the grid', () => {
    const metric = new DiceMetric();
    expect(() => metric.update({ WT: [1, 0, 0, 0] }, { TC: [1, 0, 0, 0] }, GRID)).toThrow(/DiceMetric.update\(\): argument 'reference'/);
    expect(() => metric.update([1, 0, 0], [1, 0, 0], GRID)).toThrow(ShapeMismatchError);
    expect(() => metric.update([1, 0, 0, 0], [1, 0, 0, 0], { shape: [4, 1] as never })).toThrow(ArgumentError);
    expect(metric.caseCount).toBe(0);
  });
});
