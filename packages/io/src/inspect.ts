/** JSON-able summaries of a NIfTI file or a dataset folder, for `brats inspect`. */
import { BratsError } from './errors.js';
import { caseMessage } from './layouts/case.js';
import { loadCase, openDataset, type LayoutName } from './layouts/dataset.js';
import { readNifti, type ReadNiftiOptions } from './nifti/read.js';
import { orientationOf } from './orientation.js';
import type { Affine, DType, Spacing, VolumeShape } from './volume.js';

/** What `brats inspect FILE.nii.gz` shows. */
export interface NiftiSummary {
  path: string;
  niftiVersion: 1 | 2;
  dtype: DType;
  byteOrder: 'little-endian' | 'big-endian';
  shape: VolumeShape;
  spacing: Spacing;
  affine: Affine;
  /** The voxel axes' directions (e.g. `LPS`, as BraTS stores its scans; see `orientationOf`); absent for an affine without one. */
  orientation?: string;
  qformCode: number;
  sformCode: number;
  sclSlope: number;
  sclInter: number;
  description: string;
  /** Value range over the whole file (all frames), finite values only. */
  range: { min: number; max: number; mean: number };
  /** NaN and infinite voxels (after scl_slope/scl_inter), which predict and convert refuse. */
  nonFinite: { nan: number; infinite: number };
  /** Voxel count of each value, when the data are integers with at most 32 distinct values (a label map). */
  labelCounts?: Record<string, number>;
  /**
   * The volume (mL) of the non-zero voxels of each 3D frame (one for a 3D file), and of the whole field of view: a
   * skull-stripped BraTS FLAIR is 1.2 to 1.8 L on a background of zeros, a head with its skull more.
   */
  nonZeroMl: number[];
  fieldOfViewMl: number;
}

/**
 * Reads a NIfTI file and summarises its header and values.
 * @throws {NiftiFormatError} for an unreadable file.
 */
export async function inspectNifti(path: string, options: ReadNiftiOptions = {}): Promise<NiftiSummary> {
  const volume = await readNifti(path, options);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let integral = true;
  let nan = 0;
  let infinite = 0;
  const counts = new Map<number, number>();
  const voxelMl = (volume.spacing[0]! * volume.spacing[1]! * volume.spacing[2]!) / 1000;
  const frameVoxels = volume.shape[0] * volume.shape[1] * volume.shape[2];
  const nonZero = new Array<number>(Math.max(1, Math.round(volume.data.length / frameVoxels))).fill(0);
  for (let i = 0; i < volume.data.length; i++) {
    const value = volume.data[i]!;
    // NaN and infinite voxels are non-zero too: they are not background.
    if (value !== 0) nonZero[Math.floor(i / frameVoxels)]!++;
    if (!Number.isFinite(value)) {
      if (Number.isNaN(value)) nan++;
      else infinite++;
      integral = false;
      continue;
    }
    if (value < min) min = value;
    if (value > max) max = value;
    sum += value;
    if (integral) {
      if (!Number.isInteger(value)) integral = false;
      else {
        counts.set(value, (counts.get(value) ?? 0) + 1);
        if (counts.size > 32) integral = false;
      }
    }
  }
  const summary: NiftiSummary = {
    path,
    niftiVersion: volume.nifti.version,
    dtype: volume.nifti.dtype,
    byteOrder: volume.nifti.littleEndian ? 'little-endian' : 'big-endian',
    shape: volume.shape,
    spacing: volume.spacing,
    affine: volume.affine,
    qformCode: volume.nifti.qformCode,
    sformCode: volume.nifti.sformCode,
    sclSlope: volume.nifti.sclSlope,
    sclInter: volume.nifti.sclInter,
    description: volume.nifti.description,
    range: { min, max, mean: volume.data.length - nan - infinite > 0 ? sum / (volume.data.length - nan - infinite) : Number.NaN },
    nonFinite: { nan, infinite },
    nonZeroMl: nonZero.map((count) => count * voxelMl),
    fieldOfViewMl: frameVoxels * voxelMl,
  };
  try {
    summary.orientation = orientationOf(volume.affine);
  } catch {
    // An affine with a zero axis has no orientation: the summary leaves it out.
  }
  if (integral) {
    summary.labelCounts = Object.fromEntries([...counts.entries()].sort((a, b) => a[0] - b[0]).map(([value, count]) => [String(value), count]));
  }
  return summary;
}

/** What `brats inspect DATASET_DIR` shows. */
export interface DatasetSummary {
  root: string;
  layout: LayoutName;
  labelConvention: string;
  modalities: readonly string[];
  metadata: Record<string, string>;
  caseCount: number;
  labelledCount: number;
  cases: { id: string; labelled: boolean; shape?: readonly number[]; labels?: number[]; problem?: string; warnings?: string[] }[];
  /** One line per problem found (missing files, mismatched grids, unknown labels), naming the case and file. */
  problems: string[];
  /**
   * One line per warning of a case that loads (a constant channel, extra 4D frames, a FLAIR that fills more than a
   * brain), naming the case and file: what predict and convert would warn of.
   */
  warnings: string[];
}

/** Options of {@link inspectDataset}. */
export interface InspectDatasetOptions {
  /** Decode every case to find problems and label sets (default true). */
  validate?: boolean;
  /** Called after each case is checked. */
  onProgress?: (done: number, total: number, caseId: string) => void;
}

/**
 * Discovers a dataset and, unless `validate` is false, loads every case to report its grid, its label
 * values and any problem. A case that fails to load is reported, not thrown.
 * @throws {DatasetError} when the folder holds no known layout.
 */
export async function inspectDataset(dir: string, options: InspectDatasetOptions = {}): Promise<DatasetSummary> {
  const dataset = await openDataset(dir);
  const summary: DatasetSummary = {
    root: dataset.root,
    layout: dataset.layout,
    labelConvention: dataset.labelMapping.name,
    modalities: dataset.metadata.modalities,
    metadata: {
      name: dataset.metadata.name,
      description: dataset.metadata.description,
      reference: dataset.metadata.reference,
      licence: dataset.metadata.licence,
      release: dataset.metadata.release,
    },
    caseCount: dataset.cases.length,
    labelledCount: dataset.cases.filter((c) => c.label !== undefined).length,
    cases: [],
    problems: [],
    warnings: [],
  };
  let done = 0;
  for (const ref of dataset.cases) {
    const entry: DatasetSummary['cases'][number] = { id: ref.id, labelled: ref.label !== undefined };
    if (options.validate !== false) {
      try {
        const loaded = await loadCase(ref);
        entry.shape = loaded.channels[0].shape;
        if (loaded.labels !== undefined) entry.labels = [...new Set(loaded.labels.data)].sort((a, b) => a - b);
        if (loaded.warnings !== undefined) {
          entry.warnings = [...loaded.warnings];
          summary.warnings.push(...loaded.warnings.map((warning) => caseMessage(ref.id, warning)));
        }
      } catch (error) {
        if (!(error instanceof BratsError)) throw error;
        entry.problem = error.message;
        summary.problems.push(error.message);
      }
    }
    summary.cases.push(entry);
    options.onProgress?.(++done, dataset.cases.length, ref.id);
  }
  return summary;
}
