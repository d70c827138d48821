import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BRATS2017_LABELS,
  WHOLE_TUMOUR_LABELS,
  evaluateCases,
  type CasePair,
  type EvaluationProblem,
  type GridAffine,
} from './index.js';

// A line of 8 voxels, shape [8, 1, 1], 1 mm: a voxel is 0.001 mL.
// Reference (BraTS 2017): oedema (2) at i = 0..3, so WT {0,1,2,3} and TC, ET empty.
// Prediction (0/1 whole-tumour mask): 1 at i = 1..4, so WT {1,2,3,4}.
// WT: TP 3 (1,2,3), FP 1 (4), FN 1 (0), TN 3 (5,6,7): Dice 6/8, IoU 3/5, sensitivity, specificity, precision 3/4.
// On a line the surface is the two end voxels: {0, 3} and {1, 4}, each 1 mm from the other set, so HD95,
// Hausdorff and ASSD are 1 mm.
const IDENTITY: GridAffine = [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

function shifted(x: number): GridAffine {
  return [[1, 0, 0, x], IDENTITY[1], IDENTITY[2], IDENTITY[3]];
}

function pair(caseId: string, overrides: { prediction?: Partial<CasePair['prediction']>; reference?: Partial<CasePair['reference']> } = {}): CasePair {
  return {
    caseId,
    prediction: { values: Uint8Array.from([0, 1, 1, 1, 1, 0, 0, 0]), shape: [8, 1, 1], affine: IDENTITY, ...overrides.prediction },
    predictionMapping: WHOLE_TUMOUR_LABELS,
    predictionSource: `${caseId}.nii.gz`,
    reference: {
      values: Uint8Array.from([2, 2, 2, 2, 0, 0, 0, 0]),
      shape: [8, 1, 1],
      spacing: [1, 1, 1],
      affine: IDENTITY,
      ...overrides.reference,
    },
    referenceMapping: BRATS2017_LABELS,
  };
}

describe('evaluateCases, hand-computed', () => {
  it('scores a pair on one grid', async () => {
    const { cases, summary, problems } = await evaluateCases([pair('A')], { regions: ['WT', 'TC'] });
    expect(problems).toEqual([]);
    expect(cases).toHaveLength(1);
    expect(cases[0]!.caseId).toBe('A');
    expect(cases[0]!.convention).toBe('monai');
    expect(cases[0]!.regions.WT).toEqual({
      dice: 0.75,
      iou: 0.6,
      sensitivity: 0.75,
      specificity: 0.75,
      precision: 0.75,
      hd95: 1,
      hausdorff: 1,
      assd: 1,
      volumeMl: { reference: 0.004, prediction: 0.004 },
      referenceEmpty: false,
      predictionEmpty: false,
    });
    // Both TC masks are empty: undefined under monai, except specificity 8/8.
    expect(cases[0]!.regions.TC!.dice).toBeNaN();
    expect(cases[0]!.regions.TC!.specificity).toBe(1);
    expect(cases[0]!.regions.ET).toBeUndefined();
    expect(summary.caseCount).toBe(1);
    expect(summary.regions.WT!.dice).toEqual({ mean: 0.75, median: 0.75, std: 0, count: 1, nanCount: 0 });
    expect(summary.regions.TC!.dice.nanCount).toBe(1);
  });

  it('takes the convention: under brats both-empty TC is a perfect score', async () => {
    const { cases } = await evaluateCases([pair('A')], { convention: 'brats', regions: ['TC'] });
    expect(cases[0]!.convention).toBe('brats');
    expect(cases[0]!.regions.TC!.dice).toBe(1);
    expect(cases[0]!.regions.TC!.hd95).toBe(0);
  });

  it.each([
    {
      name: 'another shape',
      item: pair('B', { prediction: { values: new Uint8Array(16), shape: [8, 1, 2] } }),
      kind: 'shape-mismatch',
      message: 'case B: B.nii.gz: shape [8, 1, 2] differs from the reference [8, 1, 1]',
    },
    {
      name: 'a 4D prediction',
      item: pair('B4', { prediction: { shape: [8, 1, 1, 1] } }),
      kind: 'shape-mismatch',
      message: 'case B4: B4.nii.gz: shape [8, 1, 1, 1] differs from the reference [8, 1, 1]',
    },
    {
      name: 'an affine 0.01 mm off',
      item: pair('C', { prediction: { affine: shifted(0.01) } }),
      kind: 'affine-mismatch',
      message: "case C: C.nii.gz: affine differs from the reference's (not on the same grid)",
    },
    {
      name: 'a value the reference convention does not know',
      item: pair('E', { reference: { values: Uint8Array.from([3, 2, 2, 2, 0, 0, 0, 0]) } }),
      kind: 'invalid-labels',
      message: /^case E: evaluateCase\(\): argument 'input.reference' holds value 3 at voxel 0, not a label of mapping 'brats2017'/,
    },
  ])('reports $name as a problem and scores nothing', async ({ item, kind, message }) => {
    const { cases, summary, problems } = await evaluateCases([item]);
    expect(cases).toEqual([]);
    expect(summary.caseCount).toBe(0);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.caseId).toBe(item.caseId);
    expect(problems[0]!.kind).toBe(kind);
    expect(problems[0]!.message).toMatch(message);
  });

  it('scores affines within the tolerance, and without affines does not compare them', async () => {
    const within = await evaluateCases([pair('C', { prediction: { affine: shifted(5e-4) } })]);
    expect(within.cases).toHaveLength(1);
    const wider = await evaluateCases([pair('C', { prediction: { affine: shifted(0.01) } })], { affineTolerance: 0.1 });
    expect(wider.cases[0]!.regions.WT!.dice).toBe(0.75);
    const { affine: _unused, ...noAffine } = pair('N').prediction;
    const without = await evaluateCases([{ ...pair('N'), prediction: noAffine, reference: { ...pair('N').reference, affine: shifted(9) } }]);
    expect(without.problems).toEqual([]);
    expect(without.cases).toHaveLength(1);
  });

  it('keeps problems passed in, in order, from an async iterable read one item at a time, and reports progress', async () => {
    const missing: EvaluationProblem = { caseId: 'D', kind: 'missing-prediction', message: 'case D: no prediction in preds' };
    const read: string[] = [];
    async function* items(): AsyncGenerator<CasePair | EvaluationProblem> {
      for (const item of [pair('A'), missing, pair('C', { prediction: { affine: shifted(1) } }), pair('F')]) {
        read.push(item.caseId);
        yield item;
      }
    }
    const progress: [number, string][] = [];
    const result = await evaluateCases(items(), {}, (done, caseId) => {
      progress.push([done, caseId]);
      // The next item is read only after this one is scored.
      expect(read).toHaveLength(done);
    });
    expect(result.cases.map((evaluation) => evaluation.caseId)).toEqual(['A', 'F']);
    expect(result.problems.map((problem) => problem.kind)).toEqual(['missing-prediction', 'affine-mismatch']);
    expect(result.problems[0]).toBe(missing);
    expect(progress).toEqual([[1, 'A'], [2, 'D'], [3, 'C'], [4, 'F']]);
    expect(result.summary.caseCount).toBe(2);
    expect(result.summary.regions.WT!.dice.mean).toBe(0.75);
  });

  it('gives an empty summary for no input', async () => {
    const result = await evaluateCases([]);
    expect(result).toEqual({ cases: [], summary: { caseCount: 0, regions: {} }, problems: [] });
  });
});

describe('evaluateCases, arguments', () => {
  it.each([
    { name: 'an unknown convention', call: () => evaluateCases([], { convention: 'nnunet' as 'monai' }), argument: 'options.convention' },
    { name: 'an unknown region', call: () => evaluateCases([], { regions: ['NCR' as 'WT'] }), argument: 'options.regions' },
    { name: 'a negative tolerance', call: () => evaluateCases([], { affineTolerance: -1 }), argument: 'options.affineTolerance' },
    { name: 'a non-iterable', call: () => evaluateCases(7 as unknown as CasePair[]), argument: 'pairs' },
    { name: 'an item without case id', call: () => evaluateCases([{}] as unknown as CasePair[]), argument: 'pairs[0]' },
    {
      name: 'a malformed affine',
      call: () => evaluateCases([pair('A', { prediction: { affine: [[1]] as unknown as GridAffine } })]),
      argument: 'pairs[A].prediction.affine',
    },
  ])('rejects $name before scoring', async ({ call, argument }) => {
    const error = await call().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).functionName).toBe('evaluateCases');
    expect((error as ArgumentError).argument).toBe(argument);
  });

  it('lets an error of the input itself through', async () => {
    const failing: AsyncIterable<CasePair> = {
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('disk gone')) }),
    };
    await expect(evaluateCases(failing)).rejects.toThrow('disk gone');
  });
});
