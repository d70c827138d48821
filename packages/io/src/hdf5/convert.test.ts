import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_SHARED_DATA, referencePython, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import { BratsError, DatasetError } from '../errors.js';
import { writeNifti } from '../nifti/write.js';
import { planReorientation } from '../orientation.js';
import { readNifti } from '../nifti/read.js';
import { createVolume, type Affine } from '../volume.js';
import { NAMED_SPLIT_METHOD, convertDataset } from './convert.js';
import { splitDatasetNames } from './format.js';
import { openSliceStore, type SliceStoreReader } from './reader.js';
import { SPLIT_NAMES, assignSplits } from './split.js';

const directory = mkdtempSync(path.join(os.tmpdir(), 'brats-convert-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const SHAPE = [20, 18, 10] as const;
const CASES = ['Case01', 'Case02', 'Case03', 'Case04', 'Case05', 'Case06'];

/** The geometry of BraTS files (LPS: i toward the left, j posterior, k superior) at `spacing`. */
function lps(spacing: readonly [number, number, number] = [1, 1, 1]): { affine: Affine } {
  return { affine: [[-spacing[0], 0, 0, 0], [0, -spacing[1], 0, 0], [0, 0, spacing[2], 0], [0, 0, 0, 1]] };
}

/** A tiny BraTS 2017 layout (LPS, as BraTS): deterministic int16 images and a label map with labels 1, 2, 4. */
async function makeDataset(
  root: string,
  ids: readonly string[],
  options: { unlabelled?: string; corrupt?: string; spacing?: (caseNumber: number) => [number, number, number] } = {},
): Promise<void> {
  const voxels = SHAPE[0] * SHAPE[1] * SHAPE[2];
  for (const [caseNumber, id] of ids.entries()) {
    const folder = path.join(root, id);
    mkdirSync(folder, { recursive: true });
    for (const [channel, suffix] of ['_flair', '_t1', '_t1ce', '_t2'].entries()) {
      const data = Int16Array.from({ length: voxels }, (_, n) => ((n * (7 + channel) + caseNumber * 31) % 97) + channel * 10);
      await writeNifti(path.join(folder, `${id}${suffix}.nii.gz`), createVolume('int16', data, SHAPE, lps(options.spacing?.(caseNumber))));
    }
    if (id === options.unlabelled) continue;
    const labels = new Uint8Array(voxels);
    const centre = (5 * SHAPE[1] + 9) * SHAPE[0] + 10;
    labels.fill(2, centre - 40, centre + 40);
    labels.fill(1, centre - 10, centre + 10);
    labels.fill(4, centre, centre + 4 + caseNumber);
    await writeNifti(path.join(folder, `${id}_seg.nii.gz`), createVolume('uint8', labels, SHAPE, lps(options.spacing?.(caseNumber))));
    if (id === options.corrupt) writeFileSync(path.join(folder, `${id}_t1.nii.gz`), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]));
  }
}

function readEverything(store: SliceStoreReader): Record<string, unknown> {
  const result: Record<string, unknown> = { metadata: store.metadata() };
  for (const split of store.splits) {
    const batch = store.readRange(split, 0, store.info(split).slices);
    result[split] = { shape: batch.shape, images: Array.from(batch.images), masks: Array.from(batch.masks), index: store.sliceIndex(split) };
  }
  return result;
}

const synthetic = path.join(directory, 'synthetic');
beforeAll(async () => {
  await makeDataset(synthetic, CASES);
});

describe('convertDataset on a small built dataset', () => {
  it('writes the same store with 0, 1 and 2 workers and when run twice', async () => {
    const contents: Record<string, unknown>[] = [];
    for (const [run, workers] of [0, 1, 2, 2].entries()) {
      const out = path.join(directory, `out-${run}.h5`);
      const summary = await convertDataset(synthetic, out, { crop: [16, 12, 8], workers, seed: 3, split: 0.5 });
      expect(summary.workers).toBe(workers);
      const store = await openSliceStore(out);
      try {
        contents.push(readEverything(store));
      } finally {
        store.close();
      }
    }
    expect(contents[1]).toEqual(contents[0]);
    expect(contents[2]).toEqual(contents[0]);
    expect(contents[3]).toEqual(contents[0]);
  });

  it('puts named validation and test cases where they are named, and records how the split was made', async () => {
    const out = path.join(directory, 'named.h5');
    const summary = await convertDataset(synthetic, out, { crop: [16, 12, 8], workers: 0, namedSplits: { validation: [CASES[1]!], testing: [CASES[0]!, CASES[3]!] } });
    expect(summary.splits).toEqual({ train: CASES.filter((_, n) => n !== 0 && n !== 1 && n !== 3), validation: [CASES[1]], testing: [CASES[0], CASES[3]] });
    const store = await openSliceStore(out);
    try {
      expect(store.attributes()['split_method']).toBe(NAMED_SPLIT_METHOD);
      expect(store.attributes()['split_seed']).toBeUndefined();
    } finally {
      store.close();
    }
    await expect(convertDataset(synthetic, path.join(directory, 'named-bad.h5'), { crop: 8, workers: 0, namedSplits: { testing: ['nobody'] } })).rejects.toThrow(/names case\(s\) the dataset does not have: nobody/);
    expect(existsSync(path.join(directory, 'named-bad.h5'))).toBe(false);
  });

  it('records the spacing its cases share, so that a model trained on the store is a model of that spacing', async () => {
    const spacings = [
      ['one mm', undefined, [1, 1, 1]],
      ['2 x 2 x 3 mm', () => [2, 2, 3], [2, 2, 3]],
    ] as const;
    for (const [name, spacing, expected] of spacings) {
      const root = path.join(directory, `spacing-${name.replace(/ /g, '-')}`);
      await makeDataset(root, CASES.slice(0, 3), spacing === undefined ? {} : { spacing: spacing as () => [number, number, number] });
      const out = path.join(root, 'store.h5');
      const summary = await convertDataset(root, out, { crop: 8, workers: 0, split: 0.5 });
      expect(summary.spacing, name).toEqual(expected);
      expect(summary.warnings, name).toEqual([]);
      const store = await openSliceStore(out);
      try {
        expect(store.attributes()['spacing'], name).toEqual(expected);
      } finally {
        store.close();
      }
    }
    // Cases that differ: none is recorded, and the warning names the first odd file and both spacings.
    const mixed = path.join(directory, 'spacing-mixed');
    await makeDataset(mixed, CASES.slice(0, 3), { spacing: (caseNumber) => (caseNumber === 2 ? [1, 1, 2] : [1, 1, 1]) });
    const summary = await convertDataset(mixed, path.join(mixed, 'store.h5'), { crop: 8, workers: 1, split: 0.5 });
    expect(summary.spacing).toBeUndefined();
    expect(summary.warnings).toEqual([
      {
        caseId: CASES[2],
        message: `${path.join(mixed, CASES[2]!, `${CASES[2]}_flair.nii.gz`)}: spacing 1 x 1 x 2 mm, but ${CASES[0]} has 1 x 1 x 1 mm: the store records no spacing, and a model trained on it is taken to be a 1 mm model; resample the scans to one spacing first`,
      },
    ]);
    const store = await openSliceStore(path.join(mixed, 'store.h5'));
    try {
      expect(store.attributes()['spacing']).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('warns, naming the file, of a case whose FLAIR fills more than a brain', async () => {
    // 3562 of the 3600 FLAIR voxels are non-zero; at 10 mm each is 1 mL: 3.6 L, more than a skull-stripped brain.
    const root = path.join(directory, 'unstripped');
    await makeDataset(root, CASES.slice(0, 2), { spacing: () => [10, 10, 10] });
    const summary = await convertDataset(root, path.join(root, 'store.h5'), { crop: 8, workers: 0, split: 0.5 });
    expect(summary.warnings.map(({ caseId }) => caseId)).toEqual(CASES.slice(0, 2));
    expect(summary.warnings[0]!.message).toBe(
      `${path.join(root, CASES[0]!, `${CASES[0]}_flair.nii.gz`)}: FLAIR is non-zero over 3.6 L, more than any skull-stripped brain (BraTS brains are 1.2 to 1.8 L, on a background of zeros): ` +
        'the scan may still have its skull, or a background that is not 0. Models learn skull-stripped brains: strip the skull first (e.g. with HD-BET or SynthStrip), or expect wrong label maps',
    );
  });

  it('turns a case stored in another orientation to LPS: the same slices as the case stored as BraTS stores it', async () => {
    const root = path.join(directory, 'orientation');
    await makeDataset(root, ['Case01', 'Case02']);
    // Case02 becomes Case01 stored sagittally (PIR), every file turned voxel for voxel, each voxel at its world position.
    const plan = planReorientation(SHAPE, lps().affine, 'PIR');
    for (const suffix of ['_flair', '_t1', '_t1ce', '_t2', '_seg']) {
      const volume = await readNifti(path.join(root, 'Case01', `Case01${suffix}.nii.gz`));
      const turned = createVolume(volume.dtype, plan.toTarget(volume.data), plan.shape, { affine: plan.affine });
      await writeNifti(path.join(root, 'Case02', `Case02${suffix}.nii.gz`), turned);
    }
    const out = path.join(root, 'store.h5');
    const summary = await convertDataset(root, out, { crop: 8, workers: 0, namedSplits: { validation: ['Case02'], testing: [] } });
    expect(summary.warnings).toEqual([
      {
        caseId: 'Case02',
        message: `${path.join(root, 'Case02', 'Case02_flair.nii.gz')}: orientation PIR (voxel axes i, j, k toward posterior, inferior, right) turned to LPS (voxel axes i, j, k toward left, posterior, superior) for the store (axes permuted and reversed, no interpolation)`,
      },
    ]);
    const store = await openSliceStore(out);
    try {
      expect(store.attributes()['orientation']).toBe('LPS');
      const train = store.readRange('train', 0, store.info('train').slices);
      const validation = store.readRange('validation', 0, store.info('validation').slices);
      expect(validation.shape).toEqual(train.shape);
      expect(Array.from(validation.images)).toEqual(Array.from(train.images));
      expect(Array.from(validation.masks)).toEqual(Array.from(train.masks));
    } finally {
      store.close();
    }
  });

  it('splits by case with the seeded draws, in dataset order, with every slice of a case together', async () => {
    const out = path.join(directory, 'split.h5');
    const progress: string[] = [];
    let seenDuringRun = false;
    const summary = await convertDataset(synthetic, out, {
      crop: [16, 12, 8],
      target: 'regions',
      workers: 2,
      seed: 3,
      split: { train: 0.5, validation: 0.25, testing: 0.25 },
      onCase: ({ done, caseId }) => {
        progress.push(`${done}:${caseId}`);
        seenDuringRun ||= existsSync(out);
      },
    });
    expect(progress).toEqual(CASES.map((id, n) => `${n + 1}:${id}`));
    expect(seenDuringRun).toBe(false);
    const expected = assignSplits(CASES.length, { seed: 3, fractions: { train: 0.5, validation: 0.25, testing: 0.25 } });
    for (const split of SPLIT_NAMES) expect(summary.splits[split]).toEqual(CASES.filter((_, n) => expected[n] === split));
    const store = await openSliceStore(out);
    try {
      for (const split of store.splits) {
        const index = store.sliceIndex(split)!;
        expect(index.caseIds).toEqual(summary.splits[split]);
        // 8 slices per case, cropped k window 1..8 of 10 (centre crop), all slices of a case consecutive
        expect(Array.from(index.sliceCase)).toEqual(index.caseIds.flatMap((_, c) => Array(8).fill(c)));
        expect(Array.from(index.sliceZ)).toEqual(index.caseIds.flatMap(() => [1, 2, 3, 4, 5, 6, 7, 8]));
        expect(store.info(split).maskShape.slice(1)).toEqual([16, 12, 3]);
      }
      const attributes = store.attributes();
      expect(attributes).toMatchObject({
        crop_size: [16, 12, 8],
        normalize: 'block',
        target: 'regions',
        mask_regions: ['WT', 'TC', 'ET'],
        split_seed: 3,
        split_fractions: [0.5, 0.25, 0.25],
        source_layout: 'brats2017',
        channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
      });
      expect(store.metadata()[splitDatasetNames('train').inputFiles]![0]).toMatch(/^Case\d\d\/Case\d\d_flair\.nii\.gz;Case\d\d\/Case\d\d_t1\.nii\.gz;/);
    } finally {
      store.close();
    }
  });

  it('leaves no file after an abort', async () => {
    const folder = path.join(directory, 'abort');
    mkdirSync(folder);
    const out = path.join(folder, 'out.h5');
    const controller = new AbortController();
    const run = convertDataset(synthetic, out, { crop: 8, workers: 2, signal: controller.signal, onCase: () => controller.abort() });
    await expect(run).rejects.toThrow(BratsError);
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(readdirSync(folder)).toEqual([]);
  });

  it('leaves no file under the target name when the process is killed mid-run', async () => {
    const folder = path.join(directory, 'killed');
    mkdirSync(folder);
    const out = path.join(folder, 'out.h5');
    // The child converts from these TypeScript sources, reports the first written case, then blocks until killed.
    const script = `
      import { register } from 'node:module';
      register(${JSON.stringify(new URL('./typescript-hooks.mjs', import.meta.url).href)});
      const { convertDataset } = await import(${JSON.stringify(new URL('./convert.ts', import.meta.url).href)});
      await convertDataset(${JSON.stringify(synthetic)}, ${JSON.stringify(out)}, { crop: 8, workers: 0, onCase: () => {
        process.stdout.write('case\\n');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
      } });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => resolve());
      void exited.then(() => reject(new Error(`child ended before writing a case: ${stderr}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false);
    const left = readdirSync(folder);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.out\.h5\..*\.partial$/);
  });

  it('reports an unreadable case as a DatasetError from a worker and writes nothing', async () => {
    const root = path.join(directory, 'corrupt');
    await makeDataset(root, ['Bad01', 'Bad02', 'Bad03'], { corrupt: 'Bad02' });
    const out = path.join(directory, 'corrupt-out', 'out.h5');
    const run = convertDataset(root, out, { crop: 8, workers: 2 });
    await expect(run).rejects.toThrow(DatasetError);
    await expect(run).rejects.toMatchObject({ caseId: 'Bad02' });
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });

  it('skips unlabelled cases and rejects a dataset with none labelled', async () => {
    const root = path.join(directory, 'unlabelled');
    await makeDataset(root, ['U01', 'U02'], { unlabelled: 'U02' });
    const summary = await convertDataset(root, path.join(directory, 'unlabelled.h5'), { crop: 8, workers: 0 });
    expect([summary.cases, summary.skippedUnlabelled]).toEqual([1, 1]);
    const none = path.join(directory, 'none-labelled');
    await makeDataset(none, ['N01'], { unlabelled: 'N01' });
    await expect(convertDataset(none, path.join(directory, 'none.h5'), { workers: 0 })).rejects.toThrow(DatasetError);
  });
});

const data = sharedDataDir();
const python = referencePython(['nibabel', 'h5py', 'numpy']);
describe.skipIf(!data || !python)(
  `real MSD cases against nibabel + numpy (${!data ? NO_SHARED_DATA : !python ? 'skipped: no Debian python3 with nibabel, h5py and numpy' : 'Debian python'})`,
  () => {
    it('h5py reads every dataset and the slices equal an independent crop and normalisation', async () => {
      const out = path.join(directory, 'msd.h5');
      const summary = await convertDataset(path.join(data!, 'msd-task01-sample'), out, { workers: 2 });
      expect(summary.cases).toBe(2);
      const script = `
import json, os, sys, h5py, numpy as np, nibabel as nib
store, root = sys.argv[1], sys.argv[2]
dataset = json.load(open(os.path.join(root, 'dataset.json')))
np.random.seed(816)
draws = np.random.random(len(dataset['training']))
result = {'datasets': {}, 'max_image_diff': 0.0, 'mask_mismatches': 0, 'train_cases': int((draws < 0.85).sum())}
with h5py.File(store, 'r') as f:
    for name, d in f.items():
        value = d[()]
        result['datasets'][name] = {'shape': list(d.shape), 'dtype': str(d.dtype)}
    row = 0
    for entry, draw in zip(dataset['training'], draws):
        if draw >= 0.85: continue
        image = np.asarray(nib.load(os.path.join(root, entry['image'])).get_fdata(), dtype=np.float64)
        label = np.asarray(nib.load(os.path.join(root, entry['label'])).dataobj)
        x, y, z = image.shape[:3]
        sx, sy, sz = x // 2 - 72, y // 2 - 72, z // 2 - 72
        block = image[sx:sx + 144, sy:sy + 144, sz:sz + 144, :]
        block = (block - block.mean(axis=(0, 1, 2))) / block.std(axis=(0, 1, 2))
        expected = np.transpose(block, (2, 0, 1, 3))
        mask = np.transpose(label[sx:sx + 144, sy:sy + 144, sz:sz + 144] > 0, (2, 0, 1))[..., None]
        ours = f['imgs_train'][row:row + 144]
        result['max_image_diff'] = max(result['max_image_diff'], float(np.abs(ours - expected).max()))
        result['mask_mismatches'] += int((f['msks_train'][row:row + 144] != mask).sum())
        result['tumour_match'] = bool(result.get('tumour_match', True) and (f['slice_tumour_voxels_train'][row:row + 144] == mask.sum(axis=(1, 2, 3))).all())
        row += 144
    result['rows'] = row
print(json.dumps(result))`;
      const result = runPythonJson(python!, script, [out, path.join(data!, 'msd-task01-sample')]) as {
        datasets: Record<string, { shape: number[]; dtype: string }>;
        max_image_diff: number;
        mask_mismatches: number;
        train_cases: number;
        tumour_match: boolean;
        rows: number;
      };
      expect(result.train_cases).toBe(summary.splits.train.length);
      expect(result.rows).toBe(summary.counts.train.slices);
      expect(result.rows).toBeGreaterThan(0);
      expect(result.max_image_diff).toBeLessThan(1e-5);
      expect(result.mask_mismatches).toBe(0);
      expect(result.tumour_match).toBe(true);
      expect(result.datasets.imgs_train).toEqual({ shape: [288, 144, 144, 4], dtype: 'float32' });
      expect(result.datasets.msks_train).toEqual({ shape: [288, 144, 144, 1], dtype: 'uint8' });
      for (const name of ['name', 'description', 'reference', 'license', 'release', 'tensorImageSize', 'modalities', 'training_input_files']) {
        expect(Object.keys(result.datasets)).toContain(name);
      }
    });
  },
);
