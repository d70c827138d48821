import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, readNifti } from '@brats/io';
import { NO_SHARED_DATA, repositoryRoot, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRETRAINED_PACKAGE, resolveModelArgument } from '../default-model.js';
import { runCaptured } from '../../test/run-captured.js';
import { tuneCopy } from '../../test/tune-copy.js';
import { wholeTumourDice } from '../../test/whole-tumour-dice.js';

const bundle = path.join(repositoryRoot, 'packages', 'model-brats2018-wt');
const data = sharedDataDir();
let dir: string;

/** The folder of case `id`: the BraTS 2018 sample or the extra cases. */
function caseFolder(id: string): string {
  for (const part of ['brats2018-sample', 'brats-extra']) {
    const folder = path.join(data!, part, id);
    if (existsSync(folder)) return folder;
  }
  throw new Error(`case ${id} is not in ${data}`);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-pretrained-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('the pretrained model (@brats/model-brats2018-wt)', () => {
  it('is a complete bundle that --model finds by its package name, and not the default model (the rule: pretrained-regions.test.ts)', async () => {
    expect(await resolveModelArgument('@brats/model-brats2018-wt')).toBe(bundle);
    expect(PRETRAINED_PACKAGE).toBe('@brats/model-brats-regions');
    expect(await resolveModelArgument(undefined)).not.toBe(bundle);
    // A folder is taken as given; a name that is neither a folder nor an installed package is a usage error.
    expect(await resolveModelArgument(bundle)).toBe(bundle);
    await expect(resolveModelArgument('@brats/no-such-model')).rejects.toThrow('--model @brats/no-such-model: no such folder, and no installed package of that name with a brats-model.json');
    const manifest = await readModelManifest(bundle);
    expect(manifest.training?.split.testing.length).toBeGreaterThan(0);
    expect(manifest.licence).toMatch(/BraTS/);
    for (const file of [manifest.files.tfjs!, manifest.files.onnx!, 'test-evaluation.json', 'training-curves.png']) {
      expect(existsSync(path.join(bundle, file)), file).toBe(true);
    }
  });

  it.skipIf(!data).each([
    ['validation', 'validation-evaluation.json'],
    ['testing', 'test-evaluation.json'],
  ] as const)(`reproduces its recorded Dice, legacy and lesion-wise, through the tfjs weights: %s cases (${data ? 'present' : NO_SHARED_DATA})`, async (split, evaluationFile) => {
    const manifest = await readModelManifest(bundle);
    const recorded = JSON.parse(await fs.readFile(path.join(bundle, evaluationFile), 'utf8'));
    const ids = manifest.training!.split[split];
    const inputs = ids.map(caseFolder);
    const out = path.join(dir, `tfjs-${split}`);
    const predicted = await runCaptured(['predict', ...inputs, '--model', bundle, '--out', out, '--engine', 'tfjs']);
    expect(predicted.code).toBe(0);
    // Score against the reference through `brats evaluate`, as the README's reproduction does.
    const reference = path.join(dir, `reference-${split}`);
    for (const id of ids) await fs.cp(caseFolder(id), path.join(reference, id), { recursive: true });
    const metrics = path.join(dir, `metrics-${split}.json`);
    const evaluated = await runCaptured(['evaluate', '--pred', out, '--ref', reference, '--pred-labels', 'wt', '--regions', 'wt', '--convention', 'brats', '--lesion-wise', '--out', metrics]);
    expect(evaluated.code).toBe(0);
    const result = JSON.parse(await fs.readFile(metrics, 'utf8'));
    expect(result.cases.map((c: { id: string }) => c.id)).toEqual(recorded.cases.map((c: { id: string }) => c.id));
    result.cases.forEach((c: { WT: { dice: number; lesionWise: { dice: number; truePositives: number; falsePositives: number; falseNegatives: number } } }, index: number) => {
      const recordedWt = recorded.cases[index].WT;
      expect(c.WT.dice).toBeCloseTo(recordedWt.dice, 6);
      // Lesion-wise (BraTS-GLI), recorded beside the whole-region figures.
      expect(c.WT.lesionWise.dice).toBeCloseTo(recordedWt.lesionWise.dice, 6);
      expect([c.WT.lesionWise.truePositives, c.WT.lesionWise.falsePositives, c.WT.lesionWise.falseNegatives]).toEqual([
        recordedWt.lesionWise.truePositives,
        recordedWt.lesionWise.falsePositives,
        recordedWt.lesionWise.falseNegatives,
      ]);
    });
    expect(result.summary.WT.dice.mean).toBeCloseTo(recorded.summary.WT.dice.mean, 6);
  }, 600_000);

  // The recorded figures come from the tfjs weights; model.onnx on ONNX Runtime must give the same per-case Dice.
  // The two engines' probabilities differ in the last digits only, so a voxel may flip where its probability lies
  // within a hair of the 0.5 threshold. One flipped voxel moves a case's Dice by at most 2 / (|reference| +
  // |prediction|), under 4e-5 for the smallest case here (CBICA_AQN: about 60,000 voxels in the two together), so a
  // few flips stay under DICE_TOLERANCE; a wrong preprocessing, layout or threshold moves Dice by 1e-2 or more.
  const DICE_TOLERANCE = 2e-4;

  it.skipIf(!data).each([
    ['validation', 'validation-evaluation.json'],
    ['testing', 'test-evaluation.json'],
  ] as const)(
    `reproduces its recorded per-case WT Dice through model.onnx on ONNX Runtime: %s cases (${data ? 'present' : NO_SHARED_DATA})`,
    async (split, evaluationFile) => {
      const manifest = await readModelManifest(bundle);
      expect(manifest.files.onnx).toBe('model.onnx');
      const recorded = JSON.parse(await fs.readFile(path.join(bundle, evaluationFile), 'utf8')) as { cases: Array<{ id: string; WT: { dice: number } }> };
      const ids = manifest.training!.split[split];
      expect(recorded.cases.map((c) => c.id).sort()).toEqual([...ids].sort());
      const out = path.join(dir, `onnxruntime-${split}`);
      const predicted = await runCaptured(['predict', ...ids.map(caseFolder), '--model', bundle, '--out', out, '--engine', 'onnxruntime']);
      expect(predicted.code, predicted.stderr).toBe(0);
      expect(predicted.stdout).toMatch(/^engine: onnxruntime /m);
      for (const { id, WT } of recorded.cases) {
        // Dice counted here from the two label maps, independently of @brats/metrics: WT is every non-zero label.
        const prediction = (await readNifti(path.join(out, `${id}.nii.gz`))).data;
        const reference = (await readNifti(path.join(caseFolder(id), `${id}_seg.nii.gz`))).data;
        expect(prediction.length).toBe(reference.length);
        const dice = wholeTumourDice(prediction, reference);
        expect(Math.abs(dice - WT.dice), `${id}: Dice ${dice} through ONNX Runtime, ${WT.dice} recorded`).toBeLessThanOrEqual(DICE_TOLERANCE);
      }
    },
    600_000,
  );

  it.skipIf(!data)(
    `its post-processing choice is the one brats tune writes from the validation cases, figures included (${data ? 'present' : NO_SHARED_DATA})`,
    async () => {
      const { shipped, written: manifest } = await tuneCopy(bundle, path.join(dir, 'tuned'), data!);
      const record = shipped.inference!.selection!;
      const written = manifest.inference!;
      expect({ tta: written.tta, largestComponent: written.largestComponent }).toEqual({ tta: shipped.inference!.tta, largestComponent: shipped.inference!.largestComponent });
      written.selection!.candidates.forEach((candidate, index) => {
        const recorded = record.candidates[index]!;
        expect({ tta: candidate.tta, largestComponent: candidate.largestComponent }).toEqual({ tta: recorded.tta, largestComponent: recorded.largestComponent });
        candidate.perCase.forEach((dice, c) => expect(Math.abs(dice - recorded.perCase[c]!)).toBeLessThanOrEqual(DICE_TOLERANCE));
      });
      // The chosen option's figures are the bundle's recorded validation Dice.
      const validation = JSON.parse(await fs.readFile(path.join(bundle, 'validation-evaluation.json'), 'utf8')) as { cases: Array<{ id: string; WT: { dice: number } }> };
      const chosen = written.selection!.candidates.find((candidate) => candidate.tta === written.tta && candidate.largestComponent === written.largestComponent)!;
      for (const { id, WT } of validation.cases) expect(Math.abs(chosen.perCase[record.cases.indexOf(id)]! - WT.dice)).toBeLessThanOrEqual(DICE_TOLERANCE);
    },
    600_000,
  );
});
