/**
 * A corpus of hostile inputs, generated from one clean phantom case (BraTS 2018 names): damaged files (bytes,
 * headers, values, geometry), odd but valid encodings, things that are not files, and broken case folders,
 * label maps and predictions. Each kind says what it damages and what each of `inspect`, `predict`, `convert`
 * and `evaluate` must do with it.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createVolume, readNifti, writeNifti, type Affine, type DType, type NiftiVolume, type Volume } from '@brats/io';

/** What a command must do with a kind of input. */
export type Outcome =
  /** A clear one-line error on stderr and this exit code. */
  | { exit: 1 | 2; stderr: RegExp }
  /** Exit 0 with this warning on stderr (and, for predict, in predictions.json). */
  | { warn: RegExp }
  /** Exit 0 and the same result as the clean case (label map, slice store, scores), after `undo` for predict. */
  | 'same'
  /** Exit 0, with this on stdout (inspect) or in the result. */
  | { stdout: RegExp }
  /** The command does not read what this kind damages: it runs on the clean files and must give the same result. */
  | 'unread'
  /**
   * Exit 0, the orientation noted, and on the changed scan's own grid (its shape and affine) the clean case's label map
   * put through the same change: the scan is turned back to the model's orientation, so the model saw the same slices.
   */
  | { turned: (volume: NiftiVolume) => Volume };

export interface HostileKind {
  name: string;
  /** The file this kind damages, or the case folder as a whole. */
  target: 'flair' | 't1' | 'seg' | 'case' | 'prediction';
  /** Damages the case folder `caseDir` (files `<id>_<suffix>.nii.gz`) in place. */
  apply(caseDir: string, id: string): Promise<void>;
  inspect: Outcome;
  predict: Outcome;
  convert: Outcome;
  evaluate: Outcome;
}

export const file = (caseDir: string, id: string, suffix: string): string => path.join(caseDir, `${id}_${suffix}.nii.gz`);

/** The uncompressed bytes of a NIfTI file. */
async function rawBytes(target: string): Promise<Buffer> {
  const bytes = await fs.readFile(target);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
}

async function writeRaw(target: string, raw: Buffer): Promise<void> {
  await fs.writeFile(target, target.endsWith('.gz') ? gzipSync(raw) : raw);
}

/** Edits the header of a NIfTI-1 file in place (offsets of the NIfTI-1 standard). */
async function editHeader(target: string, edit: (header: Buffer) => void): Promise<void> {
  const raw = await rawBytes(target);
  edit(raw);
  await writeRaw(target, raw);
}

/** Rewrites a file's voxels (and optionally its geometry) through the project's own writer. */
async function editVolume(target: string, edit: (volume: NiftiVolume) => Volume): Promise<void> {
  await writeNifti(target, edit(await readNifti(target)));
}

function withValues(volume: NiftiVolume, change: (data: Float32Array) => void): Volume {
  const data = Float32Array.from(volume.data, Number);
  change(data);
  return createVolume('float32', data, volume.shape, { affine: volume.affine, spacing: volume.spacing });
}

function asType(volume: NiftiVolume, dtype: DType): Volume {
  const arrays = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int16: Int16Array, uint8: Uint8Array, uint16: Uint16Array, int8: Int8Array, uint32: Uint32Array };
  return createVolume(dtype, (arrays[dtype] as Float32ArrayConstructor).from(volume.data, Number) as never, volume.shape, { affine: volume.affine, spacing: volume.spacing });
}

function toAffine(rows: number[][]): Affine {
  return rows as unknown as Affine;
}

/** The volume with its i axis reversed and the affine updated so every voxel keeps its place in the world. */
function flipI(volume: NiftiVolume): Volume {
  const [ni, nj, nk] = volume.shape as [number, number, number];
  const data = new (volume.data.constructor as Float32ArrayConstructor)(volume.data.length);
  for (let k = 0; k < nk; k++) for (let j = 0; j < nj; j++) for (let i = 0; i < ni; i++) data[i + ni * (j + nj * k)] = Number(volume.data[ni - 1 - i + ni * (j + nj * k)]);
  const a = volume.affine;
  const affine = toAffine(a.map((row, r) => (r === 3 ? [0, 0, 0, 1] : [-row[0]!, row[1]!, row[2]!, row[3]! + row[0]! * (ni - 1)])));
  return createVolume(volume.dtype, data as never, volume.shape, { affine, spacing: volume.spacing });
}

/** The volume with the affine's j column zeroed (the voxel size kept): axis j points nowhere, so the grid has no orientation. */
function flattenJ(volume: NiftiVolume): Volume {
  const affine = toAffine(volume.affine.map((row, r) => (r === 3 ? [...row] : [row[0]!, 0, row[2]!, row[3]!])));
  return createVolume(volume.dtype, volume.data, volume.shape, { affine, spacing: volume.spacing });
}

/** The volume with axes i and j swapped, the affine updated. */
function swapIJ(volume: NiftiVolume): Volume {
  const [ni, nj, nk] = volume.shape as [number, number, number];
  const data = new (volume.data.constructor as Float32ArrayConstructor)(volume.data.length);
  for (let k = 0; k < nk; k++) for (let j = 0; j < nj; j++) for (let i = 0; i < ni; i++) data[j + nj * (i + ni * k)] = Number(volume.data[i + ni * (j + nj * k)]);
  const affine = toAffine(volume.affine.map((row) => [row[1]!, row[0]!, row[2]!, row[3]!]));
  return createVolume(volume.dtype, data as never, [nj, ni, nk], { affine, spacing: [volume.spacing[1], volume.spacing[0], volume.spacing[2]] });
}

const MODALITIES = ['flair', 't1', 't1ce', 't2'] as const;

async function everyModality(caseDir: string, id: string, edit: (volume: NiftiVolume) => Volume): Promise<void> {
  for (const suffix of MODALITIES) await editVolume(file(caseDir, id, suffix), edit);
}

/** Replaces the FLAIR file with `bytes` (same name). */
const flairBytes = (make: (raw: Buffer) => Uint8Array) => async (caseDir: string, id: string): Promise<void> => {
  const target = file(caseDir, id, 'flair');
  await fs.writeFile(target, make(await rawBytes(target)));
};

const header = (edit: (h: Buffer) => void, suffix = 'flair') => async (caseDir: string, id: string): Promise<void> => editHeader(file(caseDir, id, suffix), edit);

const twoFiles: Pick<HostileKind, 'inspect' | 'predict' | 'convert' | 'evaluate'> = {
  inspect: { exit: 2, stderr: /two files for Phantom_001_flair: Phantom_001_flair\.nii\.gz and Phantom_001_flair\.nii; keep one/ },
  predict: { exit: 2, stderr: /two files for Phantom_001_flair/ },
  convert: { exit: 2, stderr: /two files for Phantom_001_flair/ },
  evaluate: { exit: 2, stderr: /two files for Phantom_001_flair/ },
};

/** predict on a case whose reference cannot be used: the images are segmented, the score left out, and it says so. */
const REFERENCE_LEFT_OUT: Pick<HostileKind, 'predict'> = { predict: { warn: /seg\.nii\.gz: the reference label map is left out \(.+\): the prediction is not scored/ } };

const CLEAN_SEG: Pick<HostileKind, 'predict' | 'convert' | 'evaluate'> = { predict: 'same', convert: 'same', evaluate: 'unread' };
const unreadable = (stderr: RegExp): Pick<HostileKind, 'inspect' | 'predict' | 'convert' | 'evaluate'> => ({
  inspect: { exit: 2, stderr },
  predict: { exit: 2, stderr },
  convert: { exit: 2, stderr },
  evaluate: 'unread',
});

/** Every kind; names are unique. */
export function hostileKinds(): HostileKind[] {
  const kinds: HostileKind[] = [
    // Bytes that are not a NIfTI image.
    { name: 'an empty FLAIR file', target: 'flair', apply: flairBytes(() => new Uint8Array(0)), ...unreadable(/flair\.nii\.gz: truncated header: 0 bytes/) },
    { name: 'a text file named .nii.gz', target: 'flair', apply: flairBytes(() => Buffer.from('not an image '.repeat(40))), ...unreadable(/flair\.nii\.gz: not a NIfTI-1 or NIfTI-2 file \(bad magic or header size\)/) },
    { name: 'gzip of a text file', target: 'flair', apply: flairBytes(() => gzipSync(Buffer.from('not an image '.repeat(40)))), ...unreadable(/flair\.nii\.gz: not a NIfTI-1 or NIfTI-2 file/) },
    { name: 'a gzip stream cut short', target: 'flair', apply: flairBytes((raw) => gzipSync(raw).subarray(0, 2000)), ...unreadable(/flair\.nii\.gz: gzip stream is truncated or corrupt/) },
    { name: 'a corrupt gzip stream', target: 'flair', apply: flairBytes((raw) => { const g = gzipSync(raw); g.fill(0x55, 40, 400); return g; }), ...unreadable(/flair\.nii\.gz: gzip stream is truncated or corrupt/) },
    { name: 'a header cut at 200 bytes', target: 'flair', apply: flairBytes((raw) => gzipSync(raw.subarray(0, 200))), ...unreadable(/flair\.nii\.gz: truncated header: 200 bytes/) },
    { name: 'a wrong magic string', target: 'flair', apply: header((h) => h.write('xx\0\0', 344, 'latin1')), ...unreadable(/bad magic/) },
    { name: 'sizeof_hdr 300', target: 'flair', apply: header((h) => h.writeInt32LE(300, 0)), ...unreadable(/flair\.nii\.gz: header cannot be parsed/) },
    { name: 'voxel data cut short', target: 'flair', apply: flairBytes((raw) => gzipSync(raw.subarray(0, raw.length - 100))), ...unreadable(/truncated: dims \[40, 40, 20\] of int16 need 64352 bytes, the file has 64252/) },
    { name: 'an unknown datatype code', target: 'flair', apply: header((h) => h.writeInt16LE(99, 70)), ...unreadable(/unsupported datatype unknown code 99/) },
    { name: 'complex64 voxels', target: 'flair', apply: header((h) => { h.writeInt16LE(32, 70); h.writeInt16LE(64, 72); }), ...unreadable(/unsupported datatype complex64/) },
    { name: 'RGB24 voxels', target: 'flair', apply: header((h) => { h.writeInt16LE(128, 70); h.writeInt16LE(24, 72); }), ...unreadable(/unsupported datatype rgb24/i) },
    { name: 'bitpix that contradicts the datatype', target: 'flair', apply: header((h) => h.writeInt16LE(32, 72)), ...unreadable(/bitpix 32 does not match datatype int16/) },
    { name: 'dim[0] = 0', target: 'flair', apply: header((h) => h.writeInt16LE(0, 40)), ...unreadable(/dim\[0\] = 0/) },
    { name: 'dim[0] = 8', target: 'flair', apply: header((h) => h.writeInt16LE(8, 40)), ...unreadable(/dim\[0\] = 8/) },
    { name: 'a zero dimension', target: 'flair', apply: header((h) => h.writeInt16LE(0, 44)), ...unreadable(/dim\[2\] = 0/) },
    { name: 'a negative dimension', target: 'flair', apply: header((h) => h.writeInt16LE(-40, 42)), ...unreadable(/dim\[1\] = -40/) },
    { name: 'a 5D image', target: 'flair', apply: header((h) => { h.writeInt16LE(5, 40); h.writeInt16LE(1, 48); h.writeInt16LE(2, 50); }), ...unreadable(/more than 4 dimensions are not supported/) },
    { name: 'dims that declare 32767^3 voxels', target: 'flair', apply: header((h) => { for (const o of [42, 44, 46]) h.writeInt16LE(32767, o); }), ...unreadable(/truncated: dims \[32767, 32767, 32767\]/) },
    { name: 'vox_offset past the end of the file', target: 'flair', apply: header((h) => h.writeFloatLE(1e6, 108)), ...unreadable(/truncated: dims \[40, 40, 20\] of int16 need 1064000 bytes, the file has 64352/) },

    // Not a regular file.
    { name: 'a missing FLAIR file', target: 'flair', apply: async (c, id) => fs.rm(file(c, id, 'flair')), inspect: { exit: 1, stderr: /flair\.nii\.gz: no such file or folder/ }, predict: { exit: 2, stderr: /no dataset found: .*\(found Phantom_001_seg\.nii\.gz, Phantom_001_t1\.nii\.gz, Phantom_001_t1ce\.nii\.gz, Phantom_001_t2\.nii\.gz, but no FLAIR file/ }, convert: { exit: 2, stderr: /no dataset found/ }, evaluate: { exit: 2, stderr: /no dataset found/ } },
    { name: 'a FIFO in place of the FLAIR file', target: 'flair', apply: async (c, id) => { await fs.rm(file(c, id, 'flair')); execFileSync('mkfifo', [file(c, id, 'flair')]); }, ...unreadable(/a FIFO \(named pipe\), not a regular file/) },
    { name: 'a symbolic link to /dev/zero', target: 'flair', apply: async (c, id) => { await fs.rm(file(c, id, 'flair')); await fs.symlink('/dev/zero', file(c, id, 'flair')); }, ...unreadable(/a character device, not a regular file/) },
    { name: 'a folder named like the FLAIR file', target: 'flair', apply: async (c, id) => { await fs.rm(file(c, id, 'flair')); await fs.mkdir(file(c, id, 'flair')); }, ...unreadable(/a folder, not a regular file/), inspect: { exit: 2, stderr: /no dataset found/ } },
    { name: 'a symbolic link loop', target: 'flair', apply: async (c, id) => { await fs.rm(file(c, id, 'flair')); await fs.symlink(path.basename(file(c, id, 'flair')), file(c, id, 'flair')); }, ...unreadable(/cannot read file \(ELOOP\)/), inspect: { exit: 1, stderr: /no such file or folder/ } },
    { name: 'a dangling symbolic link', target: 'flair', apply: async (c, id) => { await fs.rm(file(c, id, 'flair')); await fs.symlink('/nonexistent/flair.nii.gz', file(c, id, 'flair')); }, ...unreadable(/flair\.nii\.gz: missing file/), inspect: { exit: 1, stderr: /no such file or folder/ } },

    // Values that are not numbers, or carry no information.
    { name: 'NaN voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => d.fill(Number.NaN, 100, 103))), inspect: { stdout: /non-finite\s+3 NaN or infinite voxels \(3 NaN, 0 infinite/ }, predict: { exit: 2, stderr: /3 of 32000 voxels in the FLAIR image are NaN or infinite \(the first at index 100/ }, convert: { exit: 2, stderr: /3 of 32000 voxels in the FLAIR image are NaN or infinite/ }, evaluate: 'unread' },
    { name: '+Inf voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => (d[7] = Number.POSITIVE_INFINITY))), inspect: { stdout: /non-finite\s+1 NaN or infinite voxels \(0 NaN, 1 infinite/ }, predict: { exit: 2, stderr: /1 of 32000 voxels in the FLAIR image are NaN or infinite/ }, convert: { exit: 2, stderr: /NaN or infinite/ }, evaluate: 'unread' },
    { name: '-Inf voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => (d[9] = Number.NEGATIVE_INFINITY))), inspect: { stdout: /non-finite\s+1 NaN or infinite voxels \(0 NaN, 1 infinite/ }, predict: { exit: 2, stderr: /1 of 32000 voxels in the FLAIR image are NaN or infinite/ }, convert: { exit: 2, stderr: /NaN or infinite/ }, evaluate: 'unread' },
    { name: 'scl_slope 3e38 (every voxel overflows)', target: 'flair', apply: header((h) => h.writeFloatLE(3e38, 112)), inspect: { stdout: /non-finite\s+\d+ NaN or infinite voxels/ }, predict: { exit: 2, stderr: /voxels in the FLAIR image are NaN or infinite \(the first at index \d+, after scl_slope\/scl_inter scaling\)/ }, convert: { exit: 2, stderr: /NaN or infinite/ }, evaluate: 'unread' },
    { name: 'scl_slope NaN (no scaling, as NIfTI says)', target: 'flair', apply: header((h) => h.writeFloatLE(Number.NaN, 112)), inspect: { stdout: /int16/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'scl_slope 0 (no scaling, as NIfTI says)', target: 'flair', apply: header((h) => h.writeFloatLE(0, 112)), inspect: { stdout: /int16/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'halved float voxels with scl_slope 2', target: 'flair', apply: async (c, id) => { await editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => d.forEach((x, i) => (d[i] = x / 2)))); await editHeader(file(c, id, 'flair'), (h) => h.writeFloatLE(2, 112)); }, inspect: { stdout: /float32/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'an all-zero FLAIR', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => d.fill(0))), inspect: { stdout: /range\s+0 \.\. 0/ }, predict: { warn: /flair\.nii\.gz: FLAIR is constant \(every voxel 0\): it holds no image/ }, convert: { warn: /flair\.nii\.gz: FLAIR is constant \(every voxel 0\): it holds no image/ }, evaluate: 'unread' },
    { name: 'a constant FLAIR', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => withValues(v, (d) => d.fill(100))), inspect: { stdout: /range\s+100 \.\. 100/ }, predict: { warn: /FLAIR is constant \(every voxel 100\): it holds no image/ }, convert: { warn: /FLAIR is constant \(every voxel 100\)/ }, evaluate: 'unread' },
    { name: 'a case with every image blank', target: 'case', apply: async (c, id) => everyModality(c, id, (v) => withValues(v, (d) => d.fill(0))), inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: { warn: /every channel is constant: the label map is empty without running the model/ }, convert: { warn: /T2w is constant \(every voxel 0\)/ }, evaluate: 'unread' },

    // Odd but valid encodings: the same scan, the same answer.
    { name: 'float32 voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => asType(v, 'float32')), inspect: { stdout: /float32/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'float64 voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => asType(v, 'float64')), inspect: { stdout: /float64/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'int32 voxels', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => asType(v, 'int32')), inspect: { stdout: /int32/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'big-endian int16', target: 'flair', apply: async (c, id) => bigEndian(file(c, id, 'flair')), inspect: { stdout: /big-endian|int16/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'an uncompressed .nii FLAIR', target: 'flair', apply: async (c, id) => { const raw = await rawBytes(file(c, id, 'flair')); await fs.rm(file(c, id, 'flair')); await fs.writeFile(file(c, id, 'flair').replace(/\.gz$/, ''), raw); }, inspect: 'unread', predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'sform only (qform_code 0)', target: 'flair', apply: header((h) => h.writeInt16LE(0, 252)), inspect: { stdout: /sform/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'qform only (sform_code 0)', target: 'flair', apply: header((h) => h.writeInt16LE(0, 254)), inspect: { stdout: /qform/ }, predict: 'same', convert: 'same', evaluate: 'unread' },
    { name: 'every image flipped on i, affines updated', target: 'case', apply: async (c, id) => { await everyModality(c, id, flipI); await editVolume(file(c, id, 'seg'), flipI); }, inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: { turned: flipI }, convert: 'same', evaluate: 'same' },
    { name: 'every file with an affine whose j axis has no direction', target: 'case', apply: async (c, id) => { await everyModality(c, id, flattenJ); await editVolume(file(c, id, 'seg'), flattenJ); }, inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: { exit: 2, stderr: /Phantom_001_flair\.nii\.gz: its voxel-to-world affine has no orientation \(voxel axis j has no direction \(column 1 is \[0, 0, 0\]\)\)/ }, convert: { exit: 2, stderr: /Phantom_001_flair\.nii\.gz: its voxel-to-world affine has no orientation/ }, evaluate: 'same' },
    { name: 'every image with i and j swapped, affines updated', target: 'case', apply: async (c, id) => { await everyModality(c, id, swapIJ); await editVolume(file(c, id, 'seg'), swapIJ); }, inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: { turned: swapIJ }, convert: 'same', evaluate: 'same' },

    // Geometry that does not fit.
    { name: 'a FLAIR of another shape', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => createVolume('int16', new Int16Array(38 * 40 * 20), [38, 40, 20], { affine: v.affine })), inspect: { stdout: /38/ }, predict: { exit: 2, stderr: /shape|grid/ }, convert: { exit: 2, stderr: /shape|grid/ }, evaluate: 'unread' },
    { name: 'a FLAIR shifted by 10 mm (not co-registered)', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => createVolume(v.dtype, v.data, v.shape, { affine: toAffine(v.affine.map((row, r) => (r === 0 ? [row[0]!, row[1]!, row[2]!, row[3]! + 10] : [...row]))), spacing: v.spacing })), inspect: { stdout: /affine|sform/i }, predict: { exit: 2, stderr: /not on one grid|affine|co-registered/i }, convert: { exit: 2, stderr: /not on one grid|affine|co-registered/i }, evaluate: 'unread' },
    { name: 'a 4D FLAIR of two frames', target: 'flair', apply: async (c, id) => editVolume(file(c, id, 'flair'), (v) => createVolume('float32', Float32Array.from([...v.data, ...v.data], Number), [...v.shape, 2] as never, { affine: v.affine })), inspect: { stdout: /40 x 40 x 20 x 2|\[40, 40, 20, 2\]/ }, predict: { exit: 2, stderr: /3D|frames|4D/ }, convert: { exit: 2, stderr: /3D|frames|4D/ }, evaluate: 'unread' },
    { name: 'pixdim 0 on every axis and no orientation', target: 'flair', apply: header((h) => { h.writeInt16LE(0, 252); h.writeInt16LE(0, 254); for (const o of [80, 84, 88]) h.writeFloatLE(0, o); }), inspect: { stdout: /spacing/ }, predict: { exit: 2, stderr: /grid|affine|spacing/ }, convert: { exit: 2, stderr: /grid|affine|spacing/ }, evaluate: 'unread' },
    { name: 'spacing 2 mm on every image', target: 'case', apply: async (c, id) => { await everyModality(c, id, (v) => scaled(v, 2)); await editVolume(file(c, id, 'seg'), (v) => scaled(v, 2)); }, inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: { stdout: /Phantom_001: spacing 2 x 2 x 2 mm resampled to the model's 1 x 1 x 1 mm/ }, convert: { stdout: /spacing\s+2 x 2 x 2 mm, every case: recorded/ }, evaluate: { stdout: /Phantom_001/ } },
    { name: 'a head that was not skull-stripped: noise around it, 5 mm voxels (4.0 L)', target: 'case', apply: async (c, id) => { await everyModality(c, id, (v) => scaled(noisyBackground(v), 5)); await editVolume(file(c, id, 'seg'), (v) => scaled(v, 5)); }, inspect: { stdout: /warnings\s+1\n\s+- case Phantom_001: \S+flair\.nii\.gz: FLAIR is non-zero over 4\.0 L, more than any skull-stripped brain/ }, predict: { warn: /flair\.nii\.gz: FLAIR is non-zero over 4\.0 L, more than any skull-stripped brain .+ strip the skull first/ }, convert: { warn: /flair\.nii\.gz: FLAIR is non-zero over 4\.0 L, more than any skull-stripped brain/ }, evaluate: { stdout: /Phantom_001/ } },

    // Broken case folders.
    { name: 'a FLAIR file twice, as .nii and .nii.gz', target: 'case', apply: async (c, id) => fs.writeFile(file(c, id, 'flair').replace(/\.gz$/, ''), await rawBytes(file(c, id, 'flair'))), ...twoFiles },
    { name: 'an upper-case _FLAIR copy beside the scans (not BraTS naming: ignored)', target: 'case', apply: async (c, id) => fs.copyFile(file(c, id, 'flair'), path.join(c, `${id}_FLAIR.nii.gz`)), inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: 'same', convert: 'same', evaluate: 'same' },
    { name: 'a FLAIR file with an unknown suffix', target: 'case', apply: async (c, id) => fs.rename(file(c, id, 'flair'), path.join(c, `${id}_fluid.nii.gz`)), inspect: { exit: 2, stderr: /no dataset found/ }, predict: { exit: 2, stderr: /no dataset found: .*found Phantom_001_fluid\.nii\.gz/ }, convert: { exit: 2, stderr: /no dataset found/ }, evaluate: { exit: 2, stderr: /no dataset found/ } },
    { name: 'an empty case folder', target: 'case', apply: async (c) => { for (const name of await fs.readdir(c)) await fs.rm(path.join(c, name)); }, inspect: { exit: 2, stderr: /no dataset found/ }, predict: { exit: 2, stderr: /Phantom_001: no dataset found/ }, convert: { exit: 2, stderr: /no dataset found/ }, evaluate: { exit: 2, stderr: /no dataset found/ } },
    { name: 'stray files beside the scans', target: 'case', apply: async (c) => { await fs.writeFile(path.join(c, 'notes.txt'), 'hello'); await fs.writeFile(path.join(c, '.DS_Store'), 'x'); }, inspect: { stdout: /cases\s+1 \(1 labelled\)/ }, predict: 'same', convert: 'same', evaluate: 'same' },

    // Label maps (the reference of convert and evaluate).
    { name: 'label 3 in a BraTS 2018 label map', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => { const d = Uint8Array.from(v.data, Number); d[d.indexOf(1)] = 3; return createVolume('uint8', d, v.shape, { affine: v.affine }); }), inspect: { stdout: /3/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /label|3/ }, evaluate: { exit: 2, stderr: /label|3/ } },
    { name: 'label 7 in a label map', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => { const d = Uint8Array.from(v.data, Number); d[5] = 7; return createVolume('uint8', d, v.shape, { affine: v.affine }); }), inspect: { stdout: /7/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /label|7/ }, evaluate: { exit: 2, stderr: /label|7/ } },
    { name: 'a label map of fractions', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => withValues(v, (d) => (d[5] = 1.5))), inspect: { stdout: /dtype\s+float32/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /label|integer|1\.5/ }, evaluate: { exit: 2, stderr: /label|integer|1\.5/ } },
    { name: 'a label map with NaN', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => withValues(v, (d) => (d[5] = Number.NaN))), inspect: { stdout: /NaN/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /NaN|label/ }, evaluate: { exit: 2, stderr: /NaN|label/ } },
    { name: 'a label map of another shape', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => createVolume('uint8', new Uint8Array(40 * 40 * 19), [40, 40, 19], { affine: v.affine })), inspect: { stdout: /19/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /shape|grid/ }, evaluate: { exit: 2, stderr: /shape|grid/ } },
    { name: 'a label map shifted by 10 mm', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => createVolume(v.dtype, v.data, v.shape, { affine: toAffine(v.affine.map((row, r) => (r === 1 ? [row[0]!, row[1]!, row[2]!, row[3]! + 10] : [...row]))) })), inspect: 'unread', ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /grid|affine/i }, evaluate: { exit: 2, stderr: /grid|affine/i } },
    { name: 'an empty label map', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => createVolume('uint8', new Uint8Array(v.data.length), v.shape, { affine: v.affine })), inspect: 'unread', ...CLEAN_SEG, convert: { stdout: /1 labelled cases/ }, evaluate: { stdout: /WT/ } },
    { name: 'a float32 label map of whole numbers', target: 'seg', apply: async (c, id) => editVolume(file(c, id, 'seg'), (v) => asType(v, 'float32')), inspect: 'unread', ...CLEAN_SEG, convert: 'same', evaluate: 'same' },
    { name: 'a label map cut short', target: 'seg', apply: flairBytesFor('seg', (raw) => gzipSync(raw.subarray(0, raw.length - 10))), inspect: { exit: 2, stderr: /truncated/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /seg\.nii\.gz: truncated/ }, evaluate: { exit: 2, stderr: /seg\.nii\.gz: truncated/ } },
    { name: 'a FIFO as the label map', target: 'seg', apply: async (c, id) => { await fs.rm(file(c, id, 'seg')); execFileSync('mkfifo', [file(c, id, 'seg')]); }, inspect: { exit: 2, stderr: /FIFO/ }, ...CLEAN_SEG, ...REFERENCE_LEFT_OUT, convert: { exit: 2, stderr: /FIFO/ }, evaluate: { exit: 2, stderr: /FIFO/ } },

    // Predictions (what evaluate scores).
    { name: 'a prediction on another grid', target: 'prediction', apply: async () => undefined, inspect: 'unread', predict: 'unread', convert: 'unread', evaluate: { exit: 2, stderr: /shape|grid/ } },
    { name: 'a prediction cut short', target: 'prediction', apply: async () => undefined, inspect: 'unread', predict: 'unread', convert: 'unread', evaluate: { exit: 2, stderr: /truncated/ } },
    { name: 'no prediction for the case', target: 'prediction', apply: async () => undefined, inspect: 'unread', predict: 'unread', convert: 'unread', evaluate: { exit: 2, stderr: /Phantom_001/ } },
    { name: 'a prediction with label 9', target: 'prediction', apply: async () => undefined, inspect: 'unread', predict: 'unread', convert: 'unread', evaluate: { exit: 2, stderr: /label|9/ } },
    { name: 'a prediction that is a symbolic link to /dev/zero', target: 'prediction', apply: async () => undefined, inspect: 'unread', predict: 'unread', convert: 'unread', evaluate: { exit: 2, stderr: /character device/ } },
  ];
  return kinds;
}

/** Damages the raw bytes of `<id>_<suffix>.nii.gz`. */
function flairBytesFor(suffix: string, make: (raw: Buffer) => Uint8Array) {
  return async (caseDir: string, id: string): Promise<void> => {
    const target = file(caseDir, id, suffix);
    await fs.writeFile(target, make(await rawBytes(target)));
  };
}

/** The volume with every voxel `factor` times as large (spacing and affine), values unchanged. */
function scaled(volume: Volume, factor: number): Volume {
  const affine = toAffine(volume.affine.map((row, r) => (r < 3 ? [row[0]! * factor, row[1]! * factor, row[2]! * factor, row[3]!] : [...row])));
  return createVolume(volume.dtype, volume.data, volume.shape, { affine, spacing: volume.spacing.map((s) => s * factor) as [number, number, number] });
}

/** The volume with every 0 replaced by a small positive value, as a scanner's background noise is (1 to 9, deterministic). */
function noisyBackground(volume: NiftiVolume): Volume {
  const data = Float32Array.from(volume.data, (value, index) => (value === 0 ? 1 + ((index * 7919) % 9) : Number(value)));
  return createVolume('float32', data, volume.shape, { affine: volume.affine, spacing: volume.spacing });
}

/** Rewrites a NIfTI-1 int16 file in big-endian byte order. */
async function bigEndian(target: string): Promise<void> {
  const raw = await rawBytes(target);
  const out = Buffer.from(raw);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const swapped = new DataView(out.buffer, out.byteOffset, out.byteLength);
  // Header fields by size: int32 at 0; int16 dims/intent/datatype/bitpix/slice_start; float32 from 56; more below.
  swapped.setInt32(0, 348, false);
  for (let o = 32; o < 36; o += 4) swapped.setInt32(o, view.getInt32(o, true), false);
  for (let o = 40; o < 56; o += 2) swapped.setInt16(o, view.getInt16(o, true), false);
  for (let o = 56; o < 68; o += 4) swapped.setFloat32(o, view.getFloat32(o, true), false);
  for (let o = 68; o < 76; o += 2) swapped.setInt16(o, view.getInt16(o, true), false);
  for (let o = 76; o < 120; o += 4) swapped.setFloat32(o, view.getFloat32(o, true), false);
  swapped.setInt16(120, view.getInt16(120, true), false);
  for (let o = 124; o < 148; o += 4) swapped.setFloat32(o, view.getFloat32(o, true), false);
  for (let o = 140; o < 148; o += 4) swapped.setInt32(o, view.getInt32(o, true), false);
  for (let o = 252; o < 256; o += 2) swapped.setInt16(o, view.getInt16(o, true), false);
  for (let o = 256; o < 328; o += 4) swapped.setFloat32(o, view.getFloat32(o, true), false);
  for (let o = 352; o + 2 <= raw.length; o += 2) swapped.setInt16(o, view.getInt16(o, true), false);
  await writeRaw(target, out);
}
