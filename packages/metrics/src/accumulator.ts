/**
 * Metric accumulators in MONAI's style: `update` computes a metric for one case (one value per region) and keeps
 * it, `aggregate` reduces everything kept so far, `reset` forgets it. Each has the options of its pure function.
 */
import { ArgumentError } from './errors.js';
import { checkConvention, type EmptyConvention } from './conventions.js';
import { DEFAULT_THRESHOLD, computeSoftDice, countConfusion, overlapUnchecked, type OverlapMetricName, OVERLAP_METRIC_NAMES } from './overlap.js';
import { nanMean, nanMedian } from './statistics.js';
import { assdFromDistances, hausdorffFromDistances, surfaceDistances } from './surface.js';
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

/**
 * How `aggregate` reduces the kept values (a closed set): `none` every value by case and region; `mean` / `median`
 * one number over all values; `per-case` the mean over regions of each case; `per-region` the mean over cases of
 * each region. NaNs are always left out (and counted by {@link MetricAccumulator.countValues}).
 */
export type Reduction = 'none' | 'mean' | 'median' | 'per-case' | 'per-region';

/** Every reduction name. */
export const REDUCTIONS: readonly Reduction[] = ['none', 'mean', 'median', 'per-case', 'per-region'];

/** Masks of one case by region name (e.g. the result of `regionMasksFromLabels`); each flat, i-j-k order. */
export type RegionMaskSet = Readonly<Record<string, VoxelValues>>;

/** The region name given to a single mask passed to `update`. */
export const SINGLE_REGION = 'foreground';

/** The grid of one case. */
export interface MetricGrid {
  /** Shape `[i, j, k]`; every mask has this many voxels. */
  shape: GridShape;
  /** Voxel size in mm along i, j, k (default [1, 1, 1]); used by distance metrics. */
  spacing?: GridSpacing;
}

/** The values of one case, by region. */
export interface MetricRow {
  caseId: string;
  values: Readonly<Record<string, number>>;
}

/** One number per case. */
export interface CaseValue {
  caseId: string;
  value: number;
}

/** What `aggregate` returns, by reduction. */
export type MetricAggregate = readonly MetricRow[] | number | readonly CaseValue[] | Readonly<Record<string, number>>;

/** Options every accumulator takes. */
export interface AccumulatorOptions {
  /** Reduction used by `aggregate()` without an argument (default `mean`). */
  reduction?: Reduction;
  /** A voxel is foreground when its value is ≥ threshold (default 0.5). */
  threshold?: number;
  /** Empty-mask convention (default `monai`). */
  convention?: EmptyConvention;
}

function checkReduction(functionName: string, argument: string, reduction: unknown): Reduction {
  if (typeof reduction !== 'string' || !(REDUCTIONS as readonly string[]).includes(reduction)) {
    throw new ArgumentError(functionName, argument, `is '${String(reduction)}', which is unknown; known: ${REDUCTIONS.join(', ')}`);
  }
  return reduction as Reduction;
}

function isMask(value: unknown): value is VoxelValues {
  return Array.isArray(value) || ArrayBuffer.isView(value);
}

/** Base of every accumulator: keeps one row of region values per case. */
export abstract class MetricAccumulator {
  /** Default reduction of `aggregate()`. */
  readonly reduction: Reduction;
  /** Foreground threshold. */
  readonly threshold: number;
  /** Empty-mask convention. */
  readonly convention: EmptyConvention;
  private rows: MetricRow[] = [];
  private readonly className: string;

  protected constructor(className: string, options: AccumulatorOptions) {
    this.className = className;
    this.reduction = checkReduction(className, 'options.reduction', options.reduction ?? 'mean');
    this.threshold = checkThreshold(className, options.threshold ?? DEFAULT_THRESHOLD);
    this.convention = checkConvention(className, options.convention);
  }

  /** The metric for one region of one case (arguments already checked). */
  protected abstract computeRegion(prediction: VoxelValues, reference: VoxelValues, shape: GridShape, spacing: GridSpacing): number;

  /**
   * Computes the metric of one case, keeps it and returns it by region. `prediction` and `reference` are either
   * single masks (region `foreground`) or mask sets with the same region names.
   * @throws {ArgumentError} for a bad mask, grid or region set. @throws {ShapeMismatchError} when a mask's length differs from the shape.
   */
  update(
    prediction: VoxelValues | RegionMaskSet,
    reference: VoxelValues | RegionMaskSet,
    grid: MetricGrid,
    caseId: string = `case-${this.rows.length}`,
  ): Readonly<Record<string, number>> {
    const name = `${this.className}.update`;
    if (grid === null || typeof grid !== 'object') throw new ArgumentError(name, 'grid', 'must be an object { shape, spacing? }');
    checkShape(name, 'grid.shape', grid.shape);
    const spacing = checkSpacing(name, 'grid.spacing', grid.spacing ?? [1, 1, 1]);
    if (typeof caseId !== 'string') throw new ArgumentError(name, 'caseId', 'must be a string');
    const predictionSet: RegionMaskSet = isMask(prediction) ? { [SINGLE_REGION]: prediction } : prediction;
    const referenceSet: RegionMaskSet = isMask(reference) ? { [SINGLE_REGION]: reference } : reference;
    if (predictionSet === null || typeof predictionSet !== 'object') throw new ArgumentError(name, 'prediction', 'must be a mask or a set of masks by region');
    if (referenceSet === null || typeof referenceSet !== 'object') throw new ArgumentError(name, 'reference', 'must be a mask or a set of masks by region');
    const regions = Object.keys(predictionSet);
    const referenceRegions = Object.keys(referenceSet);
    if (regions.length === 0 || regions.length !== referenceRegions.length || !regions.every((region) => region in referenceSet)) {
      throw new ArgumentError(
        name,
        'reference',
        `must have the prediction's regions [${regions.join(', ')}], found [${referenceRegions.join(', ')}]`,
      );
    }
    const values: Record<string, number> = {};
    for (const region of regions) {
      const predicted = checkValues(name, `prediction.${region}`, predictionSet[region]);
      const truth = checkValues(name, `reference.${region}`, referenceSet[region]);
      checkLengthMatchesShape(name, `prediction.${region}`, predicted, grid.shape);
      checkLengthMatchesShape(name, `reference.${region}`, truth, grid.shape);
      values[region] = this.computeRegion(predicted, truth, grid.shape, spacing);
    }
    this.rows.push({ caseId, values });
    return values;
  }

  /** Every kept value by case and region. */
  aggregate(reduction: 'none'): readonly MetricRow[];
  /** One number: the mean or median of every non-NaN value (NaN when there is none). */
  aggregate(reduction: 'mean' | 'median'): number;
  /** The mean over regions of each case (NaNs left out). */
  aggregate(reduction: 'per-case'): readonly CaseValue[];
  /** The mean over cases of each region (NaNs left out). */
  aggregate(reduction: 'per-region'): Readonly<Record<string, number>>;
  /**
   * Reduces the kept values with `reduction` (default: the constructor's).
   * @throws {ArgumentError} for an unknown reduction (the message lists the known ones).
   */
  aggregate(reduction?: Reduction): MetricAggregate;
  aggregate(reduction: Reduction = this.reduction): MetricAggregate {
    switch (checkReduction(`${this.className}.aggregate`, 'reduction', reduction)) {
      case 'none':
        return this.rows.map((row) => ({ caseId: row.caseId, values: { ...row.values } }));
      case 'mean':
        return nanMean(this.rows.flatMap((row) => Object.values(row.values)));
      case 'median':
        return nanMedian(this.rows.flatMap((row) => Object.values(row.values)));
      case 'per-case':
        return this.rows.map((row) => ({ caseId: row.caseId, value: nanMean(Object.values(row.values)) }));
      case 'per-region': {
        const byRegion = new Map<string, number[]>();
        for (const row of this.rows) {
          for (const [region, value] of Object.entries(row.values)) {
            const list = byRegion.get(region);
            if (list === undefined) byRegion.set(region, [value]);
            else list.push(value);
          }
        }
        const out: Record<string, number> = {};
        for (const [region, list] of byRegion) out[region] = nanMean(list);
        return out;
      }
    }
  }

  /** How many values are kept and how many of them are NaN (MONAI's `not_nans`, the other way round). */
  countValues(): { total: number; nan: number } {
    let total = 0;
    let nan = 0;
    for (const row of this.rows) {
      for (const value of Object.values(row.values)) {
        total++;
        if (Number.isNaN(value)) nan++;
      }
    }
    return { total, nan };
  }

  /** Number of cases kept. */
  get caseCount(): number {
    return this.rows.length;
  }

  /** Forgets every kept value. */
  reset(): void {
    this.rows = [];
  }
}

/** Options of {@link ConfusionMatrixMetric}. */
export interface ConfusionMatrixMetricOptions extends AccumulatorOptions {
  /** Which overlap metric to accumulate. */
  metric: OverlapMetricName;
}

/**
 * Accumulates one overlap metric (dice, iou, sensitivity, specificity or precision) per case and region.
 * @throws {ArgumentError} for an unknown metric, reduction or convention, or a bad threshold.
 * @example const m = new ConfusionMatrixMetric({ metric: 'sensitivity' }); m.update(pred, ref, { shape }); m.aggregate('mean');
 */
export class ConfusionMatrixMetric extends MetricAccumulator {
  /** The accumulated metric. */
  readonly metric: OverlapMetricName;

  constructor(options: ConfusionMatrixMetricOptions, className = 'ConfusionMatrixMetric') {
    super(className, options);
    if (!(OVERLAP_METRIC_NAMES as readonly string[]).includes(options.metric)) {
      throw new ArgumentError(className, 'options.metric', `is '${String(options.metric)}', which is unknown; known: ${OVERLAP_METRIC_NAMES.join(', ')}`);
    }
    this.metric = options.metric;
  }

  protected computeRegion(prediction: VoxelValues, reference: VoxelValues): number {
    return overlapUnchecked(this.metric, countConfusion(prediction, reference, this.threshold), this.convention);
  }
}

/**
 * Accumulates the Dice coefficient per case and region (empty masks per `options.convention`).
 * @throws {ArgumentError} for an unknown reduction or convention, or a bad threshold.
 */
export class DiceMetric extends ConfusionMatrixMetric {
  constructor(options: AccumulatorOptions = {}) {
    super({ ...options, metric: 'dice' }, 'DiceMetric');
  }
}

/**
 * Accumulates IoU (Jaccard) per case and region (empty masks per `options.convention`).
 * @throws {ArgumentError} for an unknown reduction or convention, or a bad threshold.
 */
export class IouMetric extends ConfusionMatrixMetric {
  constructor(options: AccumulatorOptions = {}) {
    super({ ...options, metric: 'iou' }, 'IouMetric');
  }
}

/** Options of {@link SoftDiceMetric}. */
export interface SoftDiceMetricOptions extends Omit<AccumulatorOptions, 'convention'> {
  /** Smoothing constant s (default 1). */
  smooth?: number;
}

/**
 * Accumulates soft Dice (2I + s)/(T + P + s) of probability maps against reference masks, per case and region.
 * @throws {ArgumentError} for a negative smoothing constant, an unknown reduction or a bad threshold.
 */
export class SoftDiceMetric extends MetricAccumulator {
  /** Smoothing constant. */
  readonly smooth: number;

  constructor(options: SoftDiceMetricOptions = {}) {
    super('SoftDiceMetric', options);
    const smooth = options.smooth ?? 1;
    if (typeof smooth !== 'number' || !Number.isFinite(smooth) || smooth < 0) {
      throw new ArgumentError('SoftDiceMetric', 'options.smooth', `must be a finite number ≥ 0, found ${String(smooth)}`);
    }
    this.smooth = smooth;
  }

  protected computeRegion(prediction: VoxelValues, reference: VoxelValues): number {
    return computeSoftDice(prediction, reference, { smooth: this.smooth, threshold: this.threshold });
  }
}

/** Options of {@link HausdorffDistanceMetric}. */
export interface HausdorffDistanceMetricOptions extends AccumulatorOptions {
  /** Percentile of each directed set (e.g. 95 for HD95); undefined takes the maximum. */
  percentile?: number;
}

/**
 * Accumulates the symmetric (percentile) Hausdorff distance in mm per case and region; HD95 with `percentile: 95`.
 * @throws {ArgumentError} for a percentile outside [0, 100], an unknown reduction or convention, or a bad threshold.
 */
export class HausdorffDistanceMetric extends MetricAccumulator {
  /** Directed percentile, or undefined for the maximum. */
  readonly percentile: number | undefined;

  constructor(options: HausdorffDistanceMetricOptions = {}) {
    super('HausdorffDistanceMetric', options);
    const percentile = options.percentile;
    if (percentile !== undefined && (typeof percentile !== 'number' || !(percentile >= 0 && percentile <= 100))) {
      throw new ArgumentError('HausdorffDistanceMetric', 'options.percentile', `must be a number in [0, 100], found ${String(percentile)}`);
    }
    this.percentile = percentile;
  }

  protected computeRegion(prediction: VoxelValues, reference: VoxelValues, shape: GridShape, spacing: GridSpacing): number {
    const distances = surfaceDistances(prediction, reference, shape, spacing, this.threshold);
    return hausdorffFromDistances(distances, this.percentile, this.convention, shape, spacing);
  }
}

/**
 * Accumulates the average symmetric surface distance (ASSD, mm) per case and region.
 * @throws {ArgumentError} for an unknown reduction or convention, or a bad threshold.
 */
export class SurfaceDistanceMetric extends MetricAccumulator {
  constructor(options: AccumulatorOptions = {}) {
    super('SurfaceDistanceMetric', options);
  }

  protected computeRegion(prediction: VoxelValues, reference: VoxelValues, shape: GridShape, spacing: GridSpacing): number {
    return assdFromDistances(surfaceDistances(prediction, reference, shape, spacing, this.threshold), this.convention, shape, spacing);
  }
}
