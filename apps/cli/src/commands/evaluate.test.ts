import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createVolume, writeNifti, type Affine } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_SHARED_DATA, sharedDataDir } from '@brats/vitest-config/fixtures';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
const affine: Affine = [
  [-1, 0, 0, 10],
  [0, -1, 0, 10],
  [0, 0, 2, 0],
  [0, 0, 0, 1],
];
const shape = [10, 10, 4] as const;

/** A BraTS 2017 label map: a 4x4x2 block of label `value` at i0..i0+3, j 3..6, k 1..2 (voxel 2 mm in k). */
function block(i0: number, value = 2): Uint8Array {
  const labels = new Uint8Array(400);
  for (let k = 1; k <= 2; k++) for (let j = 3; j <= 6; j++) for (let i = i0; i < i0 + 4; i++) labels[i + 10 * (j + 10 * k)] = value;
  return labels;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-evaluate-'));
  const image = createVolume('int16', new Int16Array(400).fill(5), shape, { affine });
  for (const id of ['Case_A', 'Case_B', 'Case_C']) {
    for (const suffix of ['_flair', '_t1', '_t1ce', '_t2']) await writeNifti(path.join(dir, 'ref', id, `${id}${suffix}.nii.gz`), image);
    await writeNifti(path.join(dir, 'ref', id, `${id}_seg.nii.gz`), createVolume('uint8', block(2), shape, { affine }));
  }
  await writeNifti(path.join(dir, 'pred', 'Case_A.nii.gz'), createVolume('uint8', block(2), shape, { affine }));
  // Shifted by one voxel along i: overlap 3x4x2 = 24 of 32 voxels each, Dice = 2*24/64 = 0.75.
  await writeNifti(path.join(dir, 'pred', 'Case_B_seg.nii.gz'), createVolume('uint8', block(3), shape, { affine }));
  await writeNifti(path.join(dir, 'pred', 'Stray.nii.gz'), createVolume('uint8', block(3), shape, { affine }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats evaluate', () => {
  it('scores matched cases, lists the missing and unmatched ones, writes JSON and exits 2', async () => {
    const out = path.join(dir, 'metrics.json');
    const { code, stdout, stderr } = await runCaptured(['evaluate', '--pred', path.join(dir, 'pred'), '--ref', path.join(dir, 'ref'), '--out', out]);
    expect(code).toBe(2);
    expect(stderr).toContain('case Case_C: no prediction in');
    expect(stderr).toContain('prediction Stray: no labelled reference case');
    expect(stdout).toContain('summary over 2 cases');
    const json = JSON.parse(await fs.readFile(out, 'utf8'));
    expect(json.cases.map((c: { id: string }) => c.id)).toEqual(['Case_A', 'Case_B']);
    expect(json.cases[0].WT.dice).toBe(1);
    expect(json.cases[0].WT.hd95).toBe(0);
    expect(json.cases[1].WT.dice).toBeCloseTo(0.75, 12);
    // Oedema only: TC and ET references are empty, so MONAI gives NaN (null in JSON).
    expect(json.cases[1].TC.dice).toBeNull();
    // Surface voxels of the shifted block lie 1 voxel (1 mm along i) from the other surface, or 0 where they coincide.
    expect(json.cases[1].WT.hausdorff).toBe(1);
    expect(json.cases[1].WT.volumeMlReference).toBeCloseTo((32 * 2) / 1000, 12);
    expect(json.summary.WT.dice.mean).toBeCloseTo(0.875, 12);
    expect(json.summary.WT.dice.count).toBe(2);
    expect(json.problems).toHaveLength(2);
  });

  it('follows the BraTS challenge convention for empty regions and writes CSV', async () => {
    const out = path.join(dir, 'metrics.csv');
    const { code } = await runCaptured([
      'evaluate', '--pred', path.join(dir, 'pred'), '--ref', path.join(dir, 'ref'), '--convention', 'brats', '--regions', 'brats', '--out', out,
    ]);
    expect(code).toBe(2);
    const rows = (await fs.readFile(out, 'utf8')).trim().split('\n').map((line) => line.split(','));
    expect(rows[0]!.slice(0, 4)).toEqual(['id', 'region', 'dice', 'iou']);
    const caseBtc = rows.find((row) => row[0] === 'Case_B' && row[1] === 'TC')!;
    // Both empty: Dice 1 and HD95 0 under the challenge convention.
    expect(Number(caseBtc[2])).toBe(1);
    expect(Number(caseBtc[7])).toBe(0);
  });

  it('reports a prediction on another grid', async () => {
    const predDir = path.join(dir, 'pred-grid');
    await writeNifti(path.join(predDir, 'Case_A.nii.gz'), createVolume('uint8', new Uint8Array(200), [10, 10, 2], { affine }));
    const { code, stderr } = await runCaptured(['evaluate', '--pred', predDir, '--ref', path.join(dir, 'ref'), '--regions', 'wt']);
    expect(code).toBe(2);
    expect(stderr).toContain('shape [10, 10, 2] differs from the reference [10, 10, 4]');
  });

  it('reports a prediction whose affine differs, and still scores the other cases', async () => {
    const predDir = path.join(dir, 'pred-affine');
    const moved: Affine = [[-1, 0, 0, 12], affine[1], affine[2], affine[3]];
    await writeNifti(path.join(predDir, 'Case_A.nii.gz'), createVolume('uint8', block(2), shape, { affine: moved }));
    await writeNifti(path.join(predDir, 'Case_B.nii.gz'), createVolume('uint8', block(2), shape, { affine }));
    const { code, stdout, stderr } = await runCaptured(['evaluate', '--pred', predDir, '--ref', path.join(dir, 'ref'), '--regions', 'wt']);
    expect(code).toBe(2);
    expect(stderr).toContain(`case Case_A: ${path.join(predDir, 'Case_A.nii.gz')}: affine differs from the reference's (not on the same grid)`);
    expect(stderr).toContain(`case Case_C: no prediction in ${predDir}`);
    expect(stderr).toContain('2 problem(s):');
    expect(stdout).toContain('summary over 1 cases (monai convention)');
    expect(stdout).toMatch(/Case_B\s+1\.0000\s+0\.00/);
  });

  it('adds BraTS 2023 lesion-wise scores with --lesion-wise, to the printout and the JSON', async () => {
    const out = path.join(dir, 'lesions.json');
    const { code, stdout } = await runCaptured(['evaluate', '--pred', path.join(dir, 'pred'), '--ref', path.join(dir, 'ref'), '--convention', 'brats', '--lesion-wise', '--out', out]);
    expect(code).toBe(2); // Case_C and Stray, as above
    expect(stdout).toContain('lesion-wise (BraTS-GLI: lesions within 3 dilation steps merged, lesions of 50 mm³ or less left out, 374 mm for a missed or stray lesion)');
    const json = JSON.parse(await fs.readFile(out, 'utf8'));
    expect(json.lesionWise).toEqual({ dilation: 3, minimumVolumeMm3: 50, penaltyMm: 374 });
    // One 64 mm³ lesion (4 x 4 x 2 voxels of 2 mm in k): found exactly in Case_A, shifted by a voxel in Case_B, whose one
    // lesion then scores what the whole region does.
    expect(json.cases[0].WT.lesionWise).toEqual({ dice: 1, hd95: 0, truePositives: 1, falsePositives: 0, falseNegatives: 0 });
    expect(json.cases[1].WT.lesionWise).toEqual({ dice: json.cases[1].WT.dice, hd95: json.cases[1].WT.hd95, truePositives: 1, falsePositives: 0, falseNegatives: 0 });
    // No core in either map: nothing to score, Dice 1 and HD95 0.
    expect(json.cases[1].TC.lesionWise).toEqual({ dice: 1, hd95: 0, truePositives: 0, falsePositives: 0, falseNegatives: 0 });
    expect(json.summary.WT.lesionWiseDice.mean).toBeCloseTo(0.875, 12);
    expect(stdout).toMatch(/Case_B\s+0\.7500\s+\S+\s+1\/0\/0/);
    // Another challenge by its short name; an unknown one is a usage error.
    await runCaptured(['evaluate', '--pred', path.join(dir, 'pred'), '--ref', path.join(dir, 'ref'), '--lesion-wise', 'met', '--out', out]);
    expect(JSON.parse(await fs.readFile(out, 'utf8')).lesionWise).toEqual({ dilation: 1, minimumVolumeMm3: 2, penaltyMm: 374 });
    const unknown = await runCaptured(['evaluate', '--pred', path.join(dir, 'pred'), '--ref', path.join(dir, 'ref'), '--lesion-wise', 'BraTS-XYZ']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe("error: --lesion-wise: 'BraTS-XYZ' is unknown; known: BraTS-GLI, BraTS-SSA, BraTS-PED, BraTS-MEN, BraTS-MET");
  });

  it('rejects bad options with exit code 1', async () => {
    expect((await runCaptured(['evaluate', '--pred', dir, '--ref', dir, '--regions', 'all'])).code).toBe(1);
    expect((await runCaptured(['evaluate', '--pred', dir])).code).toBe(1);
  });
});

const data = sharedDataDir();
describe.skipIf(!data)(`brats evaluate on real labels (${data ? 'present' : NO_SHARED_DATA})`, () => {
  it('a Decathlon label set scored against itself gives Dice 1 and HD95 0 in every region', async () => {
    const reference = path.join(data!, 'msd-task01-sample');
    const out = path.join(dir, 'self.json');
    const { code } = await runCaptured(['evaluate', '--pred', path.join(reference, 'labelsTr'), '--ref', reference, '--out', out]);
    expect(code).toBe(0);
    const json = JSON.parse(await fs.readFile(out, 'utf8'));
    expect(json.summary.WT.dice.mean).toBe(1);
    expect(json.summary.ET.hd95.mean).toBe(0);
    expect(json.cases).toHaveLength(2);
    expect(json.cases[0].WT.volumeMlReference).toBeGreaterThan(10);
  });
});

describe('brats evaluate and what a prediction folder says it holds', () => {
  it('refuses to score whole-tumour masks as TC and ET, and scores them as WT from predictions.json', async () => {
    // A brats predict folder of a whole-tumour model: 0/1 masks, predictions.json says labels "wt".
    const pred = path.join(dir, 'pred-wt');
    for (const id of ['Case_A', 'Case_B', 'Case_C']) await writeNifti(path.join(pred, `${id}.nii.gz`), createVolume('uint8', block(2, 1), shape, { affine }));
    await fs.writeFile(path.join(pred, 'predictions.json'), JSON.stringify({ labels: 'wt', regions: ['WT'], cases: [] }));
    const refused = await runCaptured(['evaluate', '--pred', pred, '--ref', path.join(dir, 'ref')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: ${pred} holds whole-tumour masks (0/1, as its predictions.json says): they cannot be scored as TC or ET; use --regions wt\n`);
    const scored = await runCaptured(['evaluate', '--pred', pred, '--ref', path.join(dir, 'ref'), '--regions', 'wt']);
    expect(scored.code, scored.stderr).toBe(0);
    expect(scored.stdout).toContain(`prediction labels: wt (from ${pred}/predictions.json)`);
    // Label 1 read as whole tumour: each case matches its reference block exactly.
    expect(scored.stdout).toMatch(/WT {2}Dice mean 1\.0000/);
  });
});
