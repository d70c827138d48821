/**
 * NIfTI encoding to bytes, with no Node.js module (a browser runs it too, from `@brats/io/browser`); writing files
 * and gzip with zlib stay in write.ts.
 */
import { ArgumentError } from '../errors.js';
import { DTYPE_ARRAYS, type DType, type DTypeMap, type Volume, voxelCount } from '../volume.js';
import { NIFTI_DATATYPE_CODES } from './dtypes.js';
import { affineToQuaternion } from './geometry.js';

/** Options of {@link writeNifti}. */
export interface WriteNiftiOptions {
  /** Store the voxels as this dtype (values are rounded and clamped for integer types). Default: the volume's. */
  dtype?: DType;
  /** gzip level 1-9 for `.nii.gz` (default 6). */
  compressionLevel?: number;
  /** Text for the header's `descrip` field (80 bytes at most). */
  description?: string;
}

const INTEGER_RANGES: Partial<Record<DType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

/**
 * Encodes a volume as NIfTI-1 single-file bytes (uncompressed). The srow (sform) is the volume's affine
 * and the qform is derived from it; the qform/sform codes, units and description of the volume's source
 * header are kept (codes default to 1, scanner anatomical), so a written mask overlays its scan.
 */
export function encodeNifti(volume: Volume, options: WriteNiftiOptions = {}): Uint8Array {
  const dtype = options.dtype ?? volume.dtype;
  const count = voxelCount(volume.shape);
  if (volume.data.length !== count) {
    throw new ArgumentError('encodeNifti', 'volume', `has ${volume.data.length} values for shape [${volume.shape.join(', ')}]`);
  }
  const itemSize = DTYPE_ARRAYS[dtype].BYTES_PER_ELEMENT;
  const voxOffset = 352;
  const out = new Uint8Array(voxOffset + count * itemSize);
  const view = new DataView(out.buffer);
  const header = volume.header;
  const q = affineToQuaternion(volume.affine);
  view.setInt32(0, 348, true);
  view.setInt16(40, volume.shape.length, true);
  for (let i = 0; i < 7; i++) view.setInt16(42 + i * 2, volume.shape[i] ?? 1, true);
  view.setInt16(70, NIFTI_DATATYPE_CODES[dtype], true);
  view.setInt16(72, itemSize * 8, true);
  const pixdim = [q.qfac, volume.spacing[0], volume.spacing[1], volume.spacing[2], header?.pixdim[3] ?? 0, 0, 0, 0];
  if (volume.shape.length === 4 && !(pixdim[4]! > 0)) pixdim[4] = 1;
  for (let i = 0; i < 8; i++) view.setFloat32(76 + i * 4, pixdim[i]!, true);
  view.setFloat32(108, voxOffset, true);
  view.setFloat32(112, 1, true); // scl_slope: values are stored as they are
  view.setFloat32(116, 0, true);
  out[123] = header?.xyztUnits ?? 10; // mm and seconds
  const description = (options.description ?? header?.description ?? '@brats').slice(0, 79);
  for (let i = 0; i < description.length; i++) out[148 + i] = description.charCodeAt(i) & 0x7f;
  view.setInt16(252, header?.qformCode ?? 1, true);
  view.setInt16(254, header?.sformCode ?? 1, true);
  view.setFloat32(256, q.quaternion[0], true);
  view.setFloat32(260, q.quaternion[1], true);
  view.setFloat32(264, q.quaternion[2], true);
  view.setFloat32(268, q.offset[0], true);
  view.setFloat32(272, q.offset[1], true);
  view.setFloat32(276, q.offset[2], true);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) view.setFloat32(280 + (r * 4 + c) * 4, volume.affine[r]![c]!, true);
  out.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"
  // Bytes 348-351: no extensions.
  const TargetArray = DTYPE_ARRAYS[dtype] as unknown as new (buffer: ArrayBuffer, offset: number, length: number) => DTypeMap[DType];
  const target = new TargetArray(out.buffer, voxOffset, count);
  const range = INTEGER_RANGES[dtype];
  if (range === undefined || volume.dtype === dtype) {
    target.set(volume.data);
  } else {
    const [low, high] = range;
    for (let i = 0; i < count; i++) target[i] = Math.min(high, Math.max(low, Math.round(volume.data[i]!)));
  }
  return out;
}
