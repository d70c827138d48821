/**
 * One case in canonical form, assembled from volumes already decoded: the channel order, the checks (one grid,
 * finite voxels, the layout's label values) and the warnings. No Node.js module: the browser builds its cases with
 * the same code (`@brats/io/browser`); dataset.ts reads the files and calls this.
 */
import { DatasetError } from '../errors.js';
import { BRATS2017_LABELS, BRATS2023_LABELS, MSD_LABELS, allowedLabels, type LabelRegionMapping } from '../regions.js';
import { affinesClose, constantValue, frameView, spatialShape, type DType, type Volume } from '../volume.js';
import { CANONICAL_CHANNELS } from './channels.js';

/** The dataset layouts @brats reads. */
export type LayoutName = 'msd' | 'brats2017' | 'brats2023';

/** Where one case's files are. */
export interface CaseRef {
  id: string;
  layout: LayoutName;
  /** msd: one 4D file; BraTS layouts: four 3D files in canonical order FLAIR, T1w, T1gd, T2w. */
  images: readonly string[];
  /** For a 4D file, the frame index of each canonical channel (FLAIR, T1w, T1gd, T2w). */
  frames?: readonly [number, number, number, number];
  /** Label map path, absent for unlabelled (inference) cases. */
  label?: string;
}

/**
 * The voxel types an image channel keeps: float32, or the integers it was stored as. Every one of them converts
 * exactly to float32 where float32 is needed (preprocessing writes float32), so keeping the stored integers spares
 * a float32 copy of each channel (4 x 36 MB and ~0.1 s per BraTS case); float64 is narrowed to float32 on reading.
 */
export type ChannelDType = Exclude<DType, 'float64'>;
/** One image channel of a case. */
export type ChannelVolume = Volume<ChannelDType>;

/** One case in canonical form. */
export interface CanonicalCase {
  id: string;
  layout: LayoutName;
  /** FLAIR, T1w, T1gd, T2w as 3D volumes on one grid (NIfTI i-j-k), float32 or integer as stored ({@link ChannelDType}). */
  channels: readonly [ChannelVolume, ChannelVolume, ChannelVolume, ChannelVolume];
  /** Label map in the layout's own label values, when the case has one. */
  labels?: Volume<'uint8'>;
  labelMapping: LabelRegionMapping;
  ref: CaseRef;
  /** What was odd about the files but did not stop the read (extra 4D frames, repaired non-finite voxels), one line each. */
  warnings?: string[];
}

/** The label convention of each layout. */
export const LAYOUT_LABELS: Readonly<Record<LayoutName, LabelRegionMapping>> = {
  msd: MSD_LABELS,
  brats2017: BRATS2017_LABELS,
  brats2023: BRATS2023_LABELS,
};

/** Options of loading a case (see `loadCase`); `assembleCase` uses `nonFinite`. */
export interface LoadCaseOptions {
  /**
   * Read the label map when the case has one (default true). `if-readable`: a label map that cannot be read (or does
   * not fit the images) is left out with a warning instead of failing the case: segmenting needs only the images.
   */
  labels?: boolean | 'if-readable';
  /** Cap on the decompressed size of each file, in bytes. */
  maxBytes?: number;
  /**
   * What to do with NaN or infinite image voxels (after scl_slope/scl_inter): `error` (default) refuses the case,
   * naming the file and the count; `zero` sets them to 0 and records a warning.
   */
  nonFinite?: 'error' | 'zero';
}

/**
 * Counts (and with `repair`, zeroes) the NaN and infinite values of an image channel. A voxel that is not a
 * number would silently turn the per-scan normalisation into NaN and the whole prediction into "no tumour".
 */
function checkFinite(ref: CaseRef, file: string, data: Float32Array, options: LoadCaseOptions, warnings: string[], what: string): void {
  if (allFinite(data)) return;
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return;
  if (options.nonFinite === 'zero') {
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) data[i] = 0;
    warnings.push(`${file}: ${count} NaN or infinite voxel(s) in ${what} set to 0, as asked`);
    return;
  }
  throw new DatasetError(
    file,
    `${count} of ${data.length} voxels in ${what} are NaN or infinite (the first at index ${first}, after scl_slope/scl_inter scaling); fix the file, or replace them with 0 explicitly (--replace-non-finite)`,
    ref.id,
  );
}

/**
 * True when every value is finite: x * 0 is ±0 for a finite x and NaN otherwise, so the sums stay 0 exactly when
 * all are. Four sums let the loads overlap (2.4x faster than one Number.isFinite test per voxel, measured); the
 * slow loop of {@link checkFinite} then runs only for a channel that has a bad voxel.
 */
function allFinite(data: Float32Array): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = data.length - (data.length % 4);
  let i = 0;
  for (; i < end; i += 4) {
    a += data[i]! * 0;
    b += data[i + 1]! * 0;
    c += data[i + 2]! * 0;
    d += data[i + 3]! * 0;
  }
  for (; i < data.length; i++) a += data[i]! * 0;
  return a + b + c + d === 0;
}

/**
 * A channel as it is kept: its stored voxels, except float64 ones, narrowed to float32 (the typed-array constructor
 * converts natively). Only float channels need the finite check after it: integer voxels (unscaled; scaling makes
 * the volume float32) are always finite.
 */
function toChannel(volume: Volume): ChannelVolume {
  const base = { shape: spatialShape(volume.shape), spacing: volume.spacing, affine: volume.affine };
  const result: ChannelVolume = volume.dtype === 'float64' ? { ...base, dtype: 'float32', data: new Float32Array(volume.data) } : ({ ...base, dtype: volume.dtype, data: volume.data } as ChannelVolume);
  if (volume.header !== undefined) result.header = volume.header;
  return result;
}

/**
 * Above this volume of non-zero FLAIR voxels (mL) a scan is no skull-stripped brain on a zero background. BraTS and
 * the Decathlon ship skull-stripped brains with every voxel outside them 0: 1.17 to 1.75 L of FLAIR in the 26 labelled
 * BraTS cases and the 2 Decathlon cases that @brats is developed on. A head with its skull and scalp fills more, and
 * a background of scanner noise fills the whole field of view.
 */
export const MAX_BRAIN_ML = 2500;

/**
 * The warning for a FLAIR whose non-zero voxels fill more than a brain ({@link MAX_BRAIN_ML}), naming `file`, or
 * undefined: the models learnt skull-stripped brains, and a head with its skull gets a wrong label map without it.
 */
export function unstrippedWarning(flair: Pick<Volume, 'data' | 'spacing'>, file?: string): string | undefined {
  let nonZero = 0;
  for (let v = 0; v < flair.data.length; v++) if (flair.data[v] !== 0) nonZero++;
  const millilitres = (nonZero * flair.spacing[0]! * flair.spacing[1]! * flair.spacing[2]!) / 1000;
  if (millilitres <= MAX_BRAIN_ML) return undefined;
  return (
    `${file === undefined ? '' : `${file}: `}FLAIR is non-zero over ${(millilitres / 1000).toFixed(1)} L, more than any skull-stripped brain ` +
    `(BraTS brains are 1.2 to 1.8 L, on a background of zeros): the scan may still have its skull, or a background that is not 0. ` +
    'Models learn skull-stripped brains: strip the skull first (e.g. with HD-BET or SynthStrip), or expect wrong label maps'
  );
}

/**
 * Builds a case in canonical form from its decoded image volumes: for the msd layout one 4D volume (frames as
 * `ref.frames` says, FLAIR, T1w, T1gd, T2w by default), else four 3D volumes in canonical order. `ref.images`
 * names the volumes in messages. Labels are not read here ({@link caseLabels}).
 * @throws {DatasetError} naming the case and file for a 4D volume without four frames, a volume of the wrong
 *   rank, NaN or infinite image voxels (unless `nonFinite: 'zero'`), or shapes or affines that differ.
 */
export function assembleCase(ref: CaseRef, volumes: readonly Volume[], options: Pick<LoadCaseOptions, 'nonFinite'> = {}): CanonicalCase {
  let channels: ChannelVolume[];
  const warnings: string[] = [];
  if (ref.layout === 'msd') {
    const file = ref.images[0]!;
    const volume = volumes[0]!;
    if (volume.shape.length !== 4 || volume.shape[3] < 4) {
      throw new DatasetError(file, `expected a 4D image with 4 channels, found shape [${volume.shape.join(', ')}]`, ref.id);
    }
    const frames = ref.frames ?? [0, 1, 2, 3];
    if (volume.shape[3] > 4) {
      warnings.push(`${file}: has ${volume.shape[3]} frames; frames ${frames.join(', ')} are read as FLAIR, T1w, T1gd, T2w and the other ${volume.shape[3] - 4} are ignored`);
    }
    channels = frames.map((frame, index) => {
      // A view of the frame, not a copy: the 4D volume is the case's own (4 x 36 MB saved per Decathlon case).
      const channel = toChannel(frameView(volume, frame));
      if (channel.data instanceof Float32Array) checkFinite(ref, file, channel.data, options, warnings, `frame ${frame} (${CANONICAL_CHANNELS[index]})`);
      return channel;
    });
  } else {
    channels = [];
    for (const [index, file] of ref.images.entries()) {
      const volume = volumes[index]!;
      if (volume.shape.length !== 3) {
        throw new DatasetError(file, `expected a 3D image, found shape [${volume.shape.join(', ')}]`, ref.id);
      }
      const channel = toChannel(volume);
      if (channel.data instanceof Float32Array) checkFinite(ref, file, channel.data, options, warnings, `the ${CANONICAL_CHANNELS[index]} image`);
      channels.push(channel);
    }
  }
  const reference = channels[0]!;
  channels.forEach((channel, index) => checkSameGrid(ref, ref.images[ref.layout === 'msd' ? 0 : index]!, reference, channel));
  // A blank or constant image is no image: whoever uses the case must hear it (nothing downstream can tell).
  const constant = channels.map((channel, index) => {
    const value = constantValue(channel.data);
    if (value !== undefined) warnings.push(`${ref.images[ref.layout === 'msd' ? 0 : index]!}: ${CANONICAL_CHANNELS[index]!} is constant (every voxel ${value}): it holds no image`);
    return value !== undefined;
  });
  // A FLAIR that is no image at all is said above; one that fills more than a brain is said here.
  const unstripped = constant[0] ? undefined : unstrippedWarning(channels[0]!, ref.images[0]);
  if (unstripped !== undefined) warnings.push(unstripped);
  const result: CanonicalCase = {
    id: ref.id,
    layout: ref.layout,
    channels: channels as unknown as CanonicalCase['channels'],
    labelMapping: LAYOUT_LABELS[ref.layout],
    ref,
  };
  if (warnings.length > 0) result.warnings = warnings;
  return result;
}

/**
 * A case's label map, checked against its images' grid and its layout's label values.
 * @throws {DatasetError} naming the case and `file` otherwise.
 */
export function caseLabels(ref: CaseRef, file: string, volume: Volume, grid?: Volume): Volume<'uint8'> {
  if (grid !== undefined) checkSameGrid(ref, file, grid, volume);
  return toLabelMap(ref, file, volume, LAYOUT_LABELS[ref.layout]);
}

/** `message` about case `id`, prefixed with `case <id>: ` unless it already names the case that way. */
export function caseMessage(id: string, message: string): string {
  return message.startsWith(`case ${id}: `) ? message : `case ${id}: ${message}`;
}

function checkSameGrid(ref: CaseRef, file: string, reference: Volume, other: Volume): void {
  const a = spatialShape(reference.shape);
  const b = spatialShape(other.shape);
  if (a.some((n, i) => n !== b[i])) {
    throw new DatasetError(file, `shape [${b.join(', ')}] differs from the case's first image [${a.join(', ')}]`, ref.id);
  }
  if (!affinesClose(reference.affine, other.affine, 1e-3)) {
    throw new DatasetError(file, "affine differs from the case's first image (files are not co-registered)", ref.id);
  }
}

function toLabelMap(ref: CaseRef, file: string, volume: Volume, mapping: LabelRegionMapping): Volume<'uint8'> {
  if (volume.shape.length !== 3) {
    throw new DatasetError(file, `expected a 3D label map, found shape [${volume.shape.join(', ')}]`, ref.id);
  }
  const allowed = allowedLabels(mapping);
  // A table of the allowed byte values: a lookup per voxel instead of a Set probe (millions of voxels per case).
  const table = new Uint8Array(256);
  for (const value of allowed) if (Number.isInteger(value) && value >= 0 && value < 256) table[value] = 1;
  const unknown = new Set<number>();
  const source = volume.data;
  let data: Uint8Array;
  if (source instanceof Uint8Array) {
    // Stored as uint8 (most label maps): checked in place and kept, no copy.
    for (let i = 0; i < source.length; i++) if (table[source[i]!] !== 1 && unknown.size < 8) unknown.add(source[i]!);
    data = source;
  } else {
    data = new Uint8Array(source.length);
    for (let i = 0; i < data.length; i++) {
      const value = source[i]!;
      if (value >= 0 && value < 256 && (value | 0) === value && table[value] === 1) {
        data[i] = value;
      } else if (unknown.size < 8) {
        unknown.add(value);
      }
    }
  }
  if (unknown.size > 0) {
    throw new DatasetError(
      file,
      `label values ${[...unknown].sort((x, y) => x - y).join(', ')} are not ${mapping.name} labels (allowed: ${[...allowed].join(', ')})`,
      ref.id,
    );
  }
  const labels: Volume<'uint8'> = { dtype: 'uint8', data, shape: spatialShape(volume.shape), spacing: volume.spacing, affine: volume.affine };
  if (volume.header !== undefined) labels.header = volume.header;
  return labels;
}
