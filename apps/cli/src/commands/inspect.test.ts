import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertDataset, createVolume, inspectNifti, readNifti, writeNifti, writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_SHARED_DATA, referencePython, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-inspect-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats inspect', () => {
  it('summarises a label map as JSON with its label counts', async () => {
    const file = path.join(dir, 'seg.nii.gz');
    await writeNifti(file, createVolume('uint8', Uint8Array.from([0, 0, 0, 1, 2, 2, 4, 0]), [2, 2, 2], { spacing: [1, 1, 2] }));
    const { code, stdout } = await runCaptured(['inspect', file, '--json']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.shape).toEqual([2, 2, 2]);
    expect(summary.spacing).toEqual([1, 1, 2]);
    expect(summary.orientation).toBe('RAS');
    expect(summary.dtype).toBe('uint8');
    expect(summary.labelCounts).toEqual({ 0: 4, 1: 1, 2: 2, 4: 1 });
    expect(summary.range).toEqual({ min: 0, max: 4, mean: 9 / 8 });
    // 4 non-zero voxels of 2 uL each.
    expect(summary.nonZeroMl).toEqual([0.008]);
    expect(summary.fieldOfViewMl).toBe(0.016);
  });

  it('gives the non-zero volume of each frame of a 4D file, against the field of view', async () => {
    // 10 x 10 x 10 voxels of 2 mm (8 uL): 8 mL in all; frame 0 has 250 non-zero voxels, frame 1 all 1000.
    const data = new Int16Array(2000);
    data.fill(7, 0, 250);
    data.fill(3, 1000, 2000);
    const file = path.join(dir, 'two-frames.nii.gz');
    await writeNifti(file, createVolume('int16', data, [10, 10, 10, 2], { spacing: [2, 2, 2] }));
    const { stdout } = await runCaptured(['inspect', file, '--json']);
    expect(JSON.parse(stdout).nonZeroMl).toEqual([2, 8]);
    expect((await runCaptured(['inspect', file])).stdout).toContain('  non-zero    frames 2 mL, 8 mL, each of a 8 mL field of view\n');
    const large = path.join(dir, 'head.nii.gz');
    // 100 x 100 x 60 voxels of 1 x 1 x 2.5 mm, all non-zero: 1.5 L.
    await writeNifti(large, createVolume('uint8', new Uint8Array(600_000).fill(1), [100, 100, 60], { spacing: [1, 1, 2.5] }));
    expect((await runCaptured(['inspect', large])).stdout).toContain('  non-zero    1.50 L of a 1.50 L field of view\n');
  });

  it('prints a text summary', async () => {
    const file = path.join(dir, 'scan.nii');
    await writeNifti(file, createVolume('float32', Float32Array.from([0.5, 1.5]), [2, 1, 1]));
    const { code, stdout } = await runCaptured(['inspect', file]);
    expect(code).toBe(0);
    expect(stdout).toContain('shape       2 x 1 x 1');
    expect(stdout).toContain("orientation RAS (voxel axes i, j, k toward right, anterior, superior): segmentation turns it to its model's orientation (LPS for the shipped models, as BraTS)");
    expect(stdout).toContain('range       0.500000 .. 1.50000');
  });

  it('exits 1 for a usage error and 2 for bad input data, with one line', async () => {
    const missing = await runCaptured(['inspect', path.join(dir, 'nope.nii.gz')]);
    expect(missing.code).toBe(1);
    const bad = path.join(dir, 'bad.nii.gz');
    await fs.writeFile(bad, 'not a nifti file at all');
    const corrupt = await runCaptured(['inspect', bad]);
    expect(corrupt.code).toBe(2);
    expect(corrupt.stderr.trim().split('\n')).toEqual([`error: ${bad}: truncated header: 23 bytes, a NIfTI header needs at least 348`]);
    const unknown = await runCaptured(['inspect']);
    expect(unknown.code).toBe(1);
  });

  it('summarises an HDF5 slice store: splits, slice counts, parameters', async () => {
    await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'msd', cases: 2, size: [40, 40, 20], seed: 1 });
    const store = path.join(dir, 'slices.h5');
    await convertDataset(path.join(dir, 'phantoms'), store, { crop: [32, 32, 8], split: { train: 1, validation: 0, testing: 0 }, workers: 0 });
    const { code, stdout } = await runCaptured(['inspect', store, '--json']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.splits.train.slices).toBe(16);
    expect(summary.splits.train.imageShape).toEqual([16, 32, 32, 4]);
    expect(summary.parameters.crop_size).toEqual([32, 32, 8]);
    const text = await runCaptured(['inspect', store]);
    expect(text.stdout).toMatch(/^ {2}train {7}16 slices of 32x32x4/m);
  });

  it('reports a broken case of a dataset folder and exits 2', async () => {
    const root = path.join(dir, 'dataset');
    const caseDir = path.join(root, 'Case_1');
    await fs.mkdir(caseDir, { recursive: true });
    for (const suffix of ['_flair', '_t1', '_t1ce']) await writeNifti(path.join(caseDir, `Case_1${suffix}.nii.gz`), createVolume('int16', new Int16Array(8), [2, 2, 2]));
    const { code, stdout } = await runCaptured(['inspect', root, '--json']);
    expect(code).toBe(2);
    const summary = JSON.parse(stdout);
    expect(summary.layout).toBe('brats2017');
    expect(summary.problems).toHaveLength(1);
    expect(summary.problems[0]).toContain('case Case_1: ');
    expect(summary.problems[0]).toContain('Case_1_t2.nii.gz: missing file');
    expect(summary.warnings).toEqual([]);
  });

  it('lists what predict and convert would warn of, case by case, and exits 0', async () => {
    const root = path.join(dir, 'warned');
    await writePhantomDataset(root, { layout: 'brats2018', cases: 2, size: [40, 40, 20], seed: 3 });
    const ids = (await fs.readdir(root)).filter((name) => name.startsWith('Phantom')).sort();
    const t2 = path.join(root, ids[1]!, `${ids[1]}_t2.nii.gz`);
    await writeNifti(t2, createVolume('int16', new Int16Array(40 * 40 * 20), [40, 40, 20], { affine: (await readNifti(path.join(root, ids[1]!, `${ids[1]}_flair.nii.gz`))).affine }));
    const { code, stdout } = await runCaptured(['inspect', root, '--json']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    const warning = `${t2}: T2w is constant (every voxel 0): it holds no image`;
    expect(summary.warnings).toEqual([`case ${ids[1]}: ${warning}`]);
    expect(summary.cases.map((entry: { warnings?: string[] }) => entry.warnings)).toEqual([undefined, [warning]]);
    const text = await runCaptured(['inspect', root]);
    expect(text.stdout).toContain(`  warnings    1\n    - case ${ids[1]}: ${warning}\n`);
  });
});

const data = sharedDataDir();
const python = referencePython(['nibabel', 'numpy']);
describe.skipIf(!data)(`brats inspect on real samples (${data ? 'present' : NO_SHARED_DATA})`, () => {
  it.skipIf(!python)(`finds every real BraTS case a skull-stripped brain: no warning, FLAIR non-zero over 1.17 to 1.75 L, as nibabel counts${python ? '' : ' (skipped: Debian python3-nibabel is not installed)'}`, async () => {
    const flairs: string[] = [];
    for (const folder of ['brats2018-sample', 'brats-extra']) {
      const { code, stdout } = await runCaptured(['inspect', path.join(data!, folder), '--json']);
      expect(code).toBe(0);
      const summary = JSON.parse(stdout);
      expect([folder, summary.warnings]).toEqual([folder, []]);
      for (const entry of summary.cases as { id: string }[]) {
        const names = await fs.readdir(path.join(data!, folder, entry.id));
        flairs.push(path.join(data!, folder, entry.id, names.find((name) => /_flair\.nii(\.gz)?$/.test(name))!));
      }
    }
    expect(flairs).toHaveLength(26);
    const ours = await Promise.all(flairs.map(async (file) => (await inspectNifti(file)).nonZeroMl[0]!));
    const script = [
      'import json, sys, nibabel as nib, numpy as np',
      'out = []',
      'for f in sys.argv[1:]:',
      '    im = nib.load(f)',
      '    out.append(float(np.count_nonzero(np.asanyarray(im.dataobj)) * np.prod(im.header.get_zooms()[:3]) / 1000))',
      'print(json.dumps(out))',
    ].join('\n');
    const theirs = runPythonJson(python!, script, flairs) as number[];
    ours.forEach((millilitres, index) => expect([flairs[index], millilitres]).toEqual([flairs[index], expect.closeTo(theirs[index]!, 6)]));
    // The range MAX_BRAIN_ML (2.5 L) is set above, as its comment says.
    expect([Math.min(...ours), Math.max(...ours)].map((value) => Math.round(value / 10) / 100)).toEqual([1.17, 1.75]);
  }, 300_000);

  it('finds the Decathlon layout, its two labelled cases and label set', async () => {
    const { code, stdout } = await runCaptured(['inspect', path.join(data!, 'msd-task01-sample'), '--json']);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.layout).toBe('msd');
    expect(summary.labelledCount).toBe(2);
    expect(summary.cases[0].shape).toEqual([240, 240, 155]);
    expect(summary.cases[0].labels).toEqual([0, 1, 2, 3]);
    expect(summary.problems).toEqual([]);
    // Skull-stripped brains on zeros, every channel an image: nothing to warn of.
    expect(summary.warnings).toEqual([]);
  });
});
