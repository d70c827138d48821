import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError } from '../errors.js';
import { loadCase, openDataset } from '../layouts/dataset.js';
import { BRATS2017_LABELS, BRATS2023_LABELS, MSD_LABELS, convertLabels } from '../regions.js';
import { generatePhantom, phantomAffine } from './generate.js';
import { deriveCaseSeed } from './random.js';
import { createPhantomCaseId, writePhantomDataset, type PhantomLayout } from './dataset.js';

const python = referencePython(['nibabel', 'numpy']);
const SIZE = [48, 48, 32] as const;
const SEED = 17;

/** What nibabel sees in every .nii.gz under a folder: shape, dtype, affine, sum and distinct values of integer maps. */
const READ_FOLDER = `
import json, os, sys
import nibabel as nib, numpy as np
root = sys.argv[1]
out = {}
for folder, _, names in os.walk(root):
    for name in names:
        if not name.endswith('.nii.gz'):
            continue
        image = nib.load(os.path.join(folder, name))
        data = np.asanyarray(image.dataobj)
        entry = {'shape': list(data.shape), 'dtype': str(data.dtype), 'affine': image.affine.tolist(),
                 'sum': float(data.astype(np.float64).sum())}
        if data.dtype == np.uint8:
            entry['values'] = sorted(int(v) for v in np.unique(data))
        out[os.path.relpath(os.path.join(folder, name), root).replace(os.sep, '/')] = entry
print(json.dumps(out))
`;

interface NibabelEntry {
  shape: number[];
  dtype: string;
  affine: number[][];
  sum: number;
  values?: number[];
}

function sumOf(values: ArrayLike<number>): number {
  let sum = 0;
  for (let index = 0; index < values.length; index++) sum += values[index]!;
  return sum;
}

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-phantom-dataset-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe('createPhantomCaseId', () => {
  it.each([
    ['msd', 0, 'PHANTOM_001'],
    ['msd', 1233, 'PHANTOM_1234'],
    ['brats2018', 1, 'Phantom_002'],
    ['brats2017', 9, 'Phantom_010'],
    ['brats2023', 0, 'BraTS-PHA-00001-000'],
    ['brats2023', 41, 'BraTS-PHA-00042-000'],
  ] as const)('%s case %i is %s', (layout, index, id) => {
    expect(createPhantomCaseId(layout, index)).toBe(id);
  });
});

describe('writePhantomDataset', () => {
  const expected = [0, 1].map((index) => generatePhantom({ seed: deriveCaseSeed(SEED, index), size: SIZE }));
  const affine = phantomAffine(SIZE, [1, 1, 1]).map((row) => [...row]);

  it.each(['msd', 'brats2018', 'brats2023'] as const)('%s: the dataset reader finds every case and its labels', async (layout) => {
    const dir = path.join(root, `reader-${layout}`);
    const progress: string[] = [];
    const summary = await writePhantomDataset(dir, {
      layout,
      cases: 2,
      size: SIZE,
      seed: SEED,
      onProgress: (done, total, id) => progress.push(`${done}/${total} ${id}`),
    });
    expect(summary.caseIds).toEqual([createPhantomCaseId(layout, 0), createPhantomCaseId(layout, 1)]);
    expect(progress).toEqual([`1/2 ${summary.caseIds[0]}`, `2/2 ${summary.caseIds[1]}`]);
    const dataset = await openDataset(dir);
    expect(dataset.layout).toBe(layout === 'brats2018' ? 'brats2017' : layout);
    expect(dataset.cases.map((ref) => ref.id)).toEqual(summary.caseIds);
    const loaded = await loadCase(dataset.cases[1]!);
    expect(Array.from(loaded.channels[2].data.subarray(0, 5000))).toEqual(Array.from(expected[1]!.channels.T1gd.data.subarray(0, 5000)));
    const mapping = layout === 'msd' ? MSD_LABELS : layout === 'brats2023' ? BRATS2023_LABELS : BRATS2017_LABELS;
    expect(Array.from(loaded.labels!.data)).toEqual(Array.from(convertLabels(expected[1]!.labels.data, BRATS2017_LABELS, mapping)));
  });

  describe.skipIf(python === undefined)('read back by nibabel (Debian python)', () => {
    it('msd: dataset.json, 4D float32 images in FLAIR, T1w, T1gd, T2w order, uint8 labels 1/2/3', async () => {
      const dir = path.join(root, 'nibabel-msd');
      await writePhantomDataset(dir, { layout: 'msd', cases: 2, size: SIZE, seed: SEED });
      const index = JSON.parse(await fs.readFile(path.join(dir, 'dataset.json'), 'utf8')) as Record<string, unknown>;
      expect(Object.keys(index)).toEqual([
        'name', 'description', 'reference', 'licence', 'release', 'tensorImageSize', 'modality', 'labels',
        'numTraining', 'numTest', 'training', 'test',
      ]);
      expect(index.modality).toEqual({ 0: 'FLAIR', 1: 'T1w', 2: 't1gd', 3: 'T2w' });
      expect(index.numTraining).toBe(2);
      expect(index.training).toEqual([
        { image: './imagesTr/PHANTOM_001.nii.gz', label: './labelsTr/PHANTOM_001.nii.gz' },
        { image: './imagesTr/PHANTOM_002.nii.gz', label: './labelsTr/PHANTOM_002.nii.gz' },
      ]);
      const files = runPythonJson<Record<string, NibabelEntry>>(python!, READ_FOLDER, [dir]);
      expect(Object.keys(files).sort()).toEqual([
        'imagesTr/PHANTOM_001.nii.gz', 'imagesTr/PHANTOM_002.nii.gz', 'labelsTr/PHANTOM_001.nii.gz', 'labelsTr/PHANTOM_002.nii.gz',
      ]);
      for (const [n, phantom] of expected.entries()) {
        const image = files[`imagesTr/PHANTOM_00${n + 1}.nii.gz`]!;
        expect(image.shape).toEqual([48, 48, 32, 4]);
        expect(image.dtype).toBe('float32');
        expect(image.affine).toEqual(affine);
        const channels = phantom.channels;
        expect(image.sum).toBe(sumOf(channels.FLAIR.data) + sumOf(channels.T1w.data) + sumOf(channels.T1gd.data) + sumOf(channels.T2w.data));
        const label = files[`labelsTr/PHANTOM_00${n + 1}.nii.gz`]!;
        expect(label.shape).toEqual([48, 48, 32]);
        expect(label.dtype).toBe('uint8');
        expect(label.values).toEqual([0, 1, 2, 3]);
        expect(label.affine).toEqual(affine);
        expect(label.sum).toBe(sumOf(convertLabels(phantom.labels.data, BRATS2017_LABELS, MSD_LABELS)));
      }
      // Channel order: frame 3 (T2w) of the 4D file is the T2w volume.
      const frameSum = runPythonJson<number>(
        python!,
        'import sys, json, nibabel as nib, numpy as np; print(json.dumps(float(np.asanyarray(nib.load(sys.argv[1]).dataobj)[..., 3].astype(np.float64).sum())))',
        [path.join(dir, 'imagesTr/PHANTOM_001.nii.gz')],
      );
      expect(frameSum).toBe(sumOf(expected[0]!.channels.T2w.data));
    });

    it.each([
      ['brats2018', ['_flair', '_t1', '_t1ce', '_t2'], '_seg', [0, 1, 2, 4]],
      ['brats2023', ['-t2f', '-t1n', '-t1c', '-t2w'], '-seg', [0, 1, 2, 3]],
    ] as const)('%s: int16 images per sequence and a uint8 label map', async (layout, suffixes, labelSuffix, values) => {
      const dir = path.join(root, `nibabel-${layout}`);
      await writePhantomDataset(dir, { layout, cases: 2, size: SIZE, seed: SEED });
      const files = runPythonJson<Record<string, NibabelEntry>>(python!, READ_FOLDER, [dir]);
      expect(Object.keys(files)).toHaveLength(10);
      for (const [n, phantom] of expected.entries()) {
        const id = createPhantomCaseId(layout, n);
        const { FLAIR, T1w, T1gd, T2w } = phantom.channels;
        for (const [c, volume] of [FLAIR, T1w, T1gd, T2w].entries()) {
          const image = files[`${id}/${id}${suffixes[c]!}.nii.gz`]!;
          expect(image.shape).toEqual([48, 48, 32]);
          expect(image.dtype).toBe('int16');
          expect(image.affine).toEqual(affine);
          expect(image.sum).toBe(sumOf(volume.data));
        }
        const label = files[`${id}/${id}${labelSuffix}.nii.gz`]!;
        expect(label.dtype).toBe('uint8');
        expect(label.values).toEqual(values);
        expect(label.affine).toEqual(affine);
      }
    });
  });

  it('writes byte-identical files for the same seed and different ones for another seed', async () => {
    const write = async (name: string, seed: number): Promise<Buffer[]> => {
      const summary = await writePhantomDataset(path.join(root, name), { layout: 'brats2023', cases: 1, size: SIZE, seed });
      return Promise.all(summary.files.map((file) => fs.readFile(file)));
    };
    const [first, second, other] = [await write('same-a', 5), await write('same-b', 5), await write('other', 6)];
    expect(first).toHaveLength(5);
    first.forEach((bytes, n) => expect(bytes.equals(second[n]!)).toBe(true));
    expect(first[0]!.equals(other[0]!)).toBe(false);
  });

  it('writes unlabelled cases as a test set: msd imagesTs and a test list, BraTS folders without seg', async () => {
    const msd = await writePhantomDataset(path.join(root, 'unlabelled-msd'), { layout: 'msd', cases: 1, size: SIZE, labels: false });
    const index = JSON.parse(await fs.readFile(path.join(msd.directory, 'dataset.json'), 'utf8')) as Record<string, unknown>;
    expect(index.numTraining).toBe(0);
    expect(index.numTest).toBe(1);
    expect(index.test).toEqual(['./imagesTs/PHANTOM_001.nii.gz']);
    expect(await fs.readdir(msd.directory)).toEqual(['dataset.json', 'imagesTs']);
    const brats = await writePhantomDataset(path.join(root, 'unlabelled-brats'), { layout: 'brats2018', cases: 1, size: SIZE, labels: false });
    expect((await fs.readdir(path.join(brats.directory, 'Phantom_001'))).sort()).toEqual([
      'Phantom_001_flair.nii.gz', 'Phantom_001_t1.nii.gz', 'Phantom_001_t1ce.nii.gz', 'Phantom_001_t2.nii.gz',
    ]);
  });

  it.each([
    [{ layout: 'nifti' as PhantomLayout, cases: 1 }, 'layout'],
    [{ layout: 'msd' as const, cases: 0 }, 'cases'],
    [{ layout: 'msd' as const, cases: 2.5 }, 'cases'],
    [{ layout: 'msd' as const, cases: 1, seed: -3 }, 'seed'],
    [{ layout: 'msd' as const, cases: 1, compressionLevel: 10 }, 'compressionLevel'],
  ])('rejects %j naming %s, before writing anything', async (options, argument) => {
    const dir = path.join(root, `rejected-${argument}`);
    const error = await writePhantomDataset(dir, options).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).argument).toBe(argument);
    await expect(fs.stat(dir)).rejects.toThrow();
  });
});
