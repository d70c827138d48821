// The shipped three-region model (@brats/model-brats-regions): a complete bundle, found by name, whose recorded
// validation and test figures (WT, TC and ET Dice and HD95, BraTS rules) come back through model.onnx on ONNX Runtime,
// and whose label maps an independent reader (nibabel) reads in the input's convention: 0/1/2/4 on BraTS 2018 scans,
// 0/1/2/3 on a BraTS 2023 phantom.
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest } from '@brats/io';
import { NO_SHARED_DATA, referencePython, repositoryRoot, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveModelArgument } from '../default-model.js';
import { runCaptured } from '../../test/run-captured.js';
import { tuneCopy } from '../../test/tune-copy.js';

const bundle = path.join(repositoryRoot, 'packages', 'model-brats-regions');
const REGIONS = ['WT', 'TC', 'ET'] as const;
const data = sharedDataDir();
const python = referencePython(['nibabel', 'numpy']);
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-pretrained-regions-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

type LesionFigures = { dice: number; hd95: number; truePositives: number; falsePositives: number; falseNegatives: number };
type RegionFigures = { dice: number; hd95: number; lesionWise: LesionFigures };
type EvaluationFile = { cases: Array<{ id: string } & Record<(typeof REGIONS)[number], RegionFigures>> };

/** The folder of case `id` in the shared data (BraTS 2018 sample or the extra cases). */
function caseFolder(id: string): string {
  for (const part of ['brats2018-sample', 'brats-extra']) {
    const folder = path.join(data!, part, id);
    if (existsSync(folder)) return folder;
  }
  throw new Error(`case ${id} is not in ${data}`);
}

// Reads a label map and its reference with nibabel and counts, independently of @brats/metrics, the labels, whether
// the grids agree, and the Dice of each BraTS region from the labels (WT: any tumour label; TC: core and enhancing;
// ET: enhancing), with the challenge's rule for empty masks (both empty: 1).
const READ_AND_SCORE = `
import json, sys
import nibabel as nib, numpy as np
et = int(sys.argv[3])
prediction, reference = nib.load(sys.argv[1]), nib.load(sys.argv[2])
p, r = np.asanyarray(prediction.dataobj), np.asanyarray(reference.dataobj)
def dice(a, b):
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total
regions = {"WT": lambda m: m > 0, "TC": lambda m: (m == 1) | (m == et), "ET": lambda m: m == et}
print(json.dumps({
  "labels": sorted(int(v) for v in np.unique(p)),
  "dtype": str(p.dtype),
  "sameGrid": list(p.shape) == list(r.shape) and bool(np.allclose(prediction.affine, reference.affine)),
  "dice": {name: dice(f(p), f(r)) for name, f in regions.items()},
}))
`;

// The recorded figures come from the pipeline's own scoring of model.onnx on ONNX Runtime on this machine. Another
// CPU may round some convolutions differently: a voxel whose probability lies within 1e-5 of its threshold can flip.
// One flipped voxel moves a region's Dice by at most 2 / (|reference| + |prediction|), under 1e-4 for every region
// of these cases with voxels in it; a wrong preprocessing, threshold or label mapping moves Dice by 1e-2 or more.
const DICE_TOLERANCE = 2e-4;
// A flipped voxel on the surface can move the 95th percentile of the surface distances to a neighbouring value.
const HD95_TOLERANCE_MM = 0.5;

describe('the pretrained regions model (@brats/model-brats-regions)', () => {
  it('is a complete three-region bundle, found by its package name, the default model, with post-processing chosen on validation', async () => {
    expect(await resolveModelArgument('@brats/model-brats-regions')).toBe(bundle);
    expect(await resolveModelArgument(undefined)).toBe(bundle);
    const manifest = await readModelManifest(bundle);
    expect(manifest.regions).toEqual([...REGIONS]);
    expect(manifest.model.outputChannels).toBe(3);
    expect(manifest.preprocessing.target).toBe('regions');
    expect(manifest.licence).toMatch(/BraTS/);
    expect(manifest.notes).toMatch(/brats pipeline/);
    const split = manifest.training!.split;
    // No case in two splits.
    const all = [...split.train, ...split.validation, ...split.testing];
    expect(new Set(all).size).toBe(all.length);
    expect(split.testing.length).toBeGreaterThanOrEqual(6);
    // Thresholds per region and the enhancing minimum, chosen on the validation cases.
    expect(Object.keys(manifest.inference!.thresholds!).sort()).toEqual(['ET', 'TC', 'WT']);
    expect(manifest.inference!.selection!.cases).toEqual(split.validation);
    expect(typeof manifest.inference!.minEnhancingVoxels).toBe('number');
    for (const file of [manifest.files.tfjs!, manifest.files.onnx!, 'validation-evaluation.json', 'test-evaluation.json', 'training-curves.png']) {
      expect(existsSync(path.join(bundle, file)), file).toBe(true);
    }
    for (const file of ['validation-evaluation.json', 'test-evaluation.json']) {
      const recorded = JSON.parse(await fs.readFile(path.join(bundle, file), 'utf8')) as EvaluationFile;
      for (const c of recorded.cases) for (const region of REGIONS) expect(Number.isFinite(c[region].dice), `${file} ${c.id} ${region}`).toBe(true);
    }
  });

  it.skipIf(!data).each([
    ['validation', 'validation-evaluation.json'],
    ['testing', 'test-evaluation.json'],
  ] as const)(
    `reproduces its recorded WT, TC and ET Dice and HD95, legacy and lesion-wise, through model.onnx on ONNX Runtime and brats evaluate: %s cases (${data ? 'present' : NO_SHARED_DATA})`,
    async (split, evaluationFile) => {
      const manifest = await readModelManifest(bundle);
      const recorded = JSON.parse(await fs.readFile(path.join(bundle, evaluationFile), 'utf8')) as EvaluationFile;
      const ids = manifest.training!.split[split];
      expect(recorded.cases.map((c) => c.id).sort()).toEqual([...ids].sort());
      const out = path.join(dir, `predicted-${split}`);
      const predicted = await runCaptured(['predict', ...ids.map(caseFolder), '--model', '@brats/model-brats-regions', '--out', out, '--engine', 'onnxruntime']);
      expect(predicted.code, predicted.stderr).toBe(0);
      expect(predicted.stdout).toMatch(/^engine: onnxruntime /m);
      expect(predicted.stdout).toMatch(/^post-processing: components under 200 voxels \(ET\) removed \(as the bundle chose on its validation cases\)$/m);
      // Real skull-stripped BraTS scans: no warning (the check for a scan with its skull stays quiet on them).
      expect(predicted.stderr).not.toMatch(/warning/);
      const reference = path.join(dir, `reference-${split}`);
      for (const id of ids) await fs.cp(caseFolder(id), path.join(reference, id), { recursive: true });
      const metrics = path.join(dir, `metrics-${split}.json`);
      const evaluated = await runCaptured(['evaluate', '--pred', out, '--ref', reference, '--regions', 'brats', '--convention', 'brats', '--lesion-wise', '--out', metrics]);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(evaluated.stdout).toContain(`prediction labels: brats2017 (from ${out}/predictions.json)`);
      const result = JSON.parse(await fs.readFile(metrics, 'utf8')) as EvaluationFile;
      for (const recordedCase of recorded.cases) {
        const scored = result.cases.find((c) => c.id === recordedCase.id)!;
        for (const region of REGIONS) {
          const label = `${recordedCase.id} ${region}`;
          expect(Math.abs(scored[region].dice - recordedCase[region].dice), `${label} Dice ${scored[region].dice}, ${recordedCase[region].dice} recorded`).toBeLessThanOrEqual(DICE_TOLERANCE);
          expect(Math.abs(scored[region].hd95 - recordedCase[region].hd95), `${label} HD95 ${scored[region].hd95}, ${recordedCase[region].hd95} recorded`).toBeLessThanOrEqual(HD95_TOLERANCE_MM);
          // Lesion-wise (BraTS-GLI): the same lesions found, missed and added, and the same scores.
          const lesions = scored[region].lesionWise;
          const recordedLesions = recordedCase[region].lesionWise;
          expect([lesions.truePositives, lesions.falsePositives, lesions.falseNegatives], `${label} lesions`).toEqual([recordedLesions.truePositives, recordedLesions.falsePositives, recordedLesions.falseNegatives]);
          expect(Math.abs(lesions.dice - recordedLesions.dice), `${label} lesion-wise Dice ${lesions.dice}, ${recordedLesions.dice} recorded`).toBeLessThanOrEqual(DICE_TOLERANCE);
          expect(Math.abs(lesions.hd95 - recordedLesions.hd95), `${label} lesion-wise HD95`).toBeLessThanOrEqual(HD95_TOLERANCE_MM);
        }
      }
      // The same Dice counted by nibabel and numpy from the label maps, which are BraTS 2017-2021 labels on the grid
      // of the reference.
      if (python === undefined) return;
      for (const recordedCase of recorded.cases) {
        const id = recordedCase.id;
        const read = runPythonJson<{ labels: number[]; dtype: string; sameGrid: boolean; dice: Record<string, number> }>(python, READ_AND_SCORE, [
          path.join(out, `${id}.nii.gz`),
          path.join(caseFolder(id), `${id}_seg.nii.gz`),
          '4',
        ]);
        expect(read.labels.every((label) => [0, 1, 2, 4].includes(label)), `${id}: labels ${read.labels}`).toBe(true);
        expect(read.dtype).toBe('uint8');
        expect(read.sameGrid).toBe(true);
        for (const region of REGIONS) expect(Math.abs(read.dice[region]! - recordedCase[region].dice), `${id} ${region} by nibabel`).toBeLessThanOrEqual(DICE_TOLERANCE);
      }
    },
    900_000,
  );

  it.skipIf(!data || !python)(
    `segments the part of BraTS2021_00006 outside the model's window: the window alone labels none of it and warns, the window beyond labels it and every region's Dice rises (${!data ? NO_SHARED_DATA : python ? 'present' : 'skipped: python3 with nibabel is needed'})`,
    async () => {
      const id = 'BraTS2021_00006';
      const extended = path.join(dir, 'window-extended');
      const alone = path.join(dir, 'window-alone');
      const withWindows = await runCaptured(['predict', caseFolder(id), '--model', bundle, '--out', extended, '--engine', 'onnxruntime']);
      expect(withWindows.code, withWindows.stderr).toBe(0);
      expect(withWindows.stdout).toContain(`${id}: predicted tumour reached the anterior (j-low) face(s) of the model's 144x144x144 window, with scan beyond: 1 more window(s) segmented it there`);
      const windowOnly = await runCaptured(['predict', caseFolder(id), '--model', bundle, '--out', alone, '--engine', 'onnxruntime', '--no-extend-window']);
      expect(windowOnly.code, windowOnly.stderr).toBe(0);
      expect(windowOnly.stderr).toContain(`warning: case ${id}: predicted tumour reaches the anterior (j-low) face(s) of the model's 144x144x144 window and the scan goes on beyond: that part was not segmented`);
      // Counted by nibabel and numpy: each region's voxels outside the centred window (i, j 48..191, k 5..148 of the
      // 240 x 240 x 155 grid) in the reference and in both predictions, and how many predicted ones the reference holds.
      const outside = runPythonJson<Record<string, { reference: number; fraction: number; extended: number; agreed: number; alone: number }>>(
        python!,
        `
import json, sys
import nibabel as nib, numpy as np
r, e, a = (np.asanyarray(nib.load(f).dataobj) for f in sys.argv[1:4])
window = np.zeros(r.shape, bool)
window[48:192, 48:192, 5:149] = True
regions = {"WT": lambda m: m > 0, "TC": lambda m: (m == 1) | (m == 4), "ET": lambda m: m == 4}
out = {}
for name, f in regions.items():
    ref, ext, alone = f(r) & ~window, f(e) & ~window, f(a) & ~window
    out[name] = {"reference": int(ref.sum()), "fraction": float(ref.sum() / f(r).sum()), "extended": int(ext.sum()), "agreed": int((ext & ref).sum()), "alone": int(alone.sum())}
print(json.dumps(out))
`,
        [path.join(caseFolder(id), `${id}_seg.nii.gz`), path.join(extended, `${id}.nii.gz`), path.join(alone, `${id}.nii.gz`)],
      );
      // The README's figures: 5.8 % of the whole tumour, 7.3 % of the core and 13.2 % of the enhancing tumour.
      expect([outside.WT!, outside.TC!, outside.ET!].map((region) => Math.round(region.fraction * 1000) / 10)).toEqual([5.8, 7.3, 13.2]);
      for (const region of REGIONS) {
        expect(outside[region]!.alone, region).toBe(0);
        // Most of what the windows beyond label there is tumour in the reference too.
        expect(outside[region]!.agreed / outside[region]!.extended, region).toBeGreaterThan(0.8);
      }
      const score = (folder: string) =>
        runPythonJson<{ dice: Record<string, number> }>(python!, READ_AND_SCORE, [path.join(folder, `${id}.nii.gz`), path.join(caseFolder(id), `${id}_seg.nii.gz`), '4']).dice;
      const [withBeyond, windowAlone] = [score(extended), score(alone)];
      for (const region of REGIONS) expect(withBeyond[region]!, `${region}: ${withBeyond[region]} with the window beyond, ${windowAlone[region]} alone`).toBeGreaterThan(windowAlone[region]! + 0.02);
    },
    600_000,
  );

  it.skipIf(!data || !python)(
    `segments a real case stored in other orientations (RAS, and sagittal PIR, turned by nibabel) to the labels of the case as BraTS stores it, voxel for voxel (${!data ? NO_SHARED_DATA : python ? 'present' : 'skipped: python3 with nibabel is needed'})`,
    async () => {
      const id = 'Brats18_CBICA_AQN_1';
      // nibabel turns every file of the case (images and reference) to each orientation, each voxel at its world position.
      const turned = runPythonJson<Record<string, string>>(
        python!,
        `
import json, os, sys
import nibabel as nib
source, out, case = sys.argv[1:4]
folders = {}
for codes in ("RAS", "PIR"):
    folder = os.path.join(out, codes, case)
    os.makedirs(folder, exist_ok=True)
    for name in sorted(os.listdir(source)):
        image = nib.load(os.path.join(source, name))
        transform = nib.orientations.ornt_transform(nib.io_orientation(image.affine), nib.orientations.axcodes2ornt(tuple(codes)))
        turned = image.as_reoriented(transform)
        assert "".join(nib.aff2axcodes(turned.affine)) == codes
        nib.save(turned, os.path.join(folder, name))
    folders[codes] = folder
print(json.dumps(folders))
`,
        [caseFolder(id), path.join(dir, 'oriented'), id],
      );
      const predict = async (folder: string, out: string) => {
        const run = await runCaptured(['predict', folder, '--model', bundle, '--out', out, '--engine', 'onnxruntime']);
        expect(run.code, run.stderr).toBe(0);
        return run;
      };
      await predict(caseFolder(id), path.join(dir, 'oriented-pred', 'LPS'));
      for (const codes of ['RAS', 'PIR'] as const) {
        const run = await predict(turned[codes]!, path.join(dir, 'oriented-pred', codes));
        expect(run.stdout).toMatch(new RegExp(`${id}: orientation ${codes} \\(voxel axes i, j, k toward [a-z, ]+\\) turned to the model's LPS`));
        // nibabel turns the prediction back to LPS: the same labels as the case stored as BraTS stores it, on the
        // turned scan's own grid, and scored against the turned reference, the same Dice.
        const compared = runPythonJson<{ differ: number; tumour: number; sameAffine: boolean; codes: string }>(
          python!,
          `
import json, sys
import nibabel as nib, numpy as np
lps, other, scan = (nib.load(f) for f in sys.argv[1:4])
back = other.as_reoriented(nib.orientations.ornt_transform(nib.io_orientation(other.affine), nib.orientations.axcodes2ornt(("L", "P", "S"))))
a, b = np.asanyarray(lps.dataobj), np.asanyarray(back.dataobj)
print(json.dumps({"differ": int((a != b).sum()), "tumour": int((a > 0).sum()), "sameAffine": bool(np.allclose(other.affine, scan.affine)), "codes": "".join(nib.aff2axcodes(other.affine))}))
`,
          [path.join(dir, 'oriented-pred', 'LPS', `${id}.nii.gz`), path.join(dir, 'oriented-pred', codes, `${id}.nii.gz`), path.join(turned[codes]!, `${id}_flair.nii.gz`)],
        );
        expect(compared, codes).toEqual({ differ: 0, tumour: compared.tumour, sameAffine: true, codes });
        expect(compared.tumour).toBeGreaterThan(10_000);
      }
    },
    600_000,
  );

  it.skipIf(!data)(
    `its post-processing choice (flips, components, per-region thresholds, smallest enhancing tumour, smallest component per region) is the one brats tune writes from the validation cases, figures included (${data ? 'present' : NO_SHARED_DATA})`,
    async () => {
      const { shipped, written: manifest } = await tuneCopy(bundle, path.join(dir, 'tuned'), data!);
      const record = shipped.inference!.selection!;
      const written = manifest.inference!;
      const choice = ({ tta, largestComponent, thresholds, componentRegions, minEnhancingVoxels, minComponentVoxels }: typeof written) => ({ tta, largestComponent, thresholds, componentRegions, minEnhancingVoxels, minComponentVoxels });
      expect(choice(written)).toEqual(choice(shipped.inference!));
      const close = (a: readonly number[], b: readonly number[], label: string) => a.forEach((value, index) => expect(Math.abs(value - b[index]!), label).toBeLessThanOrEqual(DICE_TOLERANCE));
      const final = written.selection!.innerComponentCandidates!;
      final.forEach((candidate, index) => {
        const recorded = record.innerComponentCandidates![index]!;
        expect([candidate.region, candidate.largestComponent]).toEqual([recorded.region, recorded.largestComponent]);
        close(candidate.perCase, recorded.perCase, `${candidate.region} largest component ${candidate.largestComponent}`);
      });
      // The last step, the smallest component kept per region, scored as recorded; the figures of each region's chosen
      // minimum are the bundle's recorded validation Dice and lesion-wise Dice (the means over the cases).
      const validation = JSON.parse(await fs.readFile(path.join(bundle, 'validation-evaluation.json'), 'utf8')) as {
        summary: Record<(typeof REGIONS)[number], { dice: { mean: number }; lesionWiseDice: { mean: number } }>;
      };
      for (const region of REGIONS) {
        const tried = written.selection!.componentMinimumCandidates![region]!;
        const recorded = record.componentMinimumCandidates![region]!;
        expect(tried.map((entry) => entry.minComponentVoxels)).toEqual(recorded.map((entry) => entry.minComponentVoxels));
        close(tried.map((entry) => entry.lesionWiseDice), recorded.map((entry) => entry.lesionWiseDice), `${region} smallest component, lesion-wise`);
        close(tried.map((entry) => entry.dice), recorded.map((entry) => entry.dice), `${region} smallest component`);
        const chosen = tried.find((entry) => entry.minComponentVoxels === (written.minComponentVoxels?.[region] ?? 0))!;
        expect(Math.abs(chosen.dice - validation.summary[region].dice.mean), `${region} Dice`).toBeLessThanOrEqual(DICE_TOLERANCE);
        expect(Math.abs(chosen.lesionWiseDice - validation.summary[region].lesionWiseDice.mean), `${region} lesion-wise Dice`).toBeLessThanOrEqual(DICE_TOLERANCE);
      }
    },
    600_000,
  );

  it.skipIf(!data || !python)(
    `the default model (no --model) is whichever scores the higher mean WT Dice on the regions model's validation cases, the incumbent on a tie (${!data ? NO_SHARED_DATA : python ? 'present' : 'skipped: python3 with nibabel is needed'})`,
    async () => {
      const manifest = await readModelManifest(bundle);
      const ids = manifest.training!.split.validation;
      const wtBundle = path.join(repositoryRoot, 'packages', 'model-brats2018-wt');
      // Neither model trained on these cases; both chose their post-processing on them (with, for the whole-tumour
      // model, the lower-grade case the regions model trains on).
      const wtTraining = (await readModelManifest(wtBundle)).training!.split.train;
      expect(ids.filter((id) => wtTraining.includes(id))).toEqual([]);
      const out = path.join(dir, 'wt-on-validation');
      const predicted = await runCaptured(['predict', ...ids.map(caseFolder), '--model', wtBundle, '--out', out, '--engine', 'onnxruntime']);
      expect(predicted.code, predicted.stderr).toBe(0);
      const scores: number[] = [];
      for (const id of ids) {
        const read = runPythonJson<{ dice: Record<string, number> }>(python!, READ_AND_SCORE, [path.join(out, `${id}.nii.gz`), path.join(caseFolder(id), `${id}_seg.nii.gz`), '4']);
        scores.push(read.dice.WT!);
      }
      const wtMean = scores.reduce((a, b) => a + b, 0) / scores.length;
      const recorded = JSON.parse(await fs.readFile(path.join(bundle, 'validation-evaluation.json'), 'utf8')) as { summary: { WT: { dice: { mean: number } } } };
      const regionsMean = recorded.summary.WT.dice.mean;
      // The figures reproduce to DICE_TOLERANCE per case across machines: a smaller difference is a tie, and a tie
      // keeps the model that is the default already (as brats tune keeps the simpler option on a tie).
      const winner = regionsMean > wtMean + DICE_TOLERANCE ? bundle : wtBundle;
      expect(await resolveModelArgument(undefined), `validation WT Dice: regions model ${regionsMean.toFixed(5)}, WT model ${wtMean.toFixed(5)}`).toBe(winner);
    },
    900_000,
  );

  it.skipIf(!python)(
    `writes BraTS 2023+ labels (0/1/2/3) for a phantom named as BraTS 2023 names its files, read by nibabel${python ? '' : ' (skipped: python3 with nibabel is needed)'}`,
    async () => {
      const phantoms = path.join(dir, 'phantom-2023');
      const synth = await runCaptured(['synth', '--layout', 'brats2023', '--cases', '1', '--out', phantoms, '--seed', '3']);
      expect(synth.code, synth.stderr).toBe(0);
      const [caseName] = await fs.readdir(phantoms, { withFileTypes: true }).then((entries) => entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name));
      const out = path.join(dir, 'predicted-2023');
      const run = await runCaptured(['predict', path.join(phantoms, caseName!), '--model', bundle, '--engine', 'onnxruntime', '--out', out]);
      expect(run.code, run.stderr).toBe(0);
      const predictions = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8')) as { labels: string; regions: string[] };
      expect(predictions.labels).toBe('brats2023');
      expect(predictions.regions).toEqual([...REGIONS]);
      const read = runPythonJson<{ labels: number[]; sameGrid: boolean; dice: Record<string, number> }>(python!, READ_AND_SCORE, [
        path.join(out, `${caseName}.nii.gz`),
        path.join(phantoms, caseName!, `${caseName}-seg.nii.gz`),
        '3',
      ]);
      // All three regions found, each with BraTS 2023's label, and the phantom's tumour segmented (WT Dice 0.89 here).
      expect(read.labels).toEqual([0, 1, 2, 3]);
      expect(read.sameGrid).toBe(true);
      expect(read.dice.WT).toBeGreaterThan(0.8);
    },
    300_000,
  );
});
