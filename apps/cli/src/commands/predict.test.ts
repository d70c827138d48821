import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createVolume, readModelManifest, readNifti, writeModelManifest, writeNifti, writePhantomDataset } from '@brats/io';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';
import { writePreparedBundle } from '@brats/unet/tf';
import { NO_SHARED_DATA, referencePython, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;

/** An untrained but real U-Net bundle: predictions are arbitrary, the pipeline around them is what is tested. */
async function writeBundle(bundle: string, crop: [number, number, number], outputChannels: 1 | 3): Promise<void> {
  await writeUntrainedBundle(bundle, { crop, filters: 2, depth: 1, dropout: 0, outputChannels });
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-predict-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases: 2, size: [40, 40, 20], seed: 2 });
  await writeBundle(path.join(dir, 'wt'), [32, 32, 16], 1);
  await writeBundle(path.join(dir, 'regions'), [32, 32, 16], 3);
  await writeBundle(path.join(dir, 'regions-onnx'), [32, 32, 16], 3);
  await exportBundleToOnnx(path.join(dir, 'regions-onnx'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const python = referencePython(['nibabel', 'numpy']);
const readWithNibabel = `
import sys, json, nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
print(json.dumps({"shape": list(img.shape), "affine": img.affine.tolist(), "dtype": str(img.get_data_dtype()),
  "values": sorted(int(v) for v in np.unique(np.asanyarray(img.dataobj)))}))`;

describe('brats predict', () => {
  it('refuses a scan with NaN voxels, naming the file and the count, unless --replace-non-finite says to zero them', async () => {
    const flair = await readNifti(path.join(dir, 'phantoms', 'Phantom_002', 'Phantom_002_flair.nii.gz'));
    const data = Float32Array.from(flair.data, Number);
    data[5] = Number.NaN;
    data[6] = Number.POSITIVE_INFINITY;
    const caseDir = path.join(dir, 'nan-case', 'Phantom_002');
    await fs.cp(path.join(dir, 'phantoms', 'Phantom_002'), caseDir, { recursive: true });
    const file = path.join(caseDir, 'Phantom_002_flair.nii.gz');
    await writeNifti(file, createVolume('float32', data, [40, 40, 20], { affine: flair.affine }));
    const refused = await runCaptured(['predict', '--model', path.join(dir, 'wt'), caseDir, '--out', path.join(dir, 'out-nan'), '--engine', 'tfjs']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`2 of 32000 voxels in the FLAIR image are NaN or infinite (the first at index 5, after scl_slope/scl_inter scaling); fix the file, or replace them with 0 explicitly (--replace-non-finite)`);
    const repaired = await runCaptured(['predict', '--model', path.join(dir, 'wt'), caseDir, '--out', path.join(dir, 'out-nan-zeroed'), '--engine', 'tfjs', '--replace-non-finite']);
    expect(repaired.code).toBe(0);
    expect(repaired.stderr).toContain(`warning: case Phantom_002: ${file}: 2 NaN or infinite voxel(s) in the FLAIR image set to 0, as asked\n`);
  });

  it('says what is odd about an input: extra 4D frames and blank channels, on stderr and in predictions.json', async () => {
    // A 4D scan with a fifth frame, and a copy whose T1w frame is blank.
    const flair = await readNifti(path.join(dir, 'phantoms', 'Phantom_001', 'Phantom_001_flair.nii.gz'));
    const n = flair.data.length;
    const frames = new Float32Array(n * 5);
    for (let f = 0; f < 5; f++) for (let v = 0; v < n; v++) frames[f * n + v] = f === 1 ? 0 : Number(flair.data[v]) + f;
    const scan = path.join(dir, 'five-frames.nii.gz');
    await writeNifti(scan, createVolume('float32', frames, [40, 40, 20, 5], { affine: flair.affine }));
    const out = path.join(dir, 'out-warnings');
    const { code, stderr } = await runCaptured(['predict', '--model', path.join(dir, 'wt'), scan, '--out', out, '--engine', 'tfjs']);
    expect(code).toBe(0);
    const expected = [
      `${scan}: has 5 frames; frames 0, 1, 2, 3 are read as FLAIR, T1w, T1gd, T2w and the other 1 are ignored`,
      `${scan}: T1w is constant (every voxel 0): it holds no image`,
    ];
    for (const warning of expected) expect(stderr).toContain(`warning: case five-frames: ${warning}\n`);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8')) as { cases: { id: string; warnings: string[] }[] };
    expect(summary.cases).toEqual([expect.objectContaining({ id: 'five-frames', warnings: expected })]);
  });


  it('writes label maps, figures, a report and per-case Dice for a labelled dataset', async () => {
    const out = path.join(dir, 'out-wt');
    const { code, stdout } = await runCaptured(['predict', '--model', path.join(dir, 'wt'), path.join(dir, 'phantoms'), '--out', out, '--figures', '--probabilities', '--engine', 'tfjs']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^engine: tfjs on /m);
    expect(stdout).toMatch(/^Phantom_001: WT \d+\.\d mL {2}Dice WT \d\.\d{4}$/m);
    const files = await fs.readdir(out);
    expect(files).toEqual(expect.arrayContaining(['Phantom_001.nii.gz', 'Phantom_002.nii.gz', 'Phantom_001_prob_WT.nii.gz', 'report.html', 'predictions.json', 'figures']));
    const figures = await fs.readdir(path.join(out, 'figures'));
    // Up to three slices through the tumour, at least 5 slices apart, and one overlay montage per case.
    const slices = figures.filter((name) => name.startsWith('Phantom_001-z'));
    expect(slices.length).toBeGreaterThanOrEqual(1);
    expect(slices.length).toBeLessThanOrEqual(3);
    expect(figures).toContain('Phantom_001-overlay.png');
    const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    for (const figure of figures) expect(html).toContain(`src="figures/${figure}"`);
    const summary = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8'));
    expect(summary.cases).toHaveLength(2);
    expect(summary.regions).toEqual(['WT']);
  });

  it.skipIf(!python)(`the label maps open in nibabel on the scan's grid${python ? '' : ' (skipped: Debian python3-nibabel missing)'}`, async () => {
    const out = path.join(dir, 'out-regions');
    const { code } = await runCaptured(['predict', '--model', path.join(dir, 'regions'), path.join(dir, 'phantoms', 'Phantom_002'), '--out', out]);
    expect(code).toBe(0);
    const scan = runPythonJson<{ shape: number[]; affine: number[][] }>(python!, readWithNibabel, [path.join(dir, 'phantoms', 'Phantom_002', 'Phantom_002_flair.nii.gz')]);
    const label = runPythonJson<{ shape: number[]; affine: number[][]; dtype: string; values: number[] }>(python!, readWithNibabel, [path.join(out, 'Phantom_002.nii.gz')]);
    expect(label.shape).toEqual(scan.shape);
    expect(label.affine).toEqual(scan.affine);
    expect(label.dtype).toBe('uint8');
    // A regions model writes BraTS 2017 labels for a BraTS 2017-layout input.
    expect(label.values.every((value) => [0, 1, 2, 4].includes(value))).toBe(true);
  });

  it('--jobs 2 (two cases in flight) writes the same bytes as one case at a time, and says where the time went', async () => {
    const outputs = [];
    for (const jobs of ['1', '2']) {
      const out = path.join(dir, `out-jobs-${jobs}`);
      const run = await runCaptured(['infer', '--model', path.join(dir, 'regions-onnx'), path.join(dir, 'phantoms'), '--out', out, '--jobs', jobs, '--probabilities']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^timing: 2 scan\(s\) in \d+\.\d s \(\d+\.\d\d scans\/s\); per scan: decode \d+\.\d\d s, preprocess \d+\.\d\d s, forward \d+\.\d\d s, post-process \d+\.\d\d s, write and score \d+\.\d\d s$/m);
      outputs.push(out);
    }
    for (const file of ['Phantom_001.nii.gz', 'Phantom_002.nii.gz', 'Phantom_001_prob_ET.nii.gz', 'Phantom_002_prob_WT.nii.gz']) {
      expect(Buffer.compare(await fs.readFile(path.join(outputs[0]!, file)), await fs.readFile(path.join(outputs[1]!, file))), file).toBe(0);
    }
    const bad = await runCaptured(['infer', '--model', path.join(dir, 'regions-onnx'), path.join(dir, 'phantoms'), '--out', path.join(dir, 'out-jobs-0'), '--jobs', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--jobs');
    const queued = await runCaptured(['predict', '--model', path.join(dir, 'regions-onnx'), path.join(dir, 'phantoms'), '--out', path.join(dir, 'out-jobs-q'), '--jobs', '2', '--queue', 'redis://127.0.0.1:1']);
    expect(queued.code).toBe(1);
    expect(queued.stderr.trim()).toBe('error: --jobs is for cases run in this process; with --queue, each brats worker sets its own --concurrency');
  });

  it('skips and reports an unreadable case, writes the others, and exits 2', async () => {
    const broken = path.join(dir, 'broken');
    await fs.cp(path.join(dir, 'phantoms'), broken, { recursive: true });
    await fs.writeFile(path.join(broken, 'Phantom_001', 'Phantom_001_t1.nii.gz'), 'not a nifti');
    const out = path.join(dir, 'out-broken');
    const { code, stderr } = await runCaptured(['predict', '--model', path.join(dir, 'wt'), broken, '--out', out]);
    expect(code).toBe(2);
    expect(stderr).toContain('case Phantom_001: ');
    expect(stderr).toContain('Phantom_001_t1.nii.gz');
    expect(await fs.readdir(out)).toEqual(expect.arrayContaining(['Phantom_002.nii.gz']));
    expect(await fs.readdir(out)).not.toContain('Phantom_001.nii.gz');
  });

  it('takes four modality files by role', async () => {
    const caseDir = path.join(dir, 'phantoms', 'Phantom_001');
    const roles = ['flair', 't1', 't1ce', 't2'].map((suffix, index) => `${['flair', 't1w', 't1gd', 't2w'][index]}=${path.join(caseDir, `Phantom_001_${suffix}.nii.gz`)}`);
    const out = path.join(dir, 'out-roles');
    expect((await runCaptured(['predict', '--model', path.join(dir, 'wt'), ...roles, '--out', out])).code).toBe(0);
    expect(await fs.readdir(out)).toContain('Phantom_001.nii.gz');
    expect((await runCaptured(['predict', '--model', path.join(dir, 'wt'), roles[0]!, '--out', out])).code).toBe(1);
  });

  it('applies the inference settings the bundle chose on validation unless told otherwise', async () => {
    const tuned = path.join(dir, 'wt-tuned');
    await fs.cp(path.join(dir, 'wt'), tuned, { recursive: true });
    const manifest = { ...(await readModelManifest(tuned)), inference: { tta: true, largestComponent: true } };
    await writeModelManifest(tuned, manifest);
    const input = path.join(dir, 'phantoms', 'Phantom_001');
    const byBundle = await runCaptured(['predict', '--model', tuned, input, '--out', path.join(dir, 'out-tuned'), '--engine', 'tfjs']);
    expect(byBundle.code).toBe(0);
    expect(byBundle.stdout).toMatch(/^post-processing: tta on, largest component on \(as the bundle chose on its validation cases\)$/m);
    const overridden = await runCaptured(['predict', '--model', tuned, input, '--no-tta', '--out', path.join(dir, 'out-untuned'), '--engine', 'tfjs']);
    expect(overridden.stdout).toMatch(/^post-processing: tta off, largest component on \(as the bundle chose on its validation cases\)$/m);
    const plain = await runCaptured(['predict', '--model', path.join(dir, 'wt'), input, '--largest-component', '--out', path.join(dir, 'out-plain'), '--engine', 'tfjs']);
    expect(plain.stdout).toMatch(/^post-processing: tta off, largest component on \(as asked\)$/m);
  });

  it('segments beyond the model window where the tumour reaches its edge, and with --no-extend-window only warns', async () => {
    // A bundle that calls every voxel of its 32 x 32 x 16 window tumour, on 40 x 40 x 20 phantoms: the tumour reaches
    // all six faces, and windows beyond them cover the rest of the scan.
    const everywhere = path.join(dir, 'wt-everywhere');
    await writePreparedBundle(everywhere, {
      crop: [32, 32, 16],
      filters: 2,
      depth: 1,
      dropout: 0,
      outputChannels: 1,
      prepare: (model) => {
        const output = model.layers[model.layers.length - 1]!;
        const [kernel, bias] = output.getWeights();
        output.setWeights([kernel!.mul(0), bias!.mul(0).add(8)]);
      },
    });
    const input = path.join(dir, 'phantoms', 'Phantom_001');
    const tumour = async (out: string): Promise<number> => {
      let voxels = 0;
      for (const value of (await readNifti(path.join(out, 'Phantom_001.nii.gz'))).data) if (value > 0) voxels++;
      return voxels;
    };
    const extended = await runCaptured(['predict', '--model', everywhere, input, '--out', path.join(dir, 'out-extended'), '--engine', 'tfjs']);
    expect(extended.code).toBe(0);
    expect(extended.stdout).toContain(
      "Phantom_001: predicted tumour reached the right (i-low), left (i-high), anterior (j-low), posterior (j-high), inferior (k-low), superior (k-high) face(s) of the model's 32x32x16 window, with scan beyond: 26 more window(s) segmented it there",
    );
    expect(await tumour(path.join(dir, 'out-extended'))).toBe(40 * 40 * 20);
    const alone = await runCaptured(['predict', '--model', everywhere, input, '--no-extend-window', '--out', path.join(dir, 'out-window'), '--engine', 'tfjs']);
    expect(alone.code).toBe(0);
    expect(alone.stderr).toContain(
      "warning: case Phantom_001: predicted tumour reaches the right (i-low), left (i-high), anterior (j-low), posterior (j-high), inferior (k-low), superior (k-high) face(s) of the model's 32x32x16 window and the scan goes on beyond: that part was not segmented (window extension is off)",
    );
    expect(await tumour(path.join(dir, 'out-window'))).toBe(32 * 32 * 16);
  });

  it('brats infer needs an exported model', async () => {
    const { code, stderr } = await runCaptured(['infer', '--model', path.join(dir, 'wt'), path.join(dir, 'phantoms'), '--out', path.join(dir, 'out-infer')]);
    expect(code).toBe(2);
    expect(stderr).toContain('has no model.onnx for the runtime engines; run brats export first');
  });
});

const data = sharedDataDir();
describe.skipIf(!data || !python)(`brats predict on a real scan (${data ? 'needs nibabel' : NO_SHARED_DATA})`, () => {
  it('writes a label map with the exact affine and shape of the real scan', async () => {
    const bundle = path.join(dir, 'seed-crop');
    await writeBundle(bundle, [144, 144, 144], 1);
    const out = path.join(dir, 'out-real');
    const caseDir = path.join(data!, 'brats2018-sample', 'Brats18_CBICA_AQN_1');
    expect((await runCaptured(['predict', '--model', bundle, caseDir, '--out', out, '--engine', 'tfjs'])).code).toBe(0);
    const scan = runPythonJson<{ shape: number[]; affine: number[][] }>(python!, readWithNibabel, [path.join(caseDir, 'Brats18_CBICA_AQN_1_flair.nii.gz')]);
    const label = runPythonJson<{ shape: number[]; affine: number[][] }>(python!, readWithNibabel, [path.join(out, 'Brats18_CBICA_AQN_1.nii.gz')]);
    expect(label.shape).toEqual([240, 240, 155]);
    expect(label.affine).toEqual(scan.affine);
  });
});
