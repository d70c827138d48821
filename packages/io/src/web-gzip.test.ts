import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NiftiFormatError, encodeNifti, gzipWeb, parseNiftiBytes } from './browser.js';
import { readNifti, writePhantomDataset, type Volume } from './index.js';

let dir: string;
let flair: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-web-gzip-'));
  await writePhantomDataset(dir, { layout: 'brats2018', cases: 1, size: [40, 36, 24], seed: 3 });
  flair = path.join(dir, 'Phantom_001', 'Phantom_001_flair.nii.gz');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('NIfTI through the Compression Streams API (@brats/io/browser)', () => {
  it('parses a .nii.gz to the same volume as the zlib reader', async () => {
    const bytes = new Uint8Array(await fs.readFile(flair));
    const web = await parseNiftiBytes(bytes, 'flair.nii.gz');
    const node = await readNifti(flair);
    expect(web.shape).toEqual(node.shape);
    expect(web.affine).toEqual(node.affine);
    expect(web.spacing).toEqual(node.spacing);
    expect(web.data).toEqual(node.data);
    expect(web.path).toBe('flair.nii.gz');
  });

  it('gzips bytes that zlib decompresses to the same NIfTI', async () => {
    const volume: Volume<'uint8'> = { dtype: 'uint8', data: Uint8Array.from({ length: 4 * 3 * 2 }, (_, i) => i % 3), shape: [4, 3, 2], spacing: [1, 1, 2], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]] };
    const encoded = encodeNifti(volume);
    const gzipped = await gzipWeb(encoded);
    expect([gzipped[0], gzipped[1]]).toEqual([0x1f, 0x8b]);
    expect(new Uint8Array(gunzipSync(gzipped))).toEqual(encoded);
    expect((await parseNiftiBytes(gzipped, 'mask.nii.gz')).data).toEqual(volume.data);
  });

  it('refuses a gzip stream that decompresses past the cap, and a truncated one, with NiftiFormatError', async () => {
    const bytes = new Uint8Array(await fs.readFile(flair));
    await expect(parseNiftiBytes(bytes, 'flair.nii.gz', { maxBytes: 1000 })).rejects.toThrow(new NiftiFormatError('flair.nii.gz', 'decompressed size exceeds the limit of 1000 bytes'));
    await expect(parseNiftiBytes(bytes.subarray(0, bytes.length >> 1), 'cut.nii.gz')).rejects.toThrow(new NiftiFormatError('cut.nii.gz', 'gzip stream is truncated or corrupt'));
  });
});
