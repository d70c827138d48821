/**
 * The data model: a `Volume` is a typed array with its dtype, shape (NIfTI i-j-k[-t] order, i fastest),
 * voxel spacing in mm and the 4x4 voxel-to-world affine.
 */
import { ArgumentError, ShapeMismatchError } from './errors.js';

/** dtype name → typed-array type; the one place where the two are tied. */
export interface DTypeMap {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/** Every supported voxel dtype. */
export type DType = keyof DTypeMap;

/** Any typed array a Volume may hold. */
export type VoxelArray = DTypeMap[DType];

/** Typed-array constructors by dtype. */
export const DTYPE_ARRAYS: { [K in DType]: { new (length: number): DTypeMap[K]; BYTES_PER_ELEMENT: number } } = {
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
};

/** A 3D shape `[i, j, k]` or 4D shape `[i, j, k, t]` in NIfTI order (i varies fastest in memory). */
export type VolumeShape = readonly [number, number, number] | readonly [number, number, number, number];

/** Voxel size in mm along i, j, k. */
export type Spacing = readonly [number, number, number];

/** Row-major 4x4 voxel-to-world matrix (world = affine · [i, j, k, 1]). */
export type Affine = readonly [
  readonly [number, number, number, number],
  readonly [number, number, number, number],
  readonly [number, number, number, number],
  readonly [number, number, number, number],
];

/** The geometry fields of a NIfTI header that a writer keeps so outputs overlay their input. */
export interface NiftiGeometry {
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d */
  quaternion: readonly [number, number, number];
  /** qoffset_x, qoffset_y, qoffset_z */
  qoffset: readonly [number, number, number];
  /** pixdim[0], the qform handedness factor (±1) */
  qfac: number;
  /** srow_x, srow_y, srow_z */
  srow: readonly [readonly number[], readonly number[], readonly number[]];
  /** xyzt_units byte */
  xyztUnits: number;
  /** pixdim[1..7] */
  pixdim: readonly number[];
  description: string;
}

/** An image or label map with its geometry. */
export interface Volume<D extends DType = DType> {
  dtype: D;
  data: DTypeMap[D];
  shape: VolumeShape;
  spacing: Spacing;
  affine: Affine;
  /** Header geometry of the file it came from, if any; writers keep it. */
  header?: NiftiGeometry;
}

/** The identity affine scaled by `spacing`. */
export function affineFromSpacing(spacing: Spacing): Affine {
  return [
    [spacing[0], 0, 0, 0],
    [0, spacing[1], 0, 0],
    [0, 0, spacing[2], 0],
    [0, 0, 0, 1],
  ];
}

/** Voxel sizes implied by an affine: the lengths of its first three columns. */
export function spacingFromAffine(affine: Affine): Spacing {
  const length = (c: 0 | 1 | 2): number => Math.hypot(affine[0][c], affine[1][c], affine[2][c]);
  return [length(0), length(1), length(2)];
}

/** Number of voxels of a shape (product of its dimensions). */
export function voxelCount(shape: readonly number[]): number {
  let count = 1;
  for (const n of shape) count *= n;
  return count;
}

/**
 * Makes a volume, checking that the data length matches the shape. Without `spacing`, it is taken from
 * `affine` (column lengths), or 1 mm.
 * @throws {ShapeMismatchError} when `data.length` differs from the product of `shape`.
 */
export function createVolume<D extends DType>(
  dtype: D,
  data: DTypeMap[D],
  shape: VolumeShape,
  geometry: { spacing?: Spacing; affine?: Affine; header?: NiftiGeometry } = {},
): Volume<D> {
  if (data.length !== voxelCount(shape)) {
    throw new ShapeMismatchError('createVolume(): data length', [voxelCount(shape)], [data.length]);
  }
  const spacing = geometry.spacing ?? (geometry.affine === undefined ? [1, 1, 1] : spacingFromAffine(geometry.affine));
  const volume: Volume<D> = { dtype, data, shape, spacing, affine: geometry.affine ?? affineFromSpacing(spacing) };
  if (geometry.header !== undefined) volume.header = geometry.header;
  return volume;
}

/** A new zero-filled volume with the geometry of `like` (shape may be overridden, e.g. to drop t). */
export function zerosLike<D extends DType>(like: Volume, dtype: D, shape: VolumeShape = like.shape): Volume<D> {
  const data = new DTYPE_ARRAYS[dtype](voxelCount(shape)) as DTypeMap[D];
  const volume: Volume<D> = { dtype, data, shape, spacing: like.spacing, affine: like.affine };
  if (like.header !== undefined) volume.header = like.header;
  return volume;
}

/** The 3D shape and the data range of frame `t` of a 4D volume, checked for `caller`. */
function frameRange(caller: string, volume: Volume, t: number): { shape3: readonly [number, number, number]; start: number; end: number } {
  if (volume.shape.length !== 4) throw new ArgumentError(caller, 'volume', 'must be 4D');
  const frames = volume.shape[3];
  if (!Number.isInteger(t) || t < 0 || t >= frames) {
    throw new ArgumentError(caller, 't', `must be an integer in [0, ${frames - 1}], got ${t}`);
  }
  const shape3 = [volume.shape[0], volume.shape[1], volume.shape[2]] as const;
  const n = voxelCount(shape3);
  return { shape3, start: t * n, end: (t + 1) * n };
}

/**
 * Extracts frame `t` of a 4D volume as a 3D volume (a copy).
 * @throws {ArgumentError} when the volume is not 4D or `t` is out of range.
 */
export function selectFrame<D extends DType>(volume: Volume<D>, t: number): Volume<D> {
  const { shape3, start, end } = frameRange('selectFrame', volume, t);
  return createVolume(volume.dtype, volume.data.slice(start, end) as DTypeMap[D], shape3, volumeGeometry(volume));
}

/**
 * Frame `t` of a 4D volume as a 3D volume that shares the 4D volume's memory (a frame is one contiguous block, the
 * fourth axis being the slowest): no copy, so writing to it writes to the 4D volume. {@link selectFrame} copies.
 * @throws {ArgumentError} when the volume is not 4D or `t` is out of range.
 */
export function frameView<D extends DType>(volume: Volume<D>, t: number): Volume<D> {
  const { shape3, start, end } = frameRange('frameView', volume, t);
  return createVolume(volume.dtype, volume.data.subarray(start, end) as DTypeMap[D], shape3, volumeGeometry(volume));
}

/** The geometry fields of a volume, for building another volume on the same grid. */
export function volumeGeometry(volume: Volume): { spacing: Spacing; affine: Affine; header?: NiftiGeometry } {
  return volume.header === undefined
    ? { spacing: volume.spacing, affine: volume.affine }
    : { spacing: volume.spacing, affine: volume.affine, header: volume.header };
}

/** True when two affines agree within `tolerance` (mm) in every entry. */
export function affinesClose(a: Affine, b: Affine, tolerance = 1e-3): boolean {
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) if (Math.abs(a[r]![c]! - b[r]![c]!) > tolerance) return false;
  return true;
}

/** The one value every voxel holds, or undefined when they differ: an empty or blanked image holds no image. */
export function constantValue(data: ArrayLike<number>): number | undefined {
  const first = data[0] ?? 0;
  for (let v = 1; v < data.length; v++) if (data[v] !== first) return undefined;
  return first;
}

/**
 * The spacing of a model bundle or a slice store that records none: BraTS and the Decathlon are 1 mm isotropic.
 */
export const DEFAULT_MODEL_SPACING: readonly [number, number, number] = [1, 1, 1];

/**
 * Whether two voxel sizes are one spacing: alike within 1 % of `reference` on every axis (what a NIfTI header's
 * float rounding leaves of one spacing). Segmentation resamples a scan whose spacing is not the model's; a slice store
 * records a spacing only when its cases share one; fine-tuning refuses a source of another spacing.
 */
export function sameSpacing(spacing: readonly number[], reference: readonly number[]): boolean {
  return spacing.every((value, axis) => Math.abs(value - reference[axis]!) <= 0.01 * reference[axis]!);
}

/** A spacing as people read it: `1 x 1 x 3` (mm), three decimals at most. */
export function formatSpacing(spacing: readonly number[]): string {
  return spacing.map((value) => Number(value.toFixed(3))).join(' x ');
}

/** The 3D part `[i, j, k]` of a shape. */
export function spatialShape(shape: VolumeShape): readonly [number, number, number] {
  return [shape[0], shape[1], shape[2]];
}
