import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBundleError, readModelManifest } from './bundle.js';
import { DatasetError, NiftiFormatError } from './errors.js';
import { loadCase } from './layouts/dataset.js';
import { readNifti } from './nifti/read.js';
import { encodeNifti, writeNifti } from './nifti/write.js';
import { createVolume } from './volume.js';

let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-safe-read-'));
  execFileSync('mkfifo', [path.join(dir, 'pipe.nii')]);
  await fs.symlink('/dev/zero', path.join(dir, 'zero.nii.gz'));
  await fs.mkdir(path.join(dir, 'folder.nii'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('only regular files are read, within a byte cap', () => {
  it.each([
    ['a FIFO (which would block a read forever)', 'pipe.nii', 'a FIFO (named pipe), not a regular file: only regular files are read'],
    ['a symbolic link to /dev/zero (which never ends)', 'zero.nii.gz', 'a character device, not a regular file: only regular files are read'],
    ['a folder', 'folder.nii', 'a folder, not a regular file: only regular files are read'],
    ['a missing file', 'missing.nii', 'file not found'],
  ])('readNifti refuses %s with a NiftiFormatError naming the file', async (_name, file, reason) => {
    const error = await readNifti(path.join(dir, file)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NiftiFormatError);
    expect((error as NiftiFormatError).message).toBe(`${path.join(dir, file)}: ${reason}`);
  });

  it('refuses a file above the cap before reading it, compressed or not', async () => {
    const file = path.join(dir, 'big.nii');
    await fs.writeFile(file, encodeNifti(createVolume('uint8', new Uint8Array(4096), [16, 16, 16])));
    const size = (await fs.stat(file)).size;
    await expect(readNifti(file, { maxBytes: size - 1 })).rejects.toThrow(`file size ${size} exceeds the limit of ${size - 1} bytes`);
    expect((await readNifti(file, { maxBytes: size })).shape).toEqual([16, 16, 16]);
  });

  it('refuses a manifest that is a FIFO or a device with a ModelBundleError', async () => {
    await fs.mkdir(path.join(dir, 'bundle'));
    execFileSync('mkfifo', [path.join(dir, 'bundle', 'brats-model.json')]);
    await expect(readModelManifest(path.join(dir, 'bundle'))).rejects.toThrow(ModelBundleError);
    await expect(readModelManifest(path.join(dir, 'bundle'))).rejects.toThrow(/a FIFO \(named pipe\), not a regular file/);
  });
});

describe('loadCase and values that are not numbers', () => {
  const shape = [8, 8, 4] as const;
  async function writeCase(name: string, flair: Float32Array, frames = 4): Promise<string> {
    const n = 8 * 8 * 4;
    const data = new Float32Array(n * frames);
    data.set(flair, 0);
    for (let f = 1; f < frames; f++) data.fill(f, f * n, (f + 1) * n);
    const file = path.join(dir, `${name}.nii.gz`);
    await writeNifti(file, createVolume('float32', data, [...shape, frames]));
    return file;
  }

  it('refuses NaN and infinite voxels with the file, the count and a hint', async () => {
    const flair = new Float32Array(256).fill(1);
    flair[10] = Number.NaN;
    flair[20] = Number.POSITIVE_INFINITY;
    flair[30] = Number.NEGATIVE_INFINITY;
    const file = await writeCase('nan', flair);
    const error = await loadCase({ id: 'nan', layout: 'msd', images: [file] }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as DatasetError).message).toBe(
      `case nan: ${file}: 3 of 256 voxels in frame 0 (FLAIR) are NaN or infinite (the first at index 10, after scl_slope/scl_inter scaling); fix the file, or replace them with 0 explicitly (--replace-non-finite)`,
    );
    const repaired = await loadCase({ id: 'nan', layout: 'msd', images: [file] }, { nonFinite: 'zero' });
    expect([repaired.channels[0].data[10], repaired.channels[0].data[20], repaired.channels[0].data[30], repaired.channels[0].data[11]]).toEqual([0, 0, 0, 1]);
    // (The other frames of this file are constant, which loadCase says too.)
    expect(repaired.warnings?.filter((warning) => !warning.includes(' is constant '))).toEqual([`${file}: 3 NaN or infinite voxel(s) in frame 0 (FLAIR) set to 0, as asked`]);
  });

  it('catches an overflow from scl_slope (finite int16 voxels times 3e38)', async () => {
    const bytes = encodeNifti(createVolume('int16', new Int16Array(256).fill(100), shape));
    new DataView(bytes.buffer, bytes.byteOffset).setFloat32(112, 3e38, true);
    const file = path.join(dir, 'overflow_flair.nii');
    await fs.writeFile(file, bytes);
    const images = [file, file, file, file];
    await expect(loadCase({ id: 'overflow', layout: 'brats2017', images })).rejects.toThrow(/256 of 256 voxels in the FLAIR image are NaN or infinite/);
  });

  it('reads the first four frames of a 5-frame 4D file and says the fifth was ignored', async () => {
    const file = await writeCase('five', new Float32Array(256).fill(7), 5);
    const loaded = await loadCase({ id: 'five', layout: 'msd', images: [file] });
    expect(loaded.channels.map((channel) => channel.data[0])).toEqual([7, 1, 2, 3]);
    expect(loaded.warnings).toEqual([
      `${file}: has 5 frames; frames 0, 1, 2, 3 are read as FLAIR, T1w, T1gd, T2w and the other 1 are ignored`,
      ...['FLAIR', 'T1w', 'T1gd', 'T2w'].map((name, frame) => `${file}: ${name} is constant (every voxel ${frame === 0 ? 7 : frame}): it holds no image`),
    ]);
  });
});
