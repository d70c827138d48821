/**
 * @brats/metrics: overlap and surface-distance metrics for brain-tumour segmentations, BraTS regions and
 * MONAI-style accumulators, case and folder evaluation and their JSON/CSV forms. Pure typed-array math: no tensors,
 * no file I/O, no dependency.
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
export { labelComponents, keepLargestComponent, removeSmallComponents } from './components.js';
export { computeLesionWise, LESION_WISE_CHALLENGES, DEFAULT_LESION_WISE } from './lesion-wise.js';
export type { LesionWiseOptions, LesionWiseParameters, LesionWiseResult, LesionScore, LesionWiseChallenge } from './lesion-wise.js';
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
  RegionLesionWise,
  RegionSummary,
  LesionWiseSummaryName,
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
export {
  evaluateCases,
  DEFAULT_AFFINE_TOLERANCE,
} from './evaluate-cases.js';
export type {
  GridAffine,
  GridAffineRow,
  LabelMapShape,
  PredictionLabelMap,
  ReferenceLabelMap,
  CasePair,
  EvaluationProblem,
  EvaluationProblemKind,
  EvaluateCasesOptions,
  EvaluationProgress,
  EvaluationResult,
} from './evaluate-cases.js';
export { evaluationToJson, evaluationToCsv, CASE_METRIC_NAMES } from './evaluation-output.js';
export type {
  CaseMetricName,
  EvaluationJson,
  CaseEvaluationJson,
  RegionEvaluationJson,
  MetricStatisticsJson,
} from './evaluation-output.js';
// The label conventions and the shared errors are defined here, in the package with no dependency;
// @brats/io re-exports them under the same names.
export {
  REGION_NAMES,
  MSD_LABELS,
  BRATS2017_LABELS,
  BRATS2023_LABELS,
  WHOLE_TUMOUR_LABELS,
  LABEL_MAPPINGS,
  getLabelMapping,
  allowedLabels,
  regionMask,
  convertLabels,
} from './labels.js';
export type { LabelRegionMapping, RegionName } from './labels.js';
export { BratsError, ArgumentError, ShapeMismatchError } from './errors.js';
