import { describe, expect, it } from 'vitest';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import {
  BRATS2017_LABELS,
  MSD_LABELS,
  describeValues,
  evaluateCase,
  summarizeCases,
  type CaseEvaluation,
  type CaseInput,
  type RegionEvaluation,
} from './index.js';

// Shape [4, 3, 2], spacing [1, 2, 3]: a voxel is 6 mm³ = 0.006 mL; voxel index v = i + 4j + 12k.
// Reference (BraTS 2017): v0 oedema, v1 core, v2 enhancing, v5 oedema → WT {0,1,2,5}, TC {1,2}, ET {2}.
// Prediction (MSD): v0 oedema, v1 enhancing, v2 enhancing, v3 oedema → WT {0,1,2,3}, TC {1,2}, ET {1,2}.
function labels(values: Record<number, number>): Uint8Array {
  const out = new Uint8Array(24);
  for (const [index, value] of Object.entries(values)) out[Number(index)] = value;
  return out;
}

const INPUT: CaseInput = {
  prediction: labels({ 0: 1, 1: 3, 2: 3, 3: 1 }),
  predictionMapping: MSD_LABELS,
  reference: labels({ 0: 2, 1: 1, 2: 4, 5: 2 }),
  referenceMapping: BRATS2017_LABELS,
  shape: [4, 3, 2],
  spacing: [1, 2, 3],
  caseId: 'hand-made',
};

describe('evaluateCase, hand-computed', () => {
  const result = evaluateCase(INPUT);

  it.each([
    {
      // TP 3, FP 1 (v3), FN 1 (v5), TN 19. Surfaces are whole masks; v3 is 1 mm from v2, v5 2 mm (j) from v1.
      // Directed sets [0,0,0,1] and [0,0,0,2]: p95 0.85 and 1.7.
      region: 'WT',
      expected: {
        dice: 0.75, iou: 3 / 5, sensitivity: 3 / 4, specificity: 19 / 20, precision: 3 / 4,
        hd95: 1.7, hausdorff: 2, assd: 3 / 8, volumeMl: { reference: 0.024, prediction: 0.024 },
      },
    },
    {
      region: 'TC',
      expected: {
        dice: 1, iou: 1, sensitivity: 1, specificity: 1, precision: 1,
        hd95: 0, hausdorff: 0, assd: 0, volumeMl: { reference: 0.012, prediction: 0.012 },
      },
    },
    {
      // TP 1, FP 1 (v1), TN 22. Directed sets [0, 1] and [0].
      region: 'ET',
      expected: {
        dice: 2 / 3, iou: 1 / 2, sensitivity: 1, specificity: 22 / 23, precision: 1 / 2,
        hd95: 0.95, hausdorff: 1, assd: 1 / 3, volumeMl: { reference: 0.006, prediction: 0.012 },
      },
    },
  ] as const)('$region', ({ region, expected }) => {
    const actual = result.regions[region]!;
    for (const metric of ['dice', 'iou', 'sensitivity', 'specificity', 'precision', 'hd95', 'hausdorff', 'assd'] as const) {
      expect(actual[metric], metric).toBeCloseTo(expected[metric], 12);
    }
    expect(actual.volumeMl.reference).toBeCloseTo(expected.volumeMl.reference, 12);
    expect(actual.volumeMl.prediction).toBeCloseTo(expected.volumeMl.prediction, 12);
    expect(actual.referenceEmpty).toBe(false);
    expect(actual.predictionEmpty).toBe(false);
  });

  it('carries the case id and convention and keeps region order', () => {
    expect(result.caseId).toBe('hand-made');
    expect(result.convention).toBe('monai');
    expect(Object.keys(result.regions)).toEqual(['WT', 'TC', 'ET']);
    expect(Object.keys(evaluateCase(INPUT, { regions: ['ET', 'WT'] }).regions)).toEqual(['ET', 'WT']);
  });
});

describe('evaluateCase, empty regions', () => {
  // The reference has no enhancing tumour (v2 is core), the prediction has some.
  const input: CaseInput = { ...INPUT, reference: labels({ 0: 2, 1: 1, 2: 1, 5: 2 }) };
  const diagonal = Math.sqrt(4 ** 2 + 6 ** 2 + 6 ** 2);

  it('monai: empty reference gives NaN and is flagged', () => {
    const et = evaluateCase(input, { convention: 'monai' }).regions.ET!;
    expect(et.referenceEmpty).toBe(true);
    expect(et.predictionEmpty).toBe(false);
    for (const metric of ['dice', 'iou', 'sensitivity', 'hd95', 'hausdorff', 'assd'] as const) expect(et[metric], metric).toBeNaN();
    expect(et.precision).toBe(0);
    expect(et.specificity).toBeCloseTo(22 / 24, 12);
    expect(et.volumeMl).toEqual({ reference: 0, prediction: 0.012 });
  });

  it('brats: one empty gives Dice 0 and HD95 the image diagonal; both empty gives Dice 1 and HD95 0', () => {
    const oneEmpty = evaluateCase(input, { convention: 'brats' }).regions.ET!;
    expect(oneEmpty.dice).toBe(0);
    expect(oneEmpty.hd95).toBeCloseTo(diagonal, 12);
    expect(oneEmpty.hausdorff).toBeCloseTo(diagonal, 12);
    const bothEmpty = evaluateCase({ ...input, prediction: labels({ 0: 1, 1: 2 }) }, { convention: 'brats' }).regions.ET!;
    expect(bothEmpty).toMatchObject({ dice: 1, iou: 1, hd95: 0, hausdorff: 0, assd: 0, referenceEmpty: true, predictionEmpty: true });
  });
});

describe('evaluateCase validation', () => {
  it.each([
    { name: 'a label outside the prediction mapping', input: { ...INPUT, prediction: labels({ 0: 4 }) }, argument: 'input.prediction' },
    { name: 'a missing mapping', input: { ...INPUT, referenceMapping: undefined as never }, argument: 'input.referenceMapping' },
    { name: 'a bad spacing', input: { ...INPUT, spacing: [1, 1] as never }, argument: 'input.spacing' },
    { name: 'a 4D shape', input: { ...INPUT, shape: [4, 3, 2, 1] as never }, argument: 'input.shape' },
  ])('rejects $name', ({ input, argument }) => {
    try {
      evaluateCase(input);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).functionName).toBe('evaluateCase');
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });

  it('rejects label maps that do not match the shape', () => {
    expect(() => evaluateCase({ ...INPUT, reference: new Uint8Array(23) })).toThrow(ShapeMismatchError);
    expect(() => evaluateCase({ ...INPUT, reference: new Uint8Array(23) })).toThrow(/evaluateCase\(\): argument 'input.reference'/);
  });

  it('rejects an unknown convention', () => {
    expect(() => evaluateCase(INPUT, { convention: 'nnunet' as never })).toThrow(/known: monai, brats/);
  });
});

describe('describeValues', () => {
  it.each([
    { values: [0.5, 0.9, Number.NaN, 0.7], mean: 0.7, median: 0.7, std: Math.sqrt(0.08 / 3), count: 3, nanCount: 1 },
    { values: [1, 2, 3, 10], mean: 4, median: 2.5, std: Math.sqrt((9 + 4 + 1 + 36) / 4), count: 4, nanCount: 0 },
    { values: [Number.NaN], mean: Number.NaN, median: Number.NaN, std: Number.NaN, count: 0, nanCount: 1 },
  ])('$values', ({ values, ...expected }) => {
    const actual = describeValues(values);
    expect(actual.count).toBe(expected.count);
    expect(actual.nanCount).toBe(expected.nanCount);
    for (const key of ['mean', 'median', 'std'] as const) {
      if (Number.isNaN(expected[key])) expect(actual[key]).toBeNaN();
      else expect(actual[key]).toBeCloseTo(expected[key], 12);
    }
  });
});

describe('summarizeCases', () => {
  function region(dice: number, hd95: number): RegionEvaluation {
    return {
      dice, iou: 0, sensitivity: 0, specificity: 1, precision: 0, hd95, hausdorff: hd95, assd: 0,
      volumeMl: { reference: 1, prediction: 2 }, referenceEmpty: Number.isNaN(dice), predictionEmpty: false,
    };
  }
  const cases: CaseEvaluation[] = [
    { convention: 'monai', regions: { WT: region(0.5, 4), ET: region(Number.NaN, Number.NaN) } },
    { convention: 'monai', regions: { WT: region(0.9, 2), ET: region(0.6, 3) } },
    { convention: 'monai', regions: { WT: region(Number.NaN, Number.NaN), ET: region(0.8, 5) } },
    { convention: 'monai', regions: { WT: region(0.7, 6) } },
  ];

  it('gives mean, median and std per region and metric, NaNs counted and left out', () => {
    const summary = summarizeCases(cases);
    expect(summary.caseCount).toBe(4);
    expect(Object.keys(summary.regions)).toEqual(['WT', 'ET']);
    expect(summary.regions.WT!.dice).toEqual({ mean: expect.closeTo(0.7, 12), median: 0.7, std: expect.closeTo(Math.sqrt(0.08 / 3), 12), count: 3, nanCount: 1 });
    expect(summary.regions.WT!.hd95).toEqual({ mean: 4, median: 4, std: expect.closeTo(Math.sqrt(8 / 3), 12), count: 3, nanCount: 1 });
    expect(summary.regions.ET!.dice).toEqual({ mean: expect.closeTo(0.7, 12), median: expect.closeTo(0.7, 12), std: expect.closeTo(0.1, 12), count: 2, nanCount: 1 });
    expect(summary.regions.ET!.volumeMlPrediction).toEqual({ mean: 2, median: 2, std: 0, count: 3, nanCount: 0 });
  });

  it('summarises evaluateCase results', () => {
    const summary = summarizeCases([evaluateCase(INPUT), evaluateCase(INPUT)]);
    expect(summary.regions.WT!.dice).toEqual({ mean: 0.75, median: 0.75, std: 0, count: 2, nanCount: 0 });
  });

  it('rejects what is not a list of evaluations', () => {
    expect(() => summarizeCases({} as never)).toThrow(ArgumentError);
    expect(() => summarizeCases([null as never])).toThrow(/summarizeCases\(\): argument 'cases\[0\]'/);
  });
});
