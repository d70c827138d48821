import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BRATS2017_LABELS,
  WHOLE_TUMOUR_LABELS,
  evaluateCase,
  evaluationToCsv,
  evaluationToJson,
  summarizeCases,
  type CaseEvaluation,
} from './index.js';

// The pair of evaluate-cases.test.ts: shape [8, 1, 1], 1 mm; reference oedema at i = 0..3, prediction WT at
// i = 1..4. WT: Dice 0.75, IoU 0.6, sensitivity, specificity, precision 0.75, distances 1 mm, 0.004 mL each.
// TC is empty in both: NaN under monai except specificity 1.
function handCase(caseId: string | undefined): CaseEvaluation {
  return evaluateCase(
    {
      prediction: Uint8Array.from([0, 1, 1, 1, 1, 0, 0, 0]),
      predictionMapping: WHOLE_TUMOUR_LABELS,
      reference: Uint8Array.from([2, 2, 2, 2, 0, 0, 0, 0]),
      referenceMapping: BRATS2017_LABELS,
      shape: [8, 1, 1],
      spacing: [1, 1, 1],
      ...(caseId === undefined ? {} : { caseId }),
    },
    { regions: ['WT', 'TC'] },
  );
}

const WT_JSON = {
  dice: 0.75,
  iou: 0.6,
  sensitivity: 0.75,
  specificity: 0.75,
  precision: 0.75,
  hd95: 1,
  hausdorff: 1,
  assd: 1,
  volumeMlReference: 0.004,
  volumeMlPrediction: 0.004,
};
const TC_JSON = {
  dice: null,
  iou: null,
  sensitivity: null,
  specificity: 1,
  precision: null,
  hd95: null,
  hausdorff: null,
  assd: null,
  volumeMlReference: 0,
  volumeMlPrediction: 0,
};

describe('evaluationToJson', () => {
  const cases = [handCase('A')];
  const json = evaluationToJson(cases, summarizeCases(cases), [
    'case B: no prediction in preds',
    { caseId: 'C', kind: 'affine-mismatch', message: "case C: C.nii.gz: affine differs from the reference's (not on the same grid)" },
  ]);

  it('keeps the field names and their order, and writes NaN as null', () => {
    expect(Object.keys(json)).toEqual(['cases', 'summary', 'caseCount', 'convention', 'problems']);
    expect(Object.keys(json.cases[0]!)).toEqual(['id', 'WT', 'TC']);
    expect(Object.keys(json.cases[0]!.WT!)).toEqual(Object.keys(WT_JSON));
    expect(json.cases).toEqual([{ id: 'A', WT: WT_JSON, TC: TC_JSON }]);
    expect(json.caseCount).toBe(1);
    expect(json.convention).toBe('monai');
    expect(json.problems).toEqual([
      'case B: no prediction in preds',
      "case C: C.nii.gz: affine differs from the reference's (not on the same grid)",
    ]);
  });

  it('summarises every summary metric, with null for statistics of no value', () => {
    expect(Object.keys(json.summary)).toEqual(['WT', 'TC']);
    expect(Object.keys(json.summary.WT!)).toEqual([
      'dice', 'iou', 'sensitivity', 'specificity', 'precision', 'hd95', 'hausdorff', 'assd', 'volumeMlReference', 'volumeMlPrediction',
    ]);
    expect(Object.keys(json.summary.WT!.dice)).toEqual(['mean', 'median', 'std', 'count', 'nanCount']);
    expect(json.summary.WT!.dice).toEqual({ mean: 0.75, median: 0.75, std: 0, count: 1, nanCount: 0 });
    expect(json.summary.TC!.dice).toEqual({ mean: null, median: null, std: null, count: 0, nanCount: 1 });
    expect(json.summary.TC!.specificity).toEqual({ mean: 1, median: 1, std: 0, count: 1, nanCount: 0 });
  });

  it('survives a JSON round trip unchanged (no NaN reaches the text)', () => {
    const text = JSON.stringify(json);
    expect(text).not.toMatch(/NaN|Infinity/);
    expect(JSON.parse(text)).toEqual(json);
  });

  it('has a null convention and empty lists when nothing was scored', () => {
    expect(evaluationToJson([], summarizeCases([]), [])).toEqual({ cases: [], summary: {}, caseCount: 0, convention: null, problems: [] });
  });

  it('rejects arguments of the wrong kind', () => {
    expect(() => evaluationToJson({} as CaseEvaluation[], summarizeCases([]), [])).toThrow(ArgumentError);
    expect(() => evaluationToJson([], null as never, [])).toThrow(ArgumentError);
  });
});

describe('evaluationToCsv', () => {
  it('writes one row per case and region, NaN as NaN, and an empty id for a case without one', () => {
    expect(evaluationToCsv([handCase('A'), handCase(undefined)])).toBe(
      [
        'id,region,dice,iou,sensitivity,specificity,precision,hd95,hausdorff,assd,volume_ml_reference,volume_ml_prediction',
        'A,WT,0.75,0.6,0.75,0.75,0.75,1,1,1,0.004,0.004',
        'A,TC,NaN,NaN,NaN,1,NaN,NaN,NaN,NaN,0,0',
        ',WT,0.75,0.6,0.75,0.75,0.75,1,1,1,0.004,0.004',
        ',TC,NaN,NaN,NaN,1,NaN,NaN,NaN,NaN,0,0',
        '',
      ].join('\n'),
    );
  });

  it('writes the header alone for no case', () => {
    expect(evaluationToCsv([])).toBe('id,region,dice,iou,sensitivity,specificity,precision,hd95,hausdorff,assd,volume_ml_reference,volume_ml_prediction\n');
  });
});
