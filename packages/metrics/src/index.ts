/**
 * @brats/metrics: overlap and surface-distance metrics for brain-tumour segmentations, BraTS regions and
 * MONAI-style accumulators. Pure typed-array math: no tensors, no file I/O.
 */
export type { GridShape, GridSpacing, VoxelValues } from './validate.js';
export { EMPTY_CONVENTIONS, DEFAULT_EMPTY_CONVENTION, imageDiagonalMm } from './conventions.js';
export type { EmptyConvention } from './conventions.js';
export {
  DEFAULT_THRESHOLD,
  OVERLAP_METRIC_NAMES,
  binarizeMask,
  computeConfusion,
  overlapFromConfusion,
  computeDice,
  computeIou,
  computeSensitivity,
  computeSpecificity,
  computePrecision,
  computeSoftDice,
} from './overlap.js';
export type { OverlapOptions, ConfusionCounts, OverlapMetricName, SoftDiceOptions } from './overlap.js';
export { computeSquaredDistanceTransform } from './distance-transform.js';
export {
  extractSurface,
  computeSurfaceDistances,
  computeSurfaceMetrics,
  computeHausdorff,
  computeHd95,
  computeAssd,
  computePercentile,
} from './surface.js';
export type { SurfaceOptions, SurfaceDistances, SurfaceMetrics, HausdorffOptions } from './surface.js';
export { regionMasksFromLabels, computeVolumeMl, voxelVolumeMl } from './regions.js';
export { describeValues } from './statistics.js';
export type { MetricStatistics } from './statistics.js';
export { evaluateCase, summarizeCases, SUMMARY_METRIC_NAMES } from './evaluate.js';
export type {
  CaseInput,
  EvaluateCaseOptions,
  RegionEvaluation,
  CaseEvaluation,
  SummaryMetricName,
  EvaluationSummary,
} from './evaluate.js';
export {
  REDUCTIONS,
  SINGLE_REGION,
  MetricAccumulator,
  ConfusionMatrixMetric,
  DiceMetric,
  IouMetric,
  SoftDiceMetric,
  HausdorffDistanceMetric,
  SurfaceDistanceMetric,
} from './accumulator.js';
export type {
  Reduction,
  RegionMaskSet,
  MetricGrid,
  MetricRow,
  CaseValue,
  MetricAggregate,
  AccumulatorOptions,
  ConfusionMatrixMetricOptions,
  SoftDiceMetricOptions,
  HausdorffDistanceMetricOptions,
} from './accumulator.js';
// The label conventions and errors of @brats/io, so users of the metrics need not import io for them.
export {
  MSD_LABELS,
  BRATS2017_LABELS,
  BRATS2023_LABELS,
  LABEL_MAPPINGS,
  REGION_NAMES,
  getLabelMapping,
  ArgumentError,
  ShapeMismatchError,
} from '@brats/io';
export type { LabelRegionMapping, RegionName } from '@brats/io';
