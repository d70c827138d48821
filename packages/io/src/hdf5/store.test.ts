import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError, ShapeMismatchError } from '../errors.js';
import { SliceStoreError } from './errors.js';
import { inspectSliceStore } from './inspect.js';
import { openSliceStore } from './reader.js';
import { writeSliceStore, type SliceStoreCase } from './writer.js';

const directory = mkdtempSync(path.join(os.tmpdir(), 'brats-store-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const geometry = { height: 3, width: 2, channels: 2, maskChannels: 1 };

/** Image value = caseNumber * 1000 + z * 100 + flat index within the slice (exact in float32). */
function makeCase(id: string, caseNumber: number, depth: number, tumourSlices: readonly number[]): SliceStoreCase {
  const sliceLength = geometry.height * geometry.width * geometry.channels;
  const image = Float32Array.from({ length: depth * sliceLength }, (_, n) => caseNumber * 1000 + Math.floor(n / sliceLength) * 100 + (n % sliceLength));
  const mask = new Uint8Array(depth * geometry.height * geometry.width);
  // tumour in slice z: its first z + 1 pixels
  for (const z of tumourSlices) mask.fill(1, z * 6, z * 6 + z + 1);
  return { id, shape: [depth, 3, 2, 2], image, mask, firstZ: 10, inputFiles: [`${id}_flair.nii.gz`, `${id}_t1.nii.gz`], labelFile: `${id}_seg.nii.gz`, params: { cropStart: [1, 2, 10] } };
}

const storePath = path.join(directory, 'small.h5');
const written = writeSliceStore(
  storePath,
  {
    geometry,
    metadata: { name: 'Tiny', description: 'hand-made', licence: 'CC-BY-SA 4.0', modalities: ['FLAIR', 'T1w'] },
    attributes: { crop_size: [3, 2, 4], normalize: 'block', split_seed: 816, split_fractions: [0.85, 0.075, 0.075], channels: ['FLAIR', 'T1w'] },
  },
  async (writer) => {
    writer.appendCase('train', makeCase('A', 1, 4, [1, 2]));
    writer.appendCase('validation', makeCase('B', 2, 2, []));
    writer.appendCase('train', makeCase('C', 3, 3, [0]));
    return writer.counts;
  },
);

describe('writeSliceStore + openSliceStore', () => {
  it('counts what it wrote', async () => {
    expect(await written).toEqual({ train: { cases: 2, slices: 7 }, validation: { cases: 1, slices: 2 }, testing: { cases: 0, slices: 0 } });
  });

  it('reads single slices, batches in any order, and batches in sequence', async () => {
    await written;
    const store = await openSliceStore(storePath);
    try {
      expect(store.splits).toEqual(['train', 'validation', 'testing']);
      expect(store.info('train')).toMatchObject({ slices: 7, imageShape: [7, 3, 2, 2], maskShape: [7, 3, 2, 1], imageDtype: '<f', maskDtype: '<B' });
      // train slice 5 is case C (number 3), z 1
      const slice = store.readSlice('train', 5);
      expect(Array.from(slice.image)).toEqual(Array.from({ length: 12 }, (_, n) => 3100 + n));
      expect(Array.from(slice.mask)).toEqual([0, 0, 0, 0, 0, 0]);
      const batch = store.readBatch('train', [6, 1, 2, 1]);
      expect(batch.shape).toEqual([4, 3, 2, 2]);
      expect([0, 1, 2, 3].map((b) => batch.images[b * 12])).toEqual([3200, 1100, 1200, 1100]);
      expect(Array.from(batch.masks.subarray(6, 12))).toEqual([1, 1, 0, 0, 0, 0]);
      const starts = [...store.iterateBatches('train', 3)].map((b) => [b.indices[0], b.shape[0], b.images[0]]);
      expect(starts).toEqual([
        [0, 3, 1000],
        [3, 3, 1300],
        [6, 1, 3200],
      ]);
      expect(store.readRange('testing', 0, 0).shape).toEqual([0, 3, 2, 2]);
    } finally {
      store.close();
    }
  });

  it('keeps a per-slice index, metadata and every parameter', async () => {
    await written;
    const store = await openSliceStore(storePath);
    try {
      const index = store.sliceIndex('train')!;
      expect(index.caseIds).toEqual(['A', 'C']);
      expect(Array.from(index.sliceCase)).toEqual([0, 0, 0, 0, 1, 1, 1]);
      expect(Array.from(index.sliceZ)).toEqual([10, 11, 12, 13, 10, 11, 12]);
      expect(Array.from(index.tumourVoxels)).toEqual([0, 2, 3, 0, 1, 0, 0]);
      expect(Array.from(store.tumourSlices('train'))).toEqual([1, 2, 4]);
      expect(Array.from(store.tumourSlices('train', 2))).toEqual([1, 2]);
      const metadata = store.metadata();
      expect(metadata.name).toEqual(['Tiny']);
      expect(metadata.license).toEqual(['CC-BY-SA 4.0']);
      expect(metadata.modalities).toEqual(['FLAIR', 'T1w']);
      expect(metadata.training_input_files).toEqual(['A_flair.nii.gz;A_t1.nii.gz', 'C_flair.nii.gz;C_t1.nii.gz']);
      expect(metadata.validation_label_files).toEqual(['B_seg.nii.gz']);
      expect(metadata.testing_input_files).toEqual([]);
      expect(store.attributes()).toEqual({
        format: 'brats-slice-store',
        format_version: 1,
        crop_size: [3, 2, 4],
        normalize: 'block',
        split_seed: 816,
        split_fractions: [0.85, 0.075, 0.075],
        channels: ['FLAIR', 'T1w'],
      });
    } finally {
      store.close();
    }
  });

  it('summarises the store for inspect', async () => {
    await written;
    const summary = await inspectSliceStore(storePath);
    expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
    expect(summary.format).toBe('brats-slice-store');
    expect(summary.splits.train).toMatchObject({ slices: 7, cases: 2, tumourSlices: 3, tumourSliceFraction: 3 / 7, hasSliceIndex: true });
    expect(summary.splits.validation).toMatchObject({ slices: 2, cases: 1, tumourSlices: 0, tumourSliceFraction: 0 });
    expect(summary.splits.testing).toMatchObject({ slices: 0, cases: 0, tumourSliceFraction: 0 });
    expect(summary.datasets.find((d) => d.name === 'imgs_train')).toEqual({ name: 'imgs_train', shape: [7, 3, 2, 2], dtype: '<f' });
    expect(summary.parameters.split_seed).toBe(816);
    expect(summary.metadata.name).toBe('Tiny');
  });

  it('rejects bad arguments with the exact error class', async () => {
    await written;
    const store = await openSliceStore(storePath);
    try {
      expect(() => store.readSlice('train', 7)).toThrow(ArgumentError);
      expect(() => store.readBatch('validation', [0, -1])).toThrow(ArgumentError);
      expect(() => store.iterateBatches('train', 0).next()).toThrow(ArgumentError);
    } finally {
      store.close();
    }
    expect(() => store.readSlice('train', 0)).toThrow(SliceStoreError);
    await expect(openSliceStore(path.join(directory, 'missing.h5'))).rejects.toThrow(SliceStoreError);
    const notHdf5 = path.join(directory, 'not.h5');
    writeFileSync(notHdf5, 'this is not HDF5');
    await expect(openSliceStore(notHdf5)).rejects.toThrow(SliceStoreError);
  });
});

describe('atomic writing', () => {
  it('shows no file under the target while writing, and none after a failure', async () => {
    const target = path.join(directory, 'atomic', 'out.h5');
    const failure = new Error('decoder crashed');
    let seenDuringWrite: boolean | undefined;
    await expect(
      writeSliceStore(target, { geometry }, async (writer) => {
        writer.appendCase('train', makeCase('A', 1, 2, []));
        seenDuringWrite = existsSync(target);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(seenDuringWrite).toBe(false);
    expect(readdirSync(path.dirname(target))).toEqual([]);
  });

  it("removes what a killed earlier run left behind, and keeps a live writer's temporary file", async () => {
    const target = path.join(directory, 'killed', 'out.h5');
    mkdirSync(path.dirname(target), { recursive: true });
    // A pid that surely ran and ended (a finished child), and one that runs (a sleeping child).
    const ended = spawnSync(process.execPath, ['-e', '']).pid!;
    const live = spawn('sleep', ['30']);
    try {
      const stale = path.join(path.dirname(target), `.out.h5.${ended}.0badc0de.partial`);
      const working = path.join(path.dirname(target), `.out.h5.${live.pid}.0123abcd.partial`);
      writeFileSync(stale, 'half a store');
      writeFileSync(working, 'another writer at work');
      await writeSliceStore(target, { geometry }, async (writer) => writer.appendCase('train', makeCase('A', 1, 2, [])));
      expect(readdirSync(path.dirname(target)).sort()).toEqual([path.basename(working), 'out.h5'].sort());
    } finally {
      live.kill();
    }
  });

  it('rejects a case whose slices do not match the store', async () => {
    const target = path.join(directory, 'mismatch.h5');
    const wrong = { ...makeCase('A', 1, 2, []), shape: [2, 2, 3, 2] as const };
    await expect(writeSliceStore(target, { geometry }, async (writer) => writer.appendCase('train', wrong))).rejects.toThrow(ShapeMismatchError);
    expect(existsSync(target)).toBe(false);
  });
});

const python = referencePython(['h5py', 'numpy']);
describe.skipIf(!python)(`h5py interop (${python ? 'Debian h5py' : 'skipped: no Debian python3 with h5py and numpy'})`, () => {
  it('h5py reads every dataset of our store', async () => {
    await written;
    const script = `
import json, sys, h5py, numpy as np
out = {}
with h5py.File(sys.argv[1], 'r') as f:
    for name, d in f.items():
        value = d[()]
        entry = {'shape': list(d.shape), 'dtype': str(d.dtype), 'chunks': list(d.chunks) if d.chunks else None,
                 'compression': d.compression, 'maxshape': [m for m in d.maxshape]}
        if d.dtype.kind == 'O':
            entry['value'] = [v.decode() if isinstance(v, bytes) else v for v in np.atleast_1d(value).tolist()]
        else:
            entry['sum'] = float(np.asarray(value, dtype=np.float64).sum())
        out[name] = entry
    out['@attrs'] = {k: (v.tolist() if hasattr(v, 'tolist') else v) for k, v in f.attrs.items()}
    out['@slice'] = f['imgs_train'][5].tolist()
print(json.dumps(out))`;
    const result = runPythonJson(python!, script, [storePath]) as Record<string, Record<string, unknown>>;
    expect(result.imgs_train).toMatchObject({ shape: [7, 3, 2, 2], dtype: 'float32', chunks: [1, 3, 2, 2], compression: 'gzip', maxshape: [null, 3, 2, 2] });
    expect(result.msks_train).toMatchObject({ shape: [7, 3, 2, 1], dtype: 'uint8', chunks: [1, 3, 2, 1], compression: 'gzip', sum: 6 });
    expect(result.imgs_testing).toMatchObject({ shape: [0, 3, 2, 2], maxshape: [null, 3, 2, 2] });
    // sum over case A (4 slices) and C (3 slices): Σ (base + z*100) * 12 + Σ 0..11 per slice
    const sliceSum = (base: number) => base * 12 + 66;
    const expectedSum = [1000, 1100, 1200, 1300, 3000, 3100, 3200].reduce((total, base) => total + sliceSum(base), 0);
    expect(result.imgs_train!.sum).toBe(expectedSum);
    expect(result.slice_z_train).toMatchObject({ dtype: 'int32', sum: 10 + 11 + 12 + 13 + 10 + 11 + 12 });
    expect(result.slice_tumour_voxels_train).toMatchObject({ sum: 6 });
    expect(result.cases_train!.value).toEqual(['A', 'C']);
    expect(result.name!.value).toEqual(['Tiny']);
    expect(result.training_label_files!.value).toEqual(['A_seg.nii.gz', 'C_seg.nii.gz']);
    expect(result['@attrs']).toMatchObject({ split_seed: 816, normalize: 'block', crop_size: [3, 2, 4], format: 'brats-slice-store' });
    expect((result['@slice'] as unknown as number[][][]).flat(2)).toEqual(Array.from({ length: 12 }, (_, n) => 3100 + n));
    const expectedNames = ['imgs', 'msks', 'cases', 'case_params', 'slice_case', 'slice_z', 'slice_tumour_voxels'].flatMap((prefix) =>
      ['train', 'validation', 'testing'].map((split) => `${prefix}_${split}`),
    );
    for (const name of expectedNames) expect(Object.keys(result), name).toContain(name);
  });

  it('writes uncompressed chunks at level 0', async () => {
    const target = path.join(directory, 'level0.h5');
    await writeSliceStore(target, { geometry, compressionLevel: 0 }, async (writer) => writer.appendCase('testing', makeCase('Z', 4, 2, [1])));
    const script = `
import json, sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    print(json.dumps({'compression': f['imgs_testing'].compression, 'chunks': list(f['imgs_testing'].chunks), 'first': float(f['imgs_testing'][1, 0, 0, 0])}))`;
    expect(runPythonJson(python!, script, [target])).toEqual({ compression: null, chunks: [1, 3, 2, 2], first: 4100 });
  });

  it('opens a file written by h5py with the seed names and float64', async () => {
    const seedPath = path.join(directory, 'seed.h5');
    const script = `
import json, sys, h5py, numpy as np
rng = np.random.default_rng(3)
imgs = rng.normal(size=(5, 4, 4, 4))
msks = np.zeros((5, 4, 4, 1)); msks[1, 0, 0, 0] = 1.0; msks[3, 2:4, 1, 0] = 1.0
with h5py.File(sys.argv[1], 'w') as f:
    dt = h5py.special_dtype(vlen=str)
    for key, value in [('name', 'BRATS'), ('description', 'Gliomas'), ('license', 'CC-BY-SA 4.0')]:
        d = f.create_dataset(key, (1,), dtype=dt); d[:] = value
    d = f.create_dataset('training_input_files', (2,), dtype=dt); d[:] = ['./imagesTr/BRATS_001.nii.gz', './imagesTr/BRATS_002.nii.gz']
    f.create_dataset('imgs_train', data=imgs, maxshape=(None, 4, 4, 4), dtype=float, compression='gzip')
    f.create_dataset('msks_train', data=msks, maxshape=(None, 4, 4, 1), dtype=float, compression='gzip')
    f.create_dataset('imgs_validation', data=imgs[:2], maxshape=(None, 4, 4, 4), dtype=float)
    f.create_dataset('msks_validation', data=msks[:2], maxshape=(None, 4, 4, 1), dtype=float)
print(json.dumps({'slice3': imgs[3].astype(np.float32).ravel().tolist()}))`;
    const expected = runPythonJson(python!, script, [seedPath]) as { slice3: number[] };
    const store = await openSliceStore(seedPath);
    try {
      expect(store.splits).toEqual(['train', 'validation']);
      expect(store.info('train')).toMatchObject({ slices: 5, imageDtype: '<d', maskDtype: '<d' });
      const slice = store.readSlice('train', 3);
      expect(slice.image).toBeInstanceOf(Float32Array);
      expect(Array.from(slice.image)).toEqual(expected.slice3);
      expect(slice.mask).toBeInstanceOf(Uint8Array);
      expect(slice.mask.reduce((a, b) => a + b, 0)).toBe(2);
      expect(store.sliceIndex('train')).toBeUndefined();
      expect(Array.from(store.tumourSlices('train'))).toEqual([1, 3]);
      expect(store.metadata().name).toEqual(['BRATS']);
      expect(() => store.readSlice('testing', 0)).toThrow(ArgumentError);
    } finally {
      store.close();
    }
    const summary = await inspectSliceStore(seedPath);
    expect(summary.format).toBeNull();
    expect(summary.splits.train).toMatchObject({ slices: 5, cases: 2, tumourSlices: 2, tumourSliceFraction: 0.4, hasSliceIndex: false });
    expect(summary.splits.testing).toBeUndefined();
  });
});
