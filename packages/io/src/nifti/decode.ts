/**
 * NIfTI decoding from bytes already in memory, with no Node.js module: the part of reading that a browser runs too
 * (`@brats/io/browser`). Reading files and gunzip with zlib stay in read.ts.
 */
import * as nifti from 'nifti-reader-js';
import { NiftiFormatError } from '../errors.js';
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
 * Decompresses gzip bytes, refusing to give more than `maxBytes` (zlib in Node, DecompressionStream in a browser),
 * into memory nobody else holds (the voxels may become a view of it).
 */
export type Gunzip = (bytes: Uint8Array, maxBytes: number) => Promise<Uint8Array>;

/**
 * Parses NIfTI bytes (gzip-compressed or not) with the given gunzip; `path` is used in error messages only.
 * @throws {NiftiFormatError} for bytes that are not a readable NIfTI file, or decompress beyond `maxBytes`.
 */
export async function parseNiftiWith(gunzip: Gunzip, bytes: Uint8Array, path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES;
  let raw: Uint8Array = bytes;
  let owned = false;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      raw = await gunzip(bytes, maxBytes);
      owned = true;
    } catch (error) {
      if (error instanceof NiftiFormatError) throw error;
      const code = (error as { code?: unknown }).code;
      const reason =
        code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError
          ? `decompressed size exceeds the limit of ${maxBytes} bytes`
          : 'gzip stream is truncated or corrupt';
      throw new NiftiFormatError(path, reason, { cause: error });
    }
  } else if (bytes.length > maxBytes) {
    throw new NiftiFormatError(path, `file size ${bytes.length} exceeds the limit of ${maxBytes} bytes`);
  }
  return decodeNifti(raw, path, options.headerOnly ?? false, raw.length, owned);
}

/**
 * Where the header and its extensions end (vox_offset, at least the header itself), read from the first bytes of
 * a NIfTI-1/2 file in either byte order; undefined when they do not say (too few bytes, not NIfTI, or a vox_offset
 * that is not a number >= 0).
 */
export function headerEnd(head: Uint8Array): number | undefined {
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
 * A standalone copy of the header and extensions (everything before vox_offset), so the header parser does not
 * get a copy of the voxels too. Falls back to the whole file when vox_offset cannot be read.
 */
function headerBuffer(raw: Uint8Array): ArrayBuffer {
  const end = headerEnd(raw);
  return new Uint8Array(raw.subarray(0, end === undefined ? raw.length : Math.min(raw.length, end))).buffer;
}

/**
 * `length` is the whole (decompressed) file's, when `raw` is only its first bytes (a header-only read). `owned`:
 * nobody else holds `raw` (it was decompressed here), so the voxels may be a view of it instead of a copy.
 */
export function decodeNifti(raw: Uint8Array, path: string, headerOnly: boolean, length = raw.length, owned = false): NiftiVolume {
  if (raw.length < 348) {
    throw new NiftiFormatError(path, `truncated header: ${raw.length} bytes, a NIfTI header needs at least 348`);
  }
  const buffer = headerBuffer(raw);
  if (!nifti.isNIFTI(buffer)) {
    throw new NiftiFormatError(path, 'not a NIfTI-1 or NIfTI-2 file (bad magic or header size)');
  }
  // What nifti.readHeader does, less its gzip check: the bytes here are already inflated, and leaving that path out
  // lets the build drop fflate (see tsup.config.ts).
  const header = nifti.isNIFTI1(buffer) ? new nifti.NIFTI1() : new nifti.NIFTI2();
  try {
    header.readHeader(buffer);
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
  // The voxels as a view of bytes decompressed here when they are aligned for their type, else copied into an
  // aligned buffer of our own (new Uint8Array(view) copies even when raw is a Buffer, whose slice() would share
  // pooled memory); bytes are swapped when the file is big-endian.
  const start = raw.byteOffset + voxOffset;
  const bytes =
    owned && start % itemSize === 0
      ? new Uint8Array(raw.buffer, start, count * itemSize)
      : new Uint8Array(raw.subarray(voxOffset, voxOffset + count * itemSize));
  if (!header.littleEndian && itemSize > 1) swapBytes(bytes, itemSize);
  let data = new (DTYPE_ARRAYS[dtype] as unknown as { new (buffer: ArrayBufferLike, offset: number, length: number): Volume['data'] })(bytes.buffer, bytes.byteOffset, count);
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
