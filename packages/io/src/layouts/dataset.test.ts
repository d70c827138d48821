import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_SHARED_DATA, sharedDataDir } from '@brats/vitest-config/fixtures';
import { DatasetError } from '../errors.js';
import { writeNifti } from '../nifti/write.js';
import { REGION_NAMES, regionMask } from '../regions.js';
import { createVolume, type Affine } from '../volume.js';
import { loadCase, openDataset } from './dataset.js';
import { parseChannelName } from './channels.js';

const data = sharedDataDir();

describe.skipIf(!data)(`real BraTS samples (${data ? 'present' : NO_SHARED_DATA})`, () => {
  it('discovers both layouts with their cases and label conventions', async () => {
    const brats = await openDataset(path.join(data!, 'brats2018-sample'));
    expect(brats.layout).toBe('brats2017');
    expect(brats.cases).toHaveLength(14);
    expect(brats.labelMapping.name).toBe('brats2017');
    expect(brats.cases.every((c) => c.label !== undefined && c.images.length === 4)).toBe(true);
    const msd = await openDataset(path.join(data!, 'msd-task01-sample'));
    expect(msd.layout).toBe('msd');
    expect(msd.cases.map((c) => c.id)).toEqual(['BRATS_901', 'BRATS_902']);
    expect(msd.metadata.modalities).toEqual(['FLAIR', 'T1w', 't1gd', 'T2w']);
    expect(msd.cases[0]!.frames).toEqual([0, 1, 2, 3]);
  });

  it('the MSD FLAIR channel equals the BraTS FLAIR file of the same case voxel for voxel, and WT/TC/ET agree', async () => {
    const brats = await openDataset(path.join(data!, 'brats2018-sample'));
    const msd = await openDataset(path.join(data!, 'msd-task01-sample'));
    const fromBrats = await loadCase(brats.cases.find((c) => c.id === 'Brats18_CBICA_AQN_1')!);
    const fromMsd = await loadCase(msd.cases.find((c) => c.id === 'BRATS_901')!);
    expect(fromMsd.channels[0].shape).toEqual([240, 240, 155]);
    for (let c = 0; c < 4; c++) {
      const a = fromBrats.channels[c]!.data;
      const b = fromMsd.channels[c]!.data;
      let differing = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
      expect(differing, `channel ${c}`).toBe(0);
    }
    expect(fromMsd.channels[0].affine).toEqual(fromBrats.channels[0].affine);
    let tumour = 0;
    for (const region of REGION_NAMES) {
      const a = regionMask(fromBrats.labels!.data, fromBrats.labelMapping, region);
      const b = regionMask(fromMsd.labels!.data, fromMsd.labelMapping, region);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b)), region).toBe(0);
      tumour += a.reduce((sum, v) => sum + v, 0);
    }
    expect(tumour).toBeGreaterThan(1000);
  });

  it('reads int16 and uint8 label maps alike', async () => {
    const brats = await openDataset(path.join(data!, 'brats2018-sample'));
    const int16Case = await loadCase(brats.cases.find((c) => c.id === 'Brats18_2013_11_1')!);
    expect(int16Case.labels!.dtype).toBe('uint8');
    expect(new Set(int16Case.labels!.data)).toEqual(new Set([0, 1, 2, 4]));
  });
});

describe('layouts built in the test', () => {
  let root: string;
  const affine: Affine = [
    [-1, 0, 0, 0],
    [0, -1, 0, 7],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
  const shape = [6, 5, 4] as const;
  const image = (value: number) => createVolume('int16', new Int16Array(120).fill(value), shape, { affine });
  const labels = (values: number[]) => createVolume('uint8', Uint8Array.from({ length: 120 }, (_, i) => values[i % values.length]!), shape, { affine });

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-layouts-'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  async function writeBratsCase(dir: string, id: string, suffixes: string[], labelValues: number[] = [0, 1, 2, 4]) {
    await fs.mkdir(path.join(dir, id), { recursive: true });
    for (const [index, suffix] of suffixes.entries()) {
      await writeNifti(path.join(dir, id, `${id}${suffix}.nii.gz`), suffix.endsWith('seg') ? labels(labelValues) : image(index + 1));
    }
  }

  it('maps BraTS 2017 and 2023 file names onto FLAIR, T1w, T1gd, T2w', async () => {
    const dir2017 = path.join(root, 'b2017');
    await writeBratsCase(path.join(dir2017, 'HGG'), 'Case_B', ['_t2', '_t1ce', '_flair', '_t1', '_seg']);
    await writeBratsCase(path.join(dir2017, 'LGG'), 'Case_A', ['_flair', '_t1', '_t1ce', '_t2']);
    const dataset = await openDataset(dir2017);
    expect(dataset.cases.map((c) => c.id)).toEqual(['Case_A', 'Case_B']);
    expect(dataset.cases[0]!.label).toBeUndefined();
    const loaded = await loadCase(dataset.cases[1]!);
    // Values were written as (suffix position + 1): _t2=1, _t1ce=2, _flair=3, _t1=4.
    expect(loaded.channels.map((c) => c.data[0])).toEqual([3, 4, 2, 1]);
    expect(Array.from(loaded.labels!.data.slice(0, 4))).toEqual([0, 1, 2, 4]);

    const dir2023 = path.join(root, 'b2023');
    await writeBratsCase(dir2023, 'BraTS-GLI-00001-000', ['-t2f', '-t1n', '-t1c', '-t2w', '-seg'], [0, 1, 2, 3]);
    const dataset2023 = await openDataset(dir2023);
    expect(dataset2023.layout).toBe('brats2023');
    const case2023 = await loadCase(dataset2023.cases[0]!);
    expect(case2023.channels.map((c) => c.data[0])).toEqual([1, 2, 3, 4]);
    expect(parseChannelName('T1c')).toBe('T1gd');
  });

  it('keeps integer channels as stored, narrows float64 ones to float32, and refuses a float64 voxel float32 cannot hold', async () => {
    const dir = path.join(root, 'dtypes');
    await fs.mkdir(path.join(dir, 'Case_D'), { recursive: true });
    const float64 = Float64Array.from({ length: 120 }, (_, i) => i + 0.1);
    const volumes = {
      _flair: image(5),
      _t1: createVolume('uint8', new Uint8Array(120).fill(200), shape, { affine }),
      _t1ce: createVolume('float64', float64, shape, { affine }),
      _t2: createVolume('float32', new Float32Array(120).fill(0.5), shape, { affine }),
    };
    for (const [suffix, volume] of Object.entries(volumes)) await writeNifti(path.join(dir, 'Case_D', `Case_D${suffix}.nii.gz`), volume);
    const loaded = await loadCase((await openDataset(dir)).cases[0]!);
    expect(loaded.channels.map((channel) => channel.dtype)).toEqual(['int16', 'uint8', 'float32', 'float32']);
    expect(loaded.channels[0].data).toBeInstanceOf(Int16Array);
    expect(Array.from(loaded.channels[2].data)).toEqual(Array.from(Float32Array.from(float64)));
    // 1e300 is finite as float64 and infinite as float32, what preprocessing computes in: refused, naming the file.
    float64[7] = 1e300;
    const t1ce = path.join(dir, 'Case_D', 'Case_D_t1ce.nii.gz');
    await writeNifti(t1ce, createVolume('float64', float64, shape, { affine }));
    const error = await loadCase((await openDataset(dir)).cases[0]!).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toContain(t1ce);
    expect((error as Error).message).toMatch(/1 of 120 voxels .* NaN or infinite/);
  });

  it('follows symbolically linked case folders', async () => {
    const linked = path.join(root, 'linked');
    await fs.mkdir(linked, { recursive: true });
    await fs.symlink(path.join(root, 'b2017', 'HGG', 'Case_B'), path.join(linked, 'Case_B'));
    const dataset = await openDataset(linked);
    expect(dataset.cases.map((c) => c.id)).toEqual(['Case_B']);
    expect((await loadCase(dataset.cases[0]!)).channels[0].data[0]).toBe(3);
  });

  it('reads a Decathlon folder whose modality order differs from the canonical one', async () => {
    const dir = path.join(root, 'msd');
    await fs.mkdir(path.join(dir, 'imagesTr'), { recursive: true });
    const frames = new Float32Array(480);
    for (let t = 0; t < 4; t++) frames.fill(10 + t, t * 120, (t + 1) * 120);
    await writeNifti(path.join(dir, 'imagesTr', 'X_001.nii.gz'), createVolume('float32', frames, [6, 5, 4, 4], { affine }));
    await fs.writeFile(
      path.join(dir, 'dataset.json'),
      JSON.stringify({ modality: { 0: 'T2w', 1: 'FLAIR', 2: 'T1w', 3: 't1gd' }, training: [], test: ['./imagesTr/X_001.nii.gz'] }),
    );
    const dataset = await openDataset(dir);
    const loaded = await loadCase(dataset.cases[0]!);
    expect(loaded.channels.map((c) => c.data[0])).toEqual([11, 12, 13, 10]);
    expect(loaded.labels).toBeUndefined();
  });

  it('counts NaN and infinite voxels of one Decathlon frame alone, and with nonFinite zero repairs that frame only', async () => {
    const dir = path.join(root, 'msd-nonfinite');
    await fs.mkdir(path.join(dir, 'imagesTr'), { recursive: true });
    // Voxel v of frame t holds 10 + t + (v % 5) / 2; frame 2 (T1gd) gets a NaN, +Inf and -Inf, the last one in its
    // last voxel.
    const frames = Float32Array.from({ length: 480 }, (_, index) => 10 + Math.floor(index / 120) + (index % 5) / 2);
    frames[240 + 5] = Number.NaN;
    frames[240 + 61] = Number.POSITIVE_INFINITY;
    frames[240 + 119] = Number.NEGATIVE_INFINITY;
    const file = path.join(dir, 'imagesTr', 'X_001.nii.gz');
    await writeNifti(file, createVolume('float32', frames, [6, 5, 4, 4], { affine }));
    await fs.writeFile(path.join(dir, 'dataset.json'), JSON.stringify({ modality: { 0: 'FLAIR', 1: 'T1w', 2: 't1gd', 3: 'T2w' }, training: [], test: ['./imagesTr/X_001.nii.gz'] }));
    const ref = (await openDataset(dir)).cases[0]!;
    const error = await loadCase(ref).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/3 of 120 voxels in frame 2 \(T1gd\) are NaN or infinite \(the first at index 5,/);
    const repaired = await loadCase(ref, { nonFinite: 'zero' });
    expect(repaired.warnings).toEqual([`${file}: 3 NaN or infinite voxel(s) in frame 2 (T1gd) set to 0, as asked`]);
    const expected = Array.from({ length: 120 }, (_, v) => (v === 5 || v === 61 || v === 119 ? 0 : 12 + (v % 5) / 2));
    expect(Array.from(repaired.channels[2].data)).toEqual(expected);
    expect(repaired.channels.map((channel) => channel.data[0])).toEqual([10, 11, 12, 13]);
    expect(repaired.channels.map((channel) => channel.data.length)).toEqual([120, 120, 120, 120]);
    // One bad voxel is found wherever it lies (the check sums every fourth voxel apart): in T2w this time.
    for (const at of [116, 117, 118, 119]) {
      const one = Float32Array.from({ length: 480 }, (_, index) => 10 + Math.floor(index / 120) + (index % 5) / 2);
      one[360 + at] = Number.NaN;
      await writeNifti(file, createVolume('float32', one, [6, 5, 4, 4], { affine }));
      await expect(loadCase(ref), `voxel ${at}`).rejects.toThrow(new RegExp(`1 of 120 voxels in frame 3 \\(T2w\\) are NaN or infinite \\(the first at index ${at},`));
    }
  });

  it('reads uint8 and int16 label maps alike, and names the values that are not labels in either', async () => {
    const values = [0, 1, 2, 4];
    for (const dtype of ['uint8', 'int16'] as const) {
      const dir = path.join(root, `labels-${dtype}`);
      await writeBratsCase(dir, 'C1', ['_flair', '_t1', '_t1ce', '_t2']);
      const seg = path.join(dir, 'C1', 'C1_seg.nii.gz');
      const stored = Array.from({ length: 120 }, (_, i) => values[i % 4]!);
      await writeNifti(seg, dtype === 'uint8' ? createVolume('uint8', Uint8Array.from(stored), shape, { affine }) : createVolume('int16', Int16Array.from(stored), shape, { affine }));
      const loaded = await loadCase((await openDataset(dir)).cases[0]!);
      expect(loaded.labels!.dtype, dtype).toBe('uint8');
      expect(Array.from(loaded.labels!.data), dtype).toEqual(stored);
      stored[7] = 3;
      stored[9] = 200;
      await writeNifti(seg, dtype === 'uint8' ? createVolume('uint8', Uint8Array.from(stored), shape, { affine }) : createVolume('int16', Int16Array.from(stored), shape, { affine }));
      const error = await loadCase((await openDataset(dir)).cases[0]!).catch((caught: unknown) => caught);
      expect(error, dtype).toBeInstanceOf(DatasetError);
      expect((error as Error).message, dtype).toContain(`${seg}: label values 3, 200 are not brats2017 labels`);
    }
  });

  it.each([
    ['a missing modality', async (dir: string) => { await writeBratsCase(dir, 'C1', ['_flair', '_t1', '_t2', '_seg']); }, 'C1_t1ce.nii.gz: missing file'],
    ['unknown label values', async (dir: string) => { await writeBratsCase(dir, 'C1', ['_flair', '_t1', '_t1ce', '_t2', '_seg'], [0, 3, 7]); }, 'label values 3, 7 are not brats2017 labels'],
    ['a shape mismatch', async (dir: string) => {
      await writeBratsCase(dir, 'C1', ['_flair', '_t1', '_t1ce', '_t2', '_seg']);
      await writeNifti(path.join(dir, 'C1', 'C1_t2.nii.gz'), createVolume('int16', new Int16Array(60), [6, 5, 2], { affine }));
    }, "shape [6, 5, 2] differs from the case's first image [6, 5, 4]"],
    ['an affine mismatch', async (dir: string) => {
      await writeBratsCase(dir, 'C1', ['_flair', '_t1', '_t1ce', '_t2', '_seg']);
      await writeNifti(path.join(dir, 'C1', 'C1_seg.nii.gz'), createVolume('uint8', new Uint8Array(120), shape, { spacing: [2, 2, 2] }));
    }, 'affine differs'],
  ])('%s gives a DatasetError naming the case and file', async (name, build, reason) => {
    const dir = path.join(root, name.replace(/ /g, '-'));
    await build(dir);
    const dataset = await openDataset(dir);
    const error = await loadCase(dataset.cases[0]!).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).caseId).toBe('C1');
    expect((error as DatasetError).message).toContain('case C1: ');
    expect((error as DatasetError).message).toContain(reason);
  });

  it('a folder without a dataset is a DatasetError', async () => {
    const empty = path.join(root, 'empty');
    await fs.mkdir(empty, { recursive: true });
    await expect(openDataset(empty)).rejects.toBeInstanceOf(DatasetError);
    await expect(openDataset(path.join(root, 'does-not-exist'))).rejects.toThrow(/not a folder/);
  });
});
