import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateCases, type CasePair, type EvaluationProblem } from '@brats/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError } from '../errors.js';
import { writeNifti } from '../nifti/write.js';
import { BRATS2017_LABELS, MSD_LABELS } from '../regions.js';
import { createVolume, type Affine } from '../volume.js';
import { pairPredictionsWithReferences } from './prediction-pairs.js';

let dir: string;
let referenceDir: string;
let predictionDir: string;
const affine: Affine = [
  [-1, 0, 0, 10],
  [0, -1, 0, 10],
  [0, 0, 2, 0],
  [0, 0, 0, 1],
];
const shape = [10, 10, 4] as const;

/** A BraTS 2017 label map: a 4x4x2 block of oedema (2) at i0..i0+3, j 3..6, k 1..2 (voxel 2 mm in k). */
function block(i0: number): Uint8Array {
  const labels = new Uint8Array(400);
  for (let k = 1; k <= 2; k++) for (let j = 3; j <= 6; j++) for (let i = i0; i < i0 + 4; i++) labels[i + 10 * (j + 10 * k)] = 2;
  return labels;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-pairs-'));
  referenceDir = path.join(dir, 'ref');
  predictionDir = path.join(dir, 'pred');
  const image = createVolume('int16', new Int16Array(400).fill(5), shape, { affine });
  for (const id of ['Case_A', 'Case_B', 'Case_C', 'Case_D']) {
    for (const suffix of ['_flair', '_t1', '_t1ce', '_t2']) await writeNifti(path.join(referenceDir, id, `${id}${suffix}.nii.gz`), image);
    await writeNifti(path.join(referenceDir, id, `${id}_seg.nii.gz`), createVolume('uint8', block(2), shape, { affine }));
  }
  await writeNifti(path.join(predictionDir, 'Case_A.nii.gz'), createVolume('uint8', block(2), shape, { affine }));
  // Shifted by one voxel along i: 24 of 32 voxels overlap, Dice 2·24/64 = 0.75.
  await writeNifti(path.join(predictionDir, 'Case_B_seg.nii.gz'), createVolume('uint8', block(3), shape, { affine }));
  await fs.writeFile(path.join(predictionDir, 'Case_D.nii'), Buffer.from('not a NIfTI file'));
  await writeNifti(path.join(predictionDir, 'Stray.nii.gz'), createVolume('uint8', block(3), shape, { affine }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function collect(pairs: AsyncIterable<CasePair | EvaluationProblem>): Promise<(CasePair | EvaluationProblem)[]> {
  const items: (CasePair | EvaluationProblem)[] = [];
  for await (const item of pairs) items.push(item);
  return items;
}

describe('pairPredictionsWithReferences', () => {
  it('yields one item per labelled reference case, in id order, and lists the stray predictions', async () => {
    const pairing = await pairPredictionsWithReferences(predictionDir, referenceDir);
    expect(pairing.reference.layout).toBe('brats2017');
    expect(pairing.caseCount).toBe(4);
    expect(pairing.unmatched).toEqual([
      { caseId: 'Stray', kind: 'unmatched-prediction', message: `prediction Stray: no labelled reference case with this id in ${referenceDir}` },
    ]);
    const items = await collect(pairing.pairs);
    expect(items.map((item) => item.caseId)).toEqual(['Case_A', 'Case_B', 'Case_C', 'Case_D']);

    const b = items[1] as CasePair;
    expect(Array.from(b.prediction.values)).toEqual(Array.from(block(3)));
    expect(b.prediction.shape).toEqual([10, 10, 4]);
    expect(b.prediction.affine).toEqual(affine);
    expect(b.predictionSource).toBe(path.join(predictionDir, 'Case_B_seg.nii.gz'));
    expect(b.predictionMapping).toBe(BRATS2017_LABELS);
    expect(Array.from(b.reference.values)).toEqual(Array.from(block(2)));
    expect(b.reference.shape).toEqual([10, 10, 4]);
    expect(b.reference.spacing).toEqual([1, 1, 2]);
    expect(b.reference.affine).toEqual(affine);
    expect(b.referenceMapping).toBe(BRATS2017_LABELS);

    expect(items[2]).toEqual({ caseId: 'Case_C', kind: 'missing-prediction', message: `case Case_C: no prediction in ${predictionDir}` });
    const d = items[3] as EvaluationProblem;
    expect(d.kind).toBe('unreadable');
    expect(d.message).toMatch(/^case Case_D: .*Case_D\.nii: /);
  });

  it('feeds evaluateCases, and every iteration reads afresh', async () => {
    const pairing = await pairPredictionsWithReferences(predictionDir, referenceDir);
    for (let run = 0; run < 2; run++) {
      const result = await evaluateCases(pairing.pairs, { regions: ['WT'] });
      expect(result.cases.map((evaluation) => evaluation.caseId)).toEqual(['Case_A', 'Case_B']);
      expect(result.cases[0]!.regions.WT!.dice).toBe(1);
      expect(result.cases[1]!.regions.WT!.dice).toBeCloseTo(0.75, 12);
      expect(result.cases[1]!.regions.WT!.volumeMl.reference).toBeCloseTo((32 * 2) / 1000, 12);
      expect(result.problems.map((problem) => problem.kind)).toEqual(['missing-prediction', 'unreadable']);
    }
  });

  it('takes the label convention of the predictions', async () => {
    const pairing = await pairPredictionsWithReferences(predictionDir, referenceDir, { predictionMapping: MSD_LABELS });
    const first = (await collect(pairing.pairs))[0] as CasePair;
    expect(first.predictionMapping).toBe(MSD_LABELS);
    expect(first.referenceMapping).toBe(BRATS2017_LABELS);
  });

  it('throws a DatasetError for a missing folder', async () => {
    await expect(pairPredictionsWithReferences(path.join(dir, 'nowhere'), referenceDir)).rejects.toBeInstanceOf(DatasetError);
    await expect(pairPredictionsWithReferences(predictionDir, path.join(dir, 'nowhere'))).rejects.toBeInstanceOf(DatasetError);
  });
});
