/**
 * Surface distances between two masks, as MONAI computes them: a mask's surface is the mask minus its erosion
 * by the 6-connected cross (voxels outside the volume count as background, so foreground on the volume border
 * is surface, like scipy's `binary_erosion` default; an axis of length 1 is left out, so a `[i, j, 1]` slice is
 * eroded in 2D); each directed set holds the distances in mm from every surface voxel of one mask to the nearest
 * surface voxel of the other, read off an exact distance transform.
 */
import { ArgumentError } from './errors.js';
import { checkConvention, imageDiagonalMm, type EmptyConvention } from './conventions.js';
import { squaredDistanceTransform } from './distance-transform.js';
import { DEFAULT_THRESHOLD } from './overlap.js';
import {
  checkLengthMatchesShape,
  checkShape,
  checkSpacing,
  checkThreshold,
  checkValues,
  type GridShape,
  type GridSpacing,
  type VoxelValues,
} from './validate.js';

/** Options of the surface-distance metrics. */
export interface SurfaceOptions {
  /** Grid shape `[i, j, k]`, NIfTI order, i fastest; both masks are flat arrays of this many voxels. */
  shape: GridShape;
  /** Voxel size in mm along i, j, k (default [1, 1, 1]). */
  spacing?: GridSpacing;
  /** A voxel is foreground when its value is ≥ threshold (default 0.5). */
  threshold?: number;
  /** Empty-mask convention (default `monai`). */
  convention?: EmptyConvention;
}

/** The two directed surface-distance sets of a mask pair, in mm. */
export interface SurfaceDistances {
  /** For every prediction surface voxel (i-j-k order), the distance to the nearest reference surface voxel. */
  predictionToReference: Float64Array;
  /** For every reference surface voxel (i-j-k order), the distance to the nearest prediction surface voxel. */
  referenceToPrediction: Float64Array;
  /** The prediction has no foreground voxel. */
  predictionEmpty: boolean;
  /** The reference has no foreground voxel. */
  referenceEmpty: boolean;
}

/** HD95, Hausdorff distance and average symmetric surface distance of a mask pair, in mm. */
export interface SurfaceMetrics {
  /** Larger of the two directed 95th percentiles (linear interpolation). */
  hd95: number;
  /** Larger of the two directed maxima. */
  hausdorff: number;
  /** Mean of both directed sets pooled. */
  assd: number;
}

/**
 * Surface of a binary mask (uint8 0/1): foreground voxels with at least one 6-neighbour that is background or
 * outside the volume; an axis of length 1 has no neighbours (a `[i, j, 1]` slice is eroded in 2D, 4-connected).
 * Layout: flat, NIfTI i-j-k order, i fastest.
 * @param mask values ≥ `threshold` are foreground; @param shape `[i, j, k]`.
 * @throws {ArgumentError} for a bad shape, array or threshold. @throws {ShapeMismatchError} when the length differs from the shape.
 */
export function extractSurface(mask: VoxelValues, shape: GridShape, threshold = DEFAULT_THRESHOLD): Uint8Array {
  checkValues('extractSurface', 'mask', mask);
  checkShape('extractSurface', 'shape', shape);
  checkLengthMatchesShape('extractSurface', 'mask', mask, shape);
  checkThreshold('extractSurface', threshold);
  const binary = new Uint8Array(mask.length);
  for (let v = 0; v < mask.length; v++) binary[v] = mask[v]! >= threshold ? 1 : 0;
  return surfaceOf(binary, shape);
}

/**
 * Unchecked surface of a 0/1 mask. An axis of length 1 in the full grid (`volumeShape`) has no neighbours along
 * it, so a `[i, j, 1]` slice is eroded as a 2D image with the 4-connected cross (as MONAI treats 2D images)
 * instead of being all surface. `shape` is the (possibly cropped) grid of `mask`: a crop that is one voxel thick
 * along an axis of a larger volume still erodes along that axis.
 */
function surfaceOf(mask: Uint8Array, shape: GridShape, volumeShape: GridShape = shape): Uint8Array {
  const [ni, nj, nk] = shape;
  const plane = ni * nj;
  const out = new Uint8Array(mask.length);
  const useI = volumeShape[0] > 1;
  const useJ = volumeShape[1] > 1;
  const useK = volumeShape[2] > 1;
  for (let k = 0; k < nk; k++) {
    const kInside = !useK || (k > 0 && k < nk - 1);
    for (let j = 0; j < nj; j++) {
      const jInside = !useJ || (j > 0 && j < nj - 1);
      const row = k * plane + j * ni;
      for (let i = 0; i < ni; i++) {
        const v = row + i;
        if (mask[v] === 0) continue;
        const interior =
          kInside &&
          jInside &&
          (!useI || (i > 0 && i < ni - 1 && mask[v - 1] === 1 && mask[v + 1] === 1)) &&
          (!useJ || (mask[v - ni] === 1 && mask[v + ni] === 1)) &&
          (!useK || (mask[v - plane] === 1 && mask[v + plane] === 1));
        if (!interior) out[v] = 1;
      }
    }
  }
  return out;
}

export interface CroppedPair {
  prediction: Uint8Array;
  reference: Uint8Array;
  shape: GridShape;
}

/**
 * Binarises both masks inside the bounding box of their union, widened by `margin` voxels on every side (within the
 * volume). Every surface voxel and every nearest-surface partner lies in that box, and outside it both masks are
 * background as the volume's outside is, so the distances are exact while the transform runs on the tumour's box
 * rather than the whole head. Undefined when both masks are empty.
 */
export function cropUnion(prediction: VoxelValues, reference: VoxelValues, shape: GridShape, threshold: number, margin = 0): CroppedPair | undefined {
  const [ni, nj, nk] = shape;
  let iMin = ni;
  let iMax = -1;
  let jMin = nj;
  let jMax = -1;
  let kMin = nk;
  let kMax = -1;
  for (let k = 0, v = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++, v++) {
        if (prediction[v]! >= threshold || reference[v]! >= threshold) {
          if (i < iMin) iMin = i;
          if (i > iMax) iMax = i;
          if (j < jMin) jMin = j;
          if (j > jMax) jMax = j;
          if (k < kMin) kMin = k;
          if (k > kMax) kMax = k;
        }
      }
    }
  }
  if (iMax < 0) return undefined;
  if (margin > 0) {
    [iMin, jMin, kMin] = [Math.max(0, iMin - margin), Math.max(0, jMin - margin), Math.max(0, kMin - margin)];
    [iMax, jMax, kMax] = [Math.min(ni - 1, iMax + margin), Math.min(nj - 1, jMax + margin), Math.min(nk - 1, kMax + margin)];
  }
  const cropShape: GridShape = [iMax - iMin + 1, jMax - jMin + 1, kMax - kMin + 1];
  const [ci, cj, ck] = cropShape;
  const croppedPrediction = new Uint8Array(ci * cj * ck);
  const croppedReference = new Uint8Array(ci * cj * ck);
  for (let k = 0, c = 0; k < ck; k++) {
    for (let j = 0; j < cj; j++) {
      const source = (k + kMin) * ni * nj + (j + jMin) * ni + iMin;
      for (let i = 0; i < ci; i++, c++) {
        croppedPrediction[c] = prediction[source + i]! >= threshold ? 1 : 0;
        croppedReference[c] = reference[source + i]! >= threshold ? 1 : 0;
      }
    }
  }
  return { prediction: croppedPrediction, reference: croppedReference, shape: cropShape };
}

/**
 * Distances (mm) at the voxels of `queries` to the nearest voxel of `targets`; Infinity when `targets` is empty.
 * `scratch` is a volume-sized buffer reused between the two directions.
 */
function directedDistances(
  queries: Uint8Array,
  targets: Uint8Array,
  shape: GridShape,
  spacing: GridSpacing,
  scratch: Float64Array,
): Float64Array {
  const [ni, nj, nk] = shape;
  let count = 0;
  let anyTarget = false;
  const neededColumns = new Uint8Array(ni * nj);
  for (let k = 0, v = 0; k < nk; k++) {
    for (let column = 0; column < ni * nj; column++, v++) {
      if (queries[v] === 1) {
        count++;
        neededColumns[column] = 1;
      }
      if (targets[v] === 1) anyTarget = true;
    }
  }
  const distances = new Float64Array(count);
  if (count === 0) return distances;
  if (!anyTarget) return distances.fill(Number.POSITIVE_INFINITY);
  const squared = squaredDistanceTransform(targets, shape, spacing, neededColumns, scratch);
  for (let v = 0, n = 0; v < queries.length; v++) {
    if (queries[v] === 1) distances[n++] = Math.sqrt(squared[v]!);
  }
  return distances;
}

function checkSurfaceArguments(
  functionName: string,
  prediction: unknown,
  reference: unknown,
  options: SurfaceOptions,
): { shape: GridShape; spacing: GridSpacing; threshold: number; convention: EmptyConvention } {
  if (options === null || typeof options !== 'object') {
    throw new ArgumentError(functionName, 'options', 'must be an object with at least { shape }');
  }
  const predictionValues = checkValues(functionName, 'prediction', prediction);
  const referenceValues = checkValues(functionName, 'reference', reference);
  checkShape(functionName, 'options.shape', options.shape);
  const spacing = checkSpacing(functionName, 'options.spacing', options.spacing ?? [1, 1, 1]);
  checkLengthMatchesShape(functionName, 'prediction', predictionValues, options.shape);
  checkLengthMatchesShape(functionName, 'reference', referenceValues, options.shape);
  const threshold = checkThreshold(functionName, options.threshold ?? DEFAULT_THRESHOLD);
  const convention = checkConvention(functionName, options.convention);
  return { shape: options.shape, spacing, threshold, convention };
}

/** Unchecked directed surface distances used inside the package. */
export function surfaceDistances(
  prediction: VoxelValues,
  reference: VoxelValues,
  shape: GridShape,
  spacing: GridSpacing,
  threshold: number,
): SurfaceDistances {
  const cropped = cropUnion(prediction, reference, shape, threshold);
  if (cropped === undefined) {
    return {
      predictionToReference: new Float64Array(0),
      referenceToPrediction: new Float64Array(0),
      predictionEmpty: true,
      referenceEmpty: true,
    };
  }
  const predictionSurface = surfaceOf(cropped.prediction, cropped.shape, shape);
  const referenceSurface = surfaceOf(cropped.reference, cropped.shape, shape);
  const scratch = new Float64Array(predictionSurface.length);
  const predictionToReference = directedDistances(predictionSurface, referenceSurface, cropped.shape, spacing, scratch);
  const referenceToPrediction = directedDistances(referenceSurface, predictionSurface, cropped.shape, spacing, scratch);
  return {
    predictionToReference,
    referenceToPrediction,
    predictionEmpty: predictionToReference.length === 0,
    referenceEmpty: referenceToPrediction.length === 0,
  };
}

/**
 * The two directed surface-distance sets (mm) of a prediction and a reference mask. A set directed toward an
 * empty mask holds Infinity for each of its voxels; the set of an empty mask is empty. Masks are flat arrays in
 * NIfTI i-j-k order (i fastest) of `options.shape` voxels, binarised at `options.threshold`.
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold or convention.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 */
export function computeSurfaceDistances(
  prediction: VoxelValues,
  reference: VoxelValues,
  options: SurfaceOptions,
): SurfaceDistances {
  const checked = checkSurfaceArguments('computeSurfaceDistances', prediction, reference, options);
  return surfaceDistances(prediction, reference, checked.shape, checked.spacing, checked.threshold);
}

/**
 * Percentile of a set of numbers with linear interpolation between closest ranks (numpy.percentile's default):
 * rank = p/100·(n − 1) over the sorted values. NaN for an empty set.
 * @param values the sample (not modified); @param percentile in [0, 100].
 * @throws {ArgumentError} for a percentile outside [0, 100].
 */
export function computePercentile(values: ArrayLike<number>, percentile: number): number {
  checkValues('computePercentile', 'values', values);
  if (typeof percentile !== 'number' || !(percentile >= 0 && percentile <= 100)) {
    throw new ArgumentError('computePercentile', 'percentile', `must be a number in [0, 100], found ${String(percentile)}`);
  }
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  return percentileOfSorted(sorted, percentile);
}

function percentileOfSorted(sorted: Float64Array, percentile: number): number {
  const rank = (percentile / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.min(lower + 1, sorted.length - 1);
  const low = sorted[lower]!;
  const high = sorted[upper]!;
  if (low === high) return low;
  return low + (high - low) * (rank - lower);
}

function directedPercentile(values: Float64Array, percentile: number | undefined): number {
  if (percentile === undefined || percentile === 100) {
    let max = Number.NEGATIVE_INFINITY;
    for (let n = 0; n < values.length; n++) if (values[n]! > max) max = values[n]!;
    return max;
  }
  return percentileOfSorted(Float64Array.from(values).sort(), percentile);
}

/** The value a distance takes when a mask is empty, or undefined when both have surfaces. */
function emptyDistance(distances: SurfaceDistances, convention: EmptyConvention, shape: GridShape, spacing: GridSpacing): number | undefined {
  if (!distances.predictionEmpty && !distances.referenceEmpty) return undefined;
  if (convention === 'monai') return Number.NaN;
  return distances.predictionEmpty && distances.referenceEmpty ? 0 : imageDiagonalMm(shape, spacing);
}

/** Unchecked symmetric percentile Hausdorff distance from directed sets (undefined percentile: maximum). */
export function hausdorffFromDistances(
  distances: SurfaceDistances,
  percentile: number | undefined,
  convention: EmptyConvention,
  shape: GridShape,
  spacing: GridSpacing,
): number {
  const empty = emptyDistance(distances, convention, shape, spacing);
  if (empty !== undefined) return empty;
  return Math.max(
    directedPercentile(distances.predictionToReference, percentile),
    directedPercentile(distances.referenceToPrediction, percentile),
  );
}

/** Unchecked average symmetric surface distance from directed sets. */
export function assdFromDistances(
  distances: SurfaceDistances,
  convention: EmptyConvention,
  shape: GridShape,
  spacing: GridSpacing,
): number {
  const empty = emptyDistance(distances, convention, shape, spacing);
  if (empty !== undefined) return empty;
  let sum = 0;
  for (const d of distances.predictionToReference) sum += d;
  for (const d of distances.referenceToPrediction) sum += d;
  return sum / (distances.predictionToReference.length + distances.referenceToPrediction.length);
}

/** Unchecked HD95, Hausdorff and ASSD from directed sets. */
export function surfaceMetricsFromDistances(
  distances: SurfaceDistances,
  convention: EmptyConvention,
  shape: GridShape,
  spacing: GridSpacing,
): SurfaceMetrics {
  return {
    hd95: hausdorffFromDistances(distances, 95, convention, shape, spacing),
    hausdorff: hausdorffFromDistances(distances, undefined, convention, shape, spacing),
    assd: assdFromDistances(distances, convention, shape, spacing),
  };
}

/**
 * HD95, Hausdorff distance and ASSD (mm) of two masks from one pair of distance transforms. Empty masks follow
 * `options.convention` (monai: NaN when either is empty; brats: both empty → 0, one empty → image diagonal).
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold or convention.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 * @example computeSurfaceMetrics(pred, ref, { shape: [240, 240, 155], spacing: [1, 1, 1] }).hd95
 */
export function computeSurfaceMetrics(prediction: VoxelValues, reference: VoxelValues, options: SurfaceOptions): SurfaceMetrics {
  const checked = checkSurfaceArguments('computeSurfaceMetrics', prediction, reference, options);
  const distances = surfaceDistances(prediction, reference, checked.shape, checked.spacing, checked.threshold);
  return surfaceMetricsFromDistances(distances, checked.convention, checked.shape, checked.spacing);
}

/** Options of {@link computeHausdorff}. */
export interface HausdorffOptions extends SurfaceOptions {
  /** Percentile of each directed set (0-100); undefined takes the maximum, the classic Hausdorff distance. */
  percentile?: number;
}

/**
 * Symmetric Hausdorff distance (mm): the larger of the two directed maxima, or of the two directed percentiles
 * when `options.percentile` is set (as MONAI's `compute_hausdorff_distance`). Empty masks as {@link computeSurfaceMetrics}.
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold, percentile or convention.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 */
export function computeHausdorff(prediction: VoxelValues, reference: VoxelValues, options: HausdorffOptions): number {
  const checked = checkSurfaceArguments('computeHausdorff', prediction, reference, options);
  const percentile = options.percentile;
  if (percentile !== undefined && (typeof percentile !== 'number' || !(percentile >= 0 && percentile <= 100))) {
    throw new ArgumentError('computeHausdorff', 'options.percentile', `must be a number in [0, 100], found ${String(percentile)}`);
  }
  const distances = surfaceDistances(prediction, reference, checked.shape, checked.spacing, checked.threshold);
  return hausdorffFromDistances(distances, percentile, checked.convention, checked.shape, checked.spacing);
}

/**
 * HD95 (mm): the larger of the two directed 95th percentiles of surface distances (linear interpolation).
 * Empty masks as {@link computeSurfaceMetrics}.
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold or convention.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 */
export function computeHd95(prediction: VoxelValues, reference: VoxelValues, options: SurfaceOptions): number {
  const checked = checkSurfaceArguments('computeHd95', prediction, reference, options);
  const distances = surfaceDistances(prediction, reference, checked.shape, checked.spacing, checked.threshold);
  return hausdorffFromDistances(distances, 95, checked.convention, checked.shape, checked.spacing);
}

/**
 * Average symmetric surface distance (mm): the mean of both directed sets pooled. Empty masks as
 * {@link computeSurfaceMetrics}.
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold or convention.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 */
export function computeAssd(prediction: VoxelValues, reference: VoxelValues, options: SurfaceOptions): number {
  const checked = checkSurfaceArguments('computeAssd', prediction, reference, options);
  const distances = surfaceDistances(prediction, reference, checked.shape, checked.spacing, checked.threshold);
  return assdFromDistances(distances, checked.convention, checked.shape, checked.spacing);
}
