import { createReadStream, promises as fs } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import * as nifti from 'nifti-reader-js';
import { NiftiFormatError } from '../errors.js';
import { checkRegularFile, readRegularFile } from '../safe-read.js';
import {
  DTYPE_ARRAYS,
  type Affine,
  type DType,
  type NiftiGeometry,
  type Volume,
  type VolumeShape,
  voxelCount,
} from '../volume.js';
import { dtypeFromNiftiCode, niftiCodeName } from './dtypes.js';
import { quaternionToAffine } from './geometry.js';

const gunzipAsync = promisify(gunzip);

/** Default cap on the decompressed size of one NIfTI file (2 GiB): a gzip bomb stops here. */
export const DEFAULT_MAX_NIFTI_BYTES = 2 * 1024 ** 3;

/** Options of {@link readNifti}. */
export interface ReadNiftiOptions {
  /** Largest decompressed size accepted, in bytes (default {@link DEFAULT_MAX_NIFTI_BYTES}). */
  maxBytes?: number;
  /** Read the header only: `data` is empty and `shape` still describes the file. */
  headerOnly?: boolean;
}

/** What the header of a NIfTI file says, beyond the Volume fields. */
export interface NiftiHeaderSummary {
  version: 1 | 2;
  dtype: DType;
  littleEndian: boolean;
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  description: string;
}

/** A volume read from a file, with its header summary. */
export type NiftiVolume = Volume & { path: string; nifti: NiftiHeaderSummary };

/**
 * Reads a NIfTI-1 or NIfTI-2 file (`.nii` or `.nii.gz`, either byte order) into a Volume.
 * Shape is NIfTI i-j-k[-t]; scl_slope/scl_inter are applied (the dtype becomes float32, or float64 for
 * float64 files); the affine comes from the sform when sform_code > 0, else the qform when
 * qform_code > 0, else from pixdim (NIfTI method 1).
 * @throws {NiftiFormatError} for an unreadable, truncated, oversized or unsupported file, or a path that is not a
 *   regular file (a FIFO, a device, a folder; symbolic links are followed).
 * @example const flair = await readNifti('BraTS_001_flair.nii.gz');
 */
export async function readNifti(path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  if (options.headerOnly === true) return readNiftiHeader(path, options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES);
  // A gzip file is smaller than what it holds: the compressed bytes get the same cap as the decompressed ones.
  const read = await readRegularFile(path, options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES);
  if (!read.ok) throw new NiftiFormatError(path, read.reason);
  return parseNifti(read.bytes, path, options);
}

/**
 * Parses NIfTI bytes (gzip-compressed or not); `path` is used in error messages only.
 * @throws {NiftiFormatError} as {@link readNifti}.
 */
export async function parseNifti(bytes: Uint8Array, path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES;
  let raw: Uint8Array = bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      raw = await gunzipAsync(bytes, { maxOutputLength: maxBytes });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const reason =
        code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError
          ? `decompressed size exceeds the limit of ${maxBytes} bytes`
          : 'gzip stream is truncated or corrupt';
      throw new NiftiFormatError(path, reason, { cause: error });
    }
  } else if (bytes.length > maxBytes) {
    throw new NiftiFormatError(path, `file size ${bytes.length} exceeds the limit of ${maxBytes} bytes`);
  }
  return decodeNifti(raw, path, options.headerOnly ?? false);
}

/** The most header and extension bytes {@link readNiftiHeader} keeps, whatever vox_offset claims. */
const MAX_HEADER_PREFIX = 16 * 1024 ** 2;

/**
 * Where the header and its extensions end (vox_offset, at least the header itself), read from the first bytes of
 * a NIfTI-1/2 file in either byte order; undefined when they do not say (too few bytes, not NIfTI, or a vox_offset
 * that is not a number >= 0).
 */
function headerEnd(head: Uint8Array): number | undefined {
  if (head.length < 4) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    const offset = size === 348 && head.length >= 112 ? view.getFloat32(108, littleEndian) : size === 540 && head.length >= 176 ? Number(view.getBigInt64(168, littleEndian)) : undefined;
    if (offset !== undefined) return Number.isFinite(offset) && offset >= 0 ? Math.max(size + 4, Math.ceil(offset)) : undefined;
  }
  return undefined;
}

/**
 * The header of a NIfTI file, checked as {@link readNifti} checks it (its length against its dims included), in
 * constant memory: the file is streamed and decompressed chunk by chunk, only the header is kept, and the rest
 * is counted. A server checks uploads this way so that a burst of them, or a gzip bomb, never holds whole
 * decompressed scans in memory.
 */
async function readNiftiHeader(path: string, maxBytes: number): Promise<NiftiVolume> {
  const check = await checkRegularFile(path, maxBytes);
  if (!check.ok) throw new NiftiFormatError(path, check.reason);
  let gzipped: boolean;
  try {
    const handle = await fs.open(path, 'r');
    try {
      const magic = new Uint8Array(2);
      const { bytesRead } = await handle.read(magic, 0, 2, 0);
      gzipped = bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new NiftiFormatError(path, `cannot read file (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`, { cause: error });
  }
  const file = createReadStream(path);
  // pipeline() forwards an error of either stream to the one that is iterated, and destroys both on an early stop.
  const source: Readable = gzipped ? pipeline(file, createGunzip(), () => undefined) : file;
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  // Enough for either header (NIfTI-2's is the larger) until the header says where its extensions end.
  let wanted = 544;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw new NiftiFormatError(path, `${gzipped ? 'decompressed ' : 'file '}size exceeds the limit of ${maxBytes} bytes`);
      if (kept < wanted) {
        chunks.push(chunk);
        kept += chunk.length;
        if (kept >= wanted) {
          const end = headerEnd(Buffer.concat(chunks, kept));
          if (end !== undefined) wanted = Math.min(end, MAX_HEADER_PREFIX);
        }
      }
    }
  } catch (error) {
    if (error instanceof NiftiFormatError) throw error;
    throw new NiftiFormatError(path, gzipped ? 'gzip stream is truncated or corrupt' : `cannot read file (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`, { cause: error });
  } finally {
    source.destroy();
    file.destroy();
  }
  return decodeNifti(Buffer.concat(chunks, kept), path, true, total);
}

/**
 * A standalone copy of the header and extensions (everything before vox_offset), so the header parser does not
 * get a copy of the voxels too. Falls back to the whole file when vox_offset cannot be read.
 */
function headerBuffer(raw: Uint8Array): ArrayBuffer {
  const end = headerEnd(raw);
  return new Uint8Array(raw.subarray(0, end === undefined ? raw.length : Math.min(raw.length, end))).buffer;
}

/** `length` is the whole (decompressed) file's, when `raw` is only its first bytes (a header-only read). */
function decodeNifti(raw: Uint8Array, path: string, headerOnly: boolean, length = raw.length): NiftiVolume {
  if (raw.length < 348) {
    throw new NiftiFormatError(path, `truncated header: ${raw.length} bytes, a NIfTI header needs at least 348`);
  }
  const buffer = headerBuffer(raw);
  if (!nifti.isNIFTI(buffer)) {
    throw new NiftiFormatError(path, 'not a NIfTI-1 or NIfTI-2 file (bad magic or header size)');
  }
  let header: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    header = nifti.readHeader(buffer);
  } catch (error) {
    throw new NiftiFormatError(path, 'header cannot be parsed', { cause: error });
  }
  const version: 1 | 2 = header instanceof nifti.NIFTI2 ? 2 : 1;
  const dtype = dtypeFromNiftiCode(header.datatypeCode);
  if (dtype === undefined) {
    throw new NiftiFormatError(
      path,
      `unsupported datatype ${niftiCodeName(header.datatypeCode)}; supported: uint8, int8, int16, uint16, int32, uint32, float32, float64`,
    );
  }
  const itemSize = DTYPE_ARRAYS[dtype].BYTES_PER_ELEMENT;
  if (header.numBitsPerVoxel !== itemSize * 8) {
    throw new NiftiFormatError(path, `bitpix ${header.numBitsPerVoxel} does not match datatype ${dtype} (${itemSize * 8})`);
  }
  const shape = shapeFromDims(header.dims, path);
  const count = voxelCount(shape);
  const voxOffset = Math.max(Math.floor(header.vox_offset), version === 1 ? 352 : 544);
  const needed = voxOffset + count * itemSize;
  if (!Number.isSafeInteger(needed) || needed > length) {
    throw new NiftiFormatError(
      path,
      `truncated: dims [${shape.join(', ')}] of ${dtype} need ${needed} bytes, the file has ${length}`,
    );
  }
  const geometry = readGeometry(header, raw, version);
  const spacing = [1, 2, 3].map((i) => {
    const value = Math.abs(header.pixDims[i] ?? 1);
    return Number.isFinite(value) && value > 0 ? value : 1;
  }) as [number, number, number];
  const affine = chooseAffine(geometry, spacing);
  const slope = header.scl_slope;
  const inter = header.scl_inter;
  const summary: NiftiHeaderSummary = {
    version,
    dtype,
    littleEndian: header.littleEndian,
    voxOffset,
    sclSlope: slope,
    sclInter: inter,
    qformCode: geometry.qformCode,
    sformCode: geometry.sformCode,
    description: geometry.description,
  };
  if (headerOnly) {
    return { path, nifti: summary, dtype, data: new DTYPE_ARRAYS[dtype](0), shape, spacing, affine, header: geometry };
  }
  // Copy into an aligned buffer of our own; swap bytes when the file is big-endian.
  // new Uint8Array(view) copies even when raw is a Buffer (whose slice() would share the pooled memory).
  const bytes = new Uint8Array(raw.subarray(voxOffset, voxOffset + count * itemSize));
  if (!header.littleEndian && itemSize > 1) swapBytes(bytes, itemSize);
  let data = new (DTYPE_ARRAYS[dtype] as unknown as { new (buffer: ArrayBuffer): Volume['data'] })(bytes.buffer);
  let outDtype: DType = dtype;
  if (Number.isFinite(slope) && slope !== 0 && (slope !== 1 || (Number.isFinite(inter) && inter !== 0))) {
    const offset = Number.isFinite(inter) ? inter : 0;
    const scaled = dtype === 'float64' ? new Float64Array(count) : new Float32Array(count);
    for (let i = 0; i < count; i++) scaled[i] = data[i]! * slope + offset;
    data = scaled;
    outDtype = dtype === 'float64' ? 'float64' : 'float32';
  }
  return { path, nifti: summary, dtype: outDtype, data, shape, spacing, affine, header: geometry } as NiftiVolume;
}

function shapeFromDims(dims: readonly number[], path: string): VolumeShape {
  const rank = dims[0] ?? 0;
  if (!Number.isInteger(rank) || rank < 1 || rank > 7) {
    throw new NiftiFormatError(path, `dim[0] = ${rank}: the number of dimensions must be 1 to 7`);
  }
  const sizes: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const value = i <= rank ? (dims[i] ?? 0) : 1;
    if (!Number.isInteger(value) || value < 1) {
      throw new NiftiFormatError(path, `dim[${i}] = ${value}: every dimension must be a positive integer`);
    }
    sizes.push(value);
  }
  if (sizes.slice(4).some((n) => n > 1)) {
    throw new NiftiFormatError(path, `dims [${sizes.slice(0, rank).join(', ')}]: more than 4 dimensions are not supported`);
  }
  const [i, j, k, t] = sizes as [number, number, number, number];
  return t > 1 ? [i, j, k, t] : [i, j, k];
}

function readGeometry(header: nifti.NIFTI1 | nifti.NIFTI2, raw: Uint8Array, version: 1 | 2): NiftiGeometry {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const srow: number[][] = [];
  for (let r = 0; r < 3; r++) {
    const row: number[] = [];
    for (let c = 0; c < 4; c++) {
      row.push(
        version === 1
          ? view.getFloat32(280 + (r * 4 + c) * 4, header.littleEndian)
          : view.getFloat64(400 + (r * 4 + c) * 8, header.littleEndian),
      );
    }
    srow.push(row);
  }
  const qfac = header.pixDims[0] === -1 ? -1 : 1;
  return {
    qformCode: header.qform_code,
    sformCode: header.sform_code,
    quaternion: [header.quatern_b, header.quatern_c, header.quatern_d],
    qoffset: [header.qoffset_x, header.qoffset_y, header.qoffset_z],
    qfac,
    srow: [srow[0]!, srow[1]!, srow[2]!],
    xyztUnits: header.xyzt_units,
    pixdim: header.pixDims.slice(1, 8),
    description: header.description.replace(/\0+$/, ''),
  };
}

function chooseAffine(geometry: NiftiGeometry, spacing: readonly [number, number, number]): Affine {
  if (geometry.sformCode > 0 && geometry.srow.every((row) => row.every(Number.isFinite))) {
    const [x, y, z] = geometry.srow as [number[], number[], number[]];
    return [x as never, y as never, z as never, [0, 0, 0, 1]] as Affine;
  }
  if (geometry.qformCode > 0) {
    return quaternionToAffine(geometry.quaternion, geometry.qoffset, spacing, geometry.qfac);
  }
  return [
    [spacing[0], 0, 0, 0],
    [0, spacing[1], 0, 0],
    [0, 0, spacing[2], 0],
    [0, 0, 0, 1],
  ];
}

function swapBytes(bytes: Uint8Array, itemSize: number): void {
  for (let offset = 0; offset < bytes.length; offset += itemSize) {
    for (let a = offset, b = offset + itemSize - 1; a < b; a++, b--) {
      const swap = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = swap;
    }
  }
}
