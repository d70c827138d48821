/**
 * Overlap metrics from binary masks or thresholded probability maps: confusion counts, Dice, soft Dice, IoU,
 * sensitivity, specificity and precision.
 */
import { ArgumentError } from './errors.js';
import { checkConvention, type EmptyConvention } from './conventions.js';
import { checkSameLength, checkThreshold, checkValues, type VoxelValues } from './validate.js';

/** Default binarisation threshold: a voxel is foreground when its value is ≥ 0.5. */
export const DEFAULT_THRESHOLD = 0.5;

/** Options of the overlap metrics. */
export interface OverlapOptions {
  /** A voxel is foreground when its value is ≥ threshold (default 0.5); applies to prediction and reference. */
  threshold?: number;
  /** Empty-mask convention (default `monai`). */
  convention?: EmptyConvention;
}

/** Voxel counts of a prediction against a reference. */
export interface ConfusionCounts {
  /** Foreground in both. */
  truePositive: number;
  /** Foreground in the prediction only. */
  falsePositive: number;
  /** Foreground in the reference only. */
  falseNegative: number;
  /** Background in both. */
  trueNegative: number;
}

/** The overlap metric names, for accumulators and summaries. */
export type OverlapMetricName = 'dice' | 'iou' | 'sensitivity' | 'specificity' | 'precision';

/**
 * Binary mask (uint8 0/1) of the voxels whose value is ≥ `threshold`, in the input's voxel order.
 * @throws {ArgumentError} when `values` is not array-like or the threshold is not finite.
 */
export function binarizeMask(values: VoxelValues, threshold = DEFAULT_THRESHOLD): Uint8Array {
  checkValues('binarizeMask', 'values', values);
  checkThreshold('binarizeMask', threshold);
  return binarize(values, threshold);
}

/** Unchecked binarisation used inside the package. */
export function binarize(values: VoxelValues, threshold: number): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = values[i]! >= threshold ? 1 : 0;
  return out;
}

/**
 * Confusion counts of `prediction` against `reference` (flat arrays of equal length, any voxel order, binarised
 * at `options.threshold`).
 * @throws {ArgumentError} for a non-array argument or a bad threshold.
 * @throws {ShapeMismatchError} when the two lengths differ.
 * @example computeConfusion(Uint8Array.of(1, 1, 0), Uint8Array.of(1, 0, 0)) // { truePositive: 1, falsePositive: 1, … }
 */
export function computeConfusion(
  prediction: VoxelValues,
  reference: VoxelValues,
  options: Pick<OverlapOptions, 'threshold'> = {},
): ConfusionCounts {
  checkValues('computeConfusion', 'prediction', prediction);
  checkValues('computeConfusion', 'reference', reference);
  checkSameLength('computeConfusion', 'reference', prediction.length, reference.length);
  const threshold = checkThreshold('computeConfusion', options.threshold ?? DEFAULT_THRESHOLD);
  return countConfusion(prediction, reference, threshold);
}

/** Unchecked confusion counting used inside the package. */
export function countConfusion(prediction: VoxelValues, reference: VoxelValues, threshold: number): ConfusionCounts {
  let truePositive = 0;
  let falsePositive = 0;
  let falseNegative = 0;
  const n = prediction.length;
  for (let i = 0; i < n; i++) {
    const p = prediction[i]! >= threshold;
    const r = reference[i]! >= threshold;
    if (p) {
      if (r) truePositive++;
      else falsePositive++;
    } else if (r) falseNegative++;
  }
  return { truePositive, falsePositive, falseNegative, trueNegative: n - truePositive - falsePositive - falseNegative };
}

/** numerator / denominator, with 0/0 resolved by the convention (`identical`: prediction equals reference). */
function ratio(numerator: number, denominator: number, convention: EmptyConvention, identical: boolean): number {
  if (denominator > 0) return numerator / denominator;
  return convention === 'brats' ? (identical ? 1 : 0) : Number.NaN;
}

function isIdentical(counts: ConfusionCounts): boolean {
  return counts.falsePositive === 0 && counts.falseNegative === 0;
}

/**
 * One overlap metric from confusion counts under an empty-mask convention.
 * Dice = 2TP/(2TP+FP+FN), IoU = TP/(TP+FP+FN), sensitivity = TP/(TP+FN), specificity = TN/(TN+FP),
 * precision = TP/(TP+FP). Under `monai`, Dice and IoU are NaN whenever the reference is empty.
 * @throws {ArgumentError} for an unknown metric or convention, or counts that are not non-negative integers.
 */
export function overlapFromConfusion(
  metric: OverlapMetricName,
  counts: ConfusionCounts,
  convention: EmptyConvention = 'monai',
): number {
  checkConvention('overlapFromConfusion', convention);
  for (const key of ['truePositive', 'falsePositive', 'falseNegative', 'trueNegative'] as const) {
    const value = (counts as unknown as Record<string, unknown>)[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new ArgumentError('overlapFromConfusion', `counts.${key}`, `must be a non-negative integer, found ${String(value)}`);
    }
  }
  return overlapUnchecked(metric, counts, convention);
}

/** Unchecked metric-from-counts used inside the package. */
export function overlapUnchecked(metric: OverlapMetricName, counts: ConfusionCounts, convention: EmptyConvention): number {
  const { truePositive: tp, falsePositive: fp, falseNegative: fn, trueNegative: tn } = counts;
  const identical = isIdentical(counts);
  const referenceEmpty = tp + fn === 0;
  switch (metric) {
    case 'dice':
      if (convention === 'monai' && referenceEmpty) return Number.NaN;
      return ratio(2 * tp, 2 * tp + fp + fn, convention, identical);
    case 'iou':
      if (convention === 'monai' && referenceEmpty) return Number.NaN;
      return ratio(tp, tp + fp + fn, convention, identical);
    case 'sensitivity':
      return ratio(tp, tp + fn, convention, identical);
    case 'specificity':
      return ratio(tn, tn + fp, convention, identical);
    case 'precision':
      return ratio(tp, tp + fp, convention, identical);
    default:
      throw new ArgumentError(
        'overlapFromConfusion',
        'metric',
        `is '${String(metric)}', which is unknown; known: ${OVERLAP_METRIC_NAMES.join(', ')}`,
      );
  }
}

/** Every overlap metric name, in report order. */
export const OVERLAP_METRIC_NAMES: readonly OverlapMetricName[] = ['dice', 'iou', 'sensitivity', 'specificity', 'precision'];

function overlapMetric(functionName: string, metric: OverlapMetricName) {
  return (prediction: VoxelValues, reference: VoxelValues, options: OverlapOptions = {}): number => {
    checkValues(functionName, 'prediction', prediction);
    checkValues(functionName, 'reference', reference);
    checkSameLength(functionName, 'reference', prediction.length, reference.length);
    const threshold = checkThreshold(functionName, options.threshold ?? DEFAULT_THRESHOLD);
    const convention = checkConvention(functionName, options.convention);
    return overlapUnchecked(metric, countConfusion(prediction, reference, threshold), convention);
  };
}

/**
 * Dice coefficient 2|P∩R|/(|P|+|R|) of two masks (flat, equal length, binarised at `options.threshold`).
 * Empty masks follow `options.convention` (monai: empty reference → NaN; brats: both empty → 1, one empty → 0).
 * @throws {ArgumentError} for a non-array argument, a bad threshold or an unknown convention.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export const computeDice: (prediction: VoxelValues, reference: VoxelValues, options?: OverlapOptions) => number =
  overlapMetric('computeDice', 'dice');

/**
 * Intersection over union |P∩R|/|P∪R| (Jaccard) of two masks; arguments and empty cases as {@link computeDice}.
 * @throws {ArgumentError} for a non-array argument, a bad threshold or an unknown convention.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export const computeIou: (prediction: VoxelValues, reference: VoxelValues, options?: OverlapOptions) => number =
  overlapMetric('computeIou', 'iou');

/**
 * Sensitivity (recall) TP/(TP+FN): the share of the reference that the prediction covers; 0/0 follows the convention.
 * @throws {ArgumentError} for a non-array argument, a bad threshold or an unknown convention.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export const computeSensitivity: (prediction: VoxelValues, reference: VoxelValues, options?: OverlapOptions) => number =
  overlapMetric('computeSensitivity', 'sensitivity');

/**
 * Specificity TN/(TN+FP): the share of the reference background left as background; 0/0 follows the convention.
 * @throws {ArgumentError} for a non-array argument, a bad threshold or an unknown convention.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export const computeSpecificity: (prediction: VoxelValues, reference: VoxelValues, options?: OverlapOptions) => number =
  overlapMetric('computeSpecificity', 'specificity');

/**
 * Precision (positive predictive value) TP/(TP+FP); 0/0 follows the convention.
 * @throws {ArgumentError} for a non-array argument, a bad threshold or an unknown convention.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export const computePrecision: (prediction: VoxelValues, reference: VoxelValues, options?: OverlapOptions) => number =
  overlapMetric('computePrecision', 'precision');

/** Options of {@link computeSoftDice}. */
export interface SoftDiceOptions {
  /** Smoothing constant s added to numerator and denominator (default 1, the seed recipe's value). */
  smooth?: number;
  /** The reference is binarised at this threshold (default 0.5); the prediction is used as given. */
  threshold?: number;
}

/**
 * Soft Dice (2I + s)/(T + P + s) of a probability map against a reference mask, with I = Σ p·t, T = Σ t,
 * P = Σ p (the seed recipe's metric, s = 1). Both arrays flat and of equal length; never NaN when s > 0.
 * @param prediction probabilities in [0, 1]; @param reference mask, binarised at `options.threshold`.
 * @throws {ArgumentError} for a probability outside [0, 1], a negative or non-finite `smooth`, or a bad threshold.
 * @throws {ShapeMismatchError} when the two lengths differ.
 */
export function computeSoftDice(prediction: VoxelValues, reference: VoxelValues, options: SoftDiceOptions = {}): number {
  checkValues('computeSoftDice', 'prediction', prediction);
  checkValues('computeSoftDice', 'reference', reference);
  checkSameLength('computeSoftDice', 'reference', prediction.length, reference.length);
  const threshold = checkThreshold('computeSoftDice', options.threshold ?? DEFAULT_THRESHOLD);
  const smooth = options.smooth ?? 1;
  if (typeof smooth !== 'number' || !Number.isFinite(smooth) || smooth < 0) {
    throw new ArgumentError('computeSoftDice', 'options.smooth', `must be a finite number ≥ 0, found ${String(smooth)}`);
  }
  let intersection = 0;
  let truth = 0;
  let predicted = 0;
  for (let i = 0; i < prediction.length; i++) {
    const p = prediction[i]!;
    if (!(p >= 0 && p <= 1)) {
      throw new ArgumentError('computeSoftDice', 'prediction', `must hold probabilities in [0, 1], found ${p} at index ${i}`);
    }
    predicted += p;
    if (reference[i]! >= threshold) {
      truth += 1;
      intersection += p;
    }
  }
  return (2 * intersection + smooth) / (truth + predicted + smooth);
}
