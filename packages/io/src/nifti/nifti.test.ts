import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { NiftiFormatError } from '../errors.js';
import { createVolume, type Affine, type DType, type DTypeMap } from '../volume.js';
import { affineToQuaternion, quaternionToAffine } from './geometry.js';
import { parseNifti, readNifti } from './read.js';
import { encodeNifti, writeNifti } from './write.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-nifti-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const OBLIQUE: Affine = [
  [-0.9, 0.1, 0, 120.5],
  [-0.1, -0.9, 0.05, 239],
  [0, 0.05, 1.5, -10],
  [0, 0, 0, 1],
];

describe('NIfTI round trip', () => {
  it.each<[DType, number[]]>([
    ['uint8', [0, 1, 2, 255, 7, 9]],
    ['int8', [-128, -1, 0, 1, 127, 5]],
    ['int16', [-32768, -2, 0, 3, 32767, 11]],
    ['uint16', [0, 1, 65535, 40000, 3, 4]],
    ['int32', [-2147483648, 0, 2147483647, 5, 6, 7]],
    ['uint32', [0, 4294967295, 1, 2, 3, 4]],
    ['float32', [-1.5, 0, 0.25, 1e6, 3.5, -7]],
    ['float64', [-1.5e-300, 0, Math.PI, 1e300, 2, 3]],
  ])('%s values, shape and affine survive write + read', async (dtype, values) => {
    const ArrayType = {
      uint8: Uint8Array, int8: Int8Array, int16: Int16Array, uint16: Uint16Array,
      int32: Int32Array, uint32: Uint32Array, float32: Float32Array, float64: Float64Array,
    }[dtype];
    const data = ArrayType.from(values) as DTypeMap[DType];
    const volume = createVolume(dtype, data, [3, 2, 1], { spacing: [0.9, 0.9, 1.5], affine: OBLIQUE });
    const file = path.join(dir, `round-${dtype}.nii.gz`);
    await writeNifti(file, volume);
    const read = await readNifti(file);
    expect({ ...(await readNifti(file, { headerOnly: true })), data: undefined }).toEqual({ ...read, data: undefined });
    expect(read.dtype).toBe(dtype);
    expect(read.shape).toEqual([3, 2, 1]);
    expect(Array.from(read.data)).toEqual(Array.from(data));
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(read.affine[r]![c]).toBeCloseTo(OBLIQUE[r]![c]!, 5);
  });

  it('writes 4D volumes and casts with rounding and clamping', async () => {
    const volume = createVolume('float32', Float32Array.from([0.4, 0.6, 300, -5, 1, 2, 3, 4]), [2, 1, 1, 4]);
    const file = path.join(dir, 'cast.nii');
    await writeNifti(file, volume, { dtype: 'uint8' });
    const read = await readNifti(file);
    expect(read.shape).toEqual([2, 1, 1, 4]);
    expect(Array.from(read.data)).toEqual([0, 1, 255, 0, 1, 2, 3, 4]);
  });

  it('leaves no partial file when the target folder cannot be written', async () => {
    const blocker = path.join(dir, 'not-a-folder');
    await fs.writeFile(blocker, 'x');
    const volume = createVolume('uint8', new Uint8Array(8), [2, 2, 2]);
    await expect(writeNifti(path.join(blocker, 'mask.nii.gz'), volume)).rejects.toThrow();
    expect((await fs.readdir(dir)).filter((name) => name.includes('.partial'))).toEqual([]);
  });
});

describe('qform geometry', () => {
  it.each<[string, [number, number, number], number]>([
    ['identity', [0, 0, 0], 1],
    ['180 degrees about z (BraTS LPS)', [0, 0, 1], 1],
    ['flipped k (qfac -1)', [0, 0, 0], -1],
    ['oblique', [0.1, -0.2, 0.3], 1],
  ])('quaternion -> affine -> quaternion is stable: %s', (_name, quaternion, qfac) => {
    const affine = quaternionToAffine(quaternion, [10, -20, 30], [0.9, 1.1, 2], qfac);
    const back = affineToQuaternion(affine);
    const again = quaternionToAffine(back.quaternion, back.offset, back.pixdim, back.qfac);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) expect(again[r]![c]).toBeCloseTo(affine[r]![c]!, 9);
    expect(back.qfac).toBe(qfac);
  });

  it('computes the BraTS LPS affine by hand', () => {
    // b=c=0, d=1 is 180 degrees about z: x and y flip.
    expect(quaternionToAffine([0, 0, 1], [0, 239, 0], [1, 1, 1], 1)).toEqual([
      [-1, 0, 0, 0],
      [0, -1, 0, 239],
      [0, 0, 1, 0],
      [0, 0, 0, 1],
    ]);
  });
});

/** A valid little-endian NIfTI-1 of uint8 [2, 2, 2], to corrupt in the cases below. */
function validBytes(): Uint8Array {
  return encodeNifti(createVolume('uint8', Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), [2, 2, 2]));
}

function withInt16(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setInt16(offset, value, true);
  return copy;
}

describe('malformed inputs give NiftiFormatError, never a crash or a hang', () => {
  const corpus: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /truncated header/],
    ['a truncated header', () => validBytes().slice(0, 200), /truncated header/],
    ['wrong magic', () => { const b = validBytes(); b.set([0x78, 0x78, 0x78, 0], 344); return b; }, /bad magic/],
    ['a text file', () => new TextEncoder().encode('hello '.repeat(100)), /bad magic/],
    ['dims that need more bytes than present', () => withInt16(validBytes(), 42, 200), /truncated: dims \[200, 2, 2\]/],
    ['truncated voxel data', () => validBytes().slice(0, 355), /truncated/],
    ['an unknown dtype code', () => withInt16(validBytes(), 70, 99), /unsupported datatype unknown code 99/],
    ['complex64 data', () => withInt16(withInt16(validBytes(), 70, 32), 72, 64), /unsupported datatype complex64/],
    ['bitpix that contradicts the dtype', () => withInt16(validBytes(), 72, 16), /bitpix 16/],
    ['a zero dimension', () => withInt16(validBytes(), 44, 0), /dim\[2\] = 0/],
    ['a negative dimension', () => withInt16(validBytes(), 42, -4), /dim\[1\] = -4/],
    ['dim[0] out of range', () => withInt16(validBytes(), 40, 9), /dim\[0\] = 9/],
    ['truncated gzip', () => gzipSync(validBytes()).slice(0, 40), /gzip stream is truncated or corrupt/],
    ['corrupt gzip', () => { const g = gzipSync(validBytes()); g.fill(0x55, 12, 40); return g; }, /gzip stream is truncated or corrupt/],
  ];

  it.each(corpus)('%s', async (_name, make, reason) => {
    const error = await parseNifti(make(), 'bad.nii.gz').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NiftiFormatError);
    expect((error as NiftiFormatError).path).toBe('bad.nii.gz');
    expect((error as NiftiFormatError).reason).toMatch(reason);
  });

  it.each(corpus)('%s: the streamed header-only read refuses it with the same reason', async (name, make, reason) => {
    const file = path.join(dir, `corpus-${name.replace(/\W+/g, '-')}.nii.gz`);
    await fs.writeFile(file, make());
    const error = await readNifti(file, { headerOnly: true }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NiftiFormatError);
    expect((error as NiftiFormatError).reason).toMatch(reason);
  });

  it('the streamed header-only read gives what the whole read gives, without the voxels, plain or gzip', async () => {
    const volume = createVolume('int16', Int16Array.from({ length: 60 * 50 * 40 }, (_, i) => i % 977), [60, 50, 40], { spacing: [0.9, 1, 2], affine: OBLIQUE });
    for (const name of ['whole.nii.gz', 'whole.nii']) {
      const file = path.join(dir, name);
      await writeNifti(file, volume);
      const whole = await readNifti(file);
      const header = await readNifti(file, { headerOnly: true });
      expect(header.data.length).toBe(0);
      expect({ ...header, data: undefined }).toEqual({ ...whole, data: undefined });
    }
  });

  it('a gzip bomb stops at the size limit, also in a streamed header-only read', async () => {
    const bomb = gzipSync(new Uint8Array(64 * 1024 * 1024)); // 64 MiB of zeros in ~64 KiB
    const file = path.join(dir, 'bomb.nii.gz');
    await fs.writeFile(file, bomb);
    const streamed = await readNifti(file, { maxBytes: 1024 * 1024, headerOnly: true }).catch((caught: unknown) => caught);
    expect(streamed).toEqual(new NiftiFormatError(file, 'decompressed size exceeds the limit of 1048576 bytes'));

    const error = await parseNifti(bomb, 'bomb.nii.gz', { maxBytes: 1024 * 1024 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NiftiFormatError);
    expect((error as NiftiFormatError).reason).toBe('decompressed size exceeds the limit of 1048576 bytes');
  });

  it('reads a gzip of several members, whose trailer gives only the last member\'s size, byte for byte', async () => {
    // The output chunk is sized from the trailer: here it is far too small, so zlib must go on chunk after chunk.
    const volume = createVolume('int16', Int16Array.from({ length: 50 * 40 * 30 }, (_, i) => (i * 7919) % 30011 - 15000), [50, 40, 30], { affine: OBLIQUE });
    const plain = encodeNifti(volume);
    const split = 400;
    const members = new Uint8Array(Buffer.concat([gzipSync(plain.subarray(0, plain.length - split)), gzipSync(plain.subarray(plain.length - split))]));
    expect(new DataView(members.buffer, members.byteOffset).getUint32(members.length - 4, true)).toBe(split);
    const read = await parseNifti(members, 'members.nii.gz');
    expect(read.dtype).toBe('int16');
    expect(Buffer.from(read.data.buffer, read.data.byteOffset, read.data.byteLength).equals(Buffer.from(volume.data.buffer))).toBe(true);
    expect(read.data.length).toBe(volume.data.length);
  });

  it('copies voxels that sit at an offset not aligned for their type, and leaves the caller\'s uncompressed bytes untouched', async () => {
    const volume = createVolume('float32', Float32Array.from({ length: 6 * 5 * 4 }, (_, i) => i * 0.25 - 3), [6, 5, 4]);
    const encoded = encodeNifti(volume);
    // vox_offset 353: one byte of extension padding moves the voxels off a multiple of 4.
    const shifted = new Uint8Array(encoded.length + 1);
    shifted.set(encoded.subarray(0, 352));
    shifted.set(encoded.subarray(352), 353);
    new DataView(shifted.buffer).setFloat32(108, 353, true);
    for (const [name, bytes] of [['shifted.nii.gz', new Uint8Array(gzipSync(shifted))], ['shifted.nii', shifted]] as const) {
      const before = Buffer.from(bytes);
      const read = await parseNifti(bytes, name);
      expect(read.nifti.voxOffset).toBe(353);
      expect(read.data.byteOffset % 4).toBe(0);
      expect(Array.from(read.data)).toEqual(Array.from(volume.data));
      expect(Buffer.from(bytes).equals(before)).toBe(true);
    }
  });

  it('a missing file names the path', async () => {
    const missing = path.join(dir, 'missing.nii.gz');
    await expect(readNifti(missing)).rejects.toThrow(new NiftiFormatError(missing, 'file not found'));
  });
});

const python = referencePython(['nibabel', 'numpy']);

describe.skipIf(!python)(`interop with nibabel${python ? '' : ' (skipped: Debian python3-nibabel is not installed)'}`, () => {
  const readWithNibabel = `
import sys, json, nibabel as nib, numpy as np
img = nib.load(sys.argv[1])
data = np.asanyarray(img.dataobj)
print(json.dumps({"shape": list(img.shape), "dtype": str(img.get_data_dtype().newbyteorder('=')),
  "affine": img.affine.tolist(), "values": data.ravel(order='F').astype(float).tolist(),
  "qform_code": int(img.header['qform_code']), "sform_code": int(img.header['sform_code'])}))`;

  it.each<[DType, string]>([
    ['uint8', 'mask.nii.gz'],
    ['int16', 'scan.nii.gz'],
    ['float32', 'prob.nii'],
  ])('nibabel reads our %s file with identical values and affine', async (dtype, name) => {
    const count = 4 * 3 * 2;
    const values = Array.from({ length: count }, (_, i) => (dtype === 'float32' ? i * 0.5 - 3 : i * 3));
    const ArrayType = { uint8: Uint8Array, int16: Int16Array, float32: Float32Array }[dtype as 'uint8' | 'int16' | 'float32'];
    const volume = createVolume(dtype, ArrayType.from(values) as DTypeMap[DType], [4, 3, 2], { spacing: [0.9, 0.9, 1.5], affine: OBLIQUE });
    const file = path.join(dir, name);
    await writeNifti(file, volume);
    const result = runPythonJson<{ shape: number[]; dtype: string; affine: number[][]; values: number[]; qform_code: number; sform_code: number }>(
      python!, readWithNibabel, [file]);
    expect(result.shape).toEqual([4, 3, 2]);
    expect(result.dtype).toBe(dtype);
    expect(result.values).toEqual(Array.from(volume.data));
    expect(result.sform_code).toBe(1);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(result.affine[r]![c]).toBeCloseTo(OBLIQUE[r]![c]!, 5);
  });

  it.each([
    ['NIfTI-1 big-endian int16', "nib.Nifti1Image(data.astype('>i2'), aff)", 'int16'],
    ['NIfTI-2 float64', 'nib.Nifti2Image(data.astype(np.float64), aff)', 'float64'],
    ['NIfTI-1 uint16', "nib.Nifti1Image(data.astype('<u2'), aff)", 'uint16'],
  ])('reads a %s file written by nibabel', async (_name, construct, dtype) => {
    const file = path.join(dir, `nibabel-${dtype}.nii.gz`);
    const script = `
import sys, json, nibabel as nib, numpy as np
data = np.arange(5 * 4 * 3).reshape(5, 4, 3) * 7
aff = np.array([[0, -1.2, 0, 30], [1.1, 0, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]])
img = ${construct}
img.header.set_qform(aff, 1); img.header.set_sform(aff, 2)
nib.save(img, sys.argv[1])
back = nib.load(sys.argv[1])
print(json.dumps({"affine": back.affine.tolist(), "values": np.asanyarray(back.dataobj).ravel(order='F').astype(float).tolist(),
  "bigendian": back.header.endianness == '>'}))`;
    const expected = runPythonJson<{ affine: number[][]; values: number[]; bigendian: boolean }>(python!, script, [file]);
    const read = await readNifti(file);
    expect({ ...(await readNifti(file, { headerOnly: true })), data: undefined }).toEqual({ ...read, data: undefined });
    expect(read.dtype).toBe(dtype);
    expect(read.shape).toEqual([5, 4, 3]);
    expect(read.nifti.littleEndian).toBe(!expected.bigendian);
    expect(Array.from(read.data)).toEqual(expected.values);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(read.affine[r]![c]).toBeCloseTo(expected.affine[r]![c]!, 5);
  });

  it('applies scl_slope/scl_inter and prefers the qform when sform_code is 0, like nibabel', async () => {
    const file = path.join(dir, 'scaled.nii');
    const script = `
import sys, json, nibabel as nib, numpy as np
data = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.int16)
aff = np.array([[0.8, 0, 0, -10], [0, 0, 1.2, 20], [0, -1.0, 0, 30], [0, 0, 0, 1]])
img = nib.Nifti1Image(data, None)
img.header.set_qform(aff, 1); img.header.set_sform(np.eye(4) * 3, 0)
img.header.set_slope_inter(2.5, -1.0)
nib.save(img, sys.argv[1])
back = nib.load(sys.argv[1])
print(json.dumps({"affine": back.affine.tolist(), "values": back.get_fdata().ravel(order='F').tolist()}))`;
    const expected = runPythonJson<{ affine: number[][]; values: number[] }>(python!, script, [file]);
    const read = await readNifti(file);
    expect(read.dtype).toBe('float32');
    expect(read.nifti.sformCode).toBe(0);
    Array.from(read.data).forEach((value, i) => expect(value).toBeCloseTo(expected.values[i]!, 5));
    expect(read.data[0]).toBeCloseTo(-5 * 2.5 - 1, 6);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(read.affine[r]![c]).toBeCloseTo(expected.affine[r]![c]!, 5);
  });
});
