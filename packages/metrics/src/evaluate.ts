/**
 * Case evaluation as the CLI uses it: two label maps of any layout → per-region overlap, surface-distance and
 * volume metrics; and a summary over cases.
 */
import { ArgumentError } from './errors.js';
import { regionMask, type LabelRegionMapping, type RegionName } from './labels.js';
import { checkConvention, type EmptyConvention } from './conventions.js';
import { countConfusion, overlapUnchecked } from './overlap.js';
import { checkLabelValues, checkMapping, checkRegions, voxelVolumeMl } from './regions.js';
import { checkLesionWiseParameters, lesionWiseScores, type LesionWiseParameters } from './lesion-wise.js';
import { describeValues, type MetricStatistics } from './statistics.js';
import { surfaceDistances, surfaceMetricsFromDistances } from './surface.js';
import {
  checkLengthMatchesShape,
  checkShape,
  checkSpacing,
  checkValues,
  type GridShape,
  type GridSpacing,
  type VoxelValues,
} from './validate.js';

/** One case to evaluate: a predicted and a reference label map on the same grid, each with its label convention. */
export interface CaseInput {
  /** Predicted label map, flat, NIfTI i-j-k order (i fastest), `shape` voxels. */
  prediction: VoxelValues;
  /** Label convention of `prediction` (e.g. MSD_LABELS). */
  predictionMapping: LabelRegionMapping;
  /** Reference (ground-truth) label map, same layout as `prediction`. */
  reference: VoxelValues;
  /** Label convention of `reference` (e.g. BRATS2017_LABELS). */
  referenceMapping: LabelRegionMapping;
  /** Grid shape `[i, j, k]`. */
  shape: GridShape;
  /** Voxel size in mm along i, j, k. */
  spacing: GridSpacing;
  /** Identifier carried into the result, e.g. `Brats18_2013_11_1`. */
  caseId?: string;
}

/** Options of {@link evaluateCase}. */
export interface EvaluateCaseOptions {
  /** Empty-mask convention (default `monai`). */
  convention?: EmptyConvention;
  /** Regions to evaluate (default WT, TC, ET). */
  regions?: readonly RegionName[];
  /**
   * Also score each region lesion by lesion, as BraTS ranks since 2023, with these parameters (e.g.
   * `LESION_WISE_CHALLENGES['BraTS-GLI']`; missing ones from `DEFAULT_LESION_WISE`). Default: not scored.
   */
  lesionWise?: Partial<LesionWiseParameters>;
}

/** The lesion-wise scores of one region of one case (see `computeLesionWise`). */
export interface RegionLesionWise {
  dice: number;
  hd95: number;
  truePositives: number;
  falsePositives: number;
  falseNegatives: number;
}

/** Every metric of one region of one case. Distances in mm, volumes in mL. */
export interface RegionEvaluation {
  dice: number;
  iou: number;
  sensitivity: number;
  specificity: number;
  precision: number;
  hd95: number;
  hausdorff: number;
  assd: number;
  /** Region volume (voxel count × spacing product / 1000) in the reference and in the prediction. */
  volumeMl: { reference: number; prediction: number };
  /** The reference region has no voxel (under `monai`, Dice, IoU, sensitivity and distances are then NaN). */
  referenceEmpty: boolean;
  /** The predicted region has no voxel. */
  predictionEmpty: boolean;
  /** Lesion-wise scores, when {@link EvaluateCaseOptions.lesionWise} asked for them. */
  lesionWise?: RegionLesionWise;
}

/** The evaluation of one case. */
export interface CaseEvaluation {
  caseId?: string;
  convention: EmptyConvention;
  /** Evaluated regions, in the order asked for. */
  regions: Partial<Record<RegionName, RegionEvaluation>>;
  /** The lesion-wise parameters used, when lesion-wise scores were asked for. */
  lesionWise?: LesionWiseParameters;
}

/** The metric names a summary reports, in order. */
export type SummaryMetricName =
  | 'dice'
  | 'iou'
  | 'sensitivity'
  | 'specificity'
  | 'precision'
  | 'hd95'
  | 'hausdorff'
  | 'assd'
  | 'volumeMlReference'
  | 'volumeMlPrediction';

/** Every summary metric name, in report order. */
export const SUMMARY_METRIC_NAMES: readonly SummaryMetricName[] = [
  'dice',
  'iou',
  'sensitivity',
  'specificity',
  'precision',
  'hd95',
  'hausdorff',
  'assd',
  'volumeMlReference',
  'volumeMlPrediction',
];

/** The lesion-wise summary metrics, present when the cases hold lesion-wise scores. */
export type LesionWiseSummaryName = 'lesionWiseDice' | 'lesionWiseHd95';

/** Statistics of one region over cases: every {@link SummaryMetricName}, and the lesion-wise ones when scored. */
export type RegionSummary = Record<SummaryMetricName, MetricStatistics> & Partial<Record<LesionWiseSummaryName, MetricStatistics>>;

/** Statistics over cases, per region and metric. */
export interface EvaluationSummary {
  caseCount: number;
  regions: Partial<Record<RegionName, RegionSummary>>;
}

/**
 * Evaluates one case: for each region (WT, TC, ET by default), masks of both label maps through their own
 * mappings, then Dice, IoU, sensitivity, specificity, precision, HD95, Hausdorff, ASSD and both volumes.
 * Empty regions follow `options.convention` and are flagged in `referenceEmpty` / `predictionEmpty`.
 * @throws {ArgumentError} for a bad array, mapping, shape, spacing, region or convention, or a label value that
 *   its mapping does not know. @throws {ShapeMismatchError} when a label map's length differs from the shape.
 * @example evaluateCase({ prediction, predictionMapping: MSD_LABELS, reference, referenceMapping: BRATS2017_LABELS,
 *   shape: [240, 240, 155], spacing: [1, 1, 1] }).regions.WT?.dice
 */
export function evaluateCase(input: CaseInput, options: EvaluateCaseOptions = {}): CaseEvaluation {
  const name = 'evaluateCase';
  if (input === null || typeof input !== 'object') throw new ArgumentError(name, 'input', 'must be an object');
  checkValues(name, 'input.prediction', input.prediction);
  checkValues(name, 'input.reference', input.reference);
  checkMapping(name, 'input.predictionMapping', input.predictionMapping);
  checkMapping(name, 'input.referenceMapping', input.referenceMapping);
  checkShape(name, 'input.shape', input.shape);
  const spacing = checkSpacing(name, 'input.spacing', input.spacing);
  checkLengthMatchesShape(name, 'input.prediction', input.prediction, input.shape);
  checkLengthMatchesShape(name, 'input.reference', input.reference, input.shape);
  const convention = checkConvention(name, options.convention);
  const regions = checkRegions(name, options.regions);
  const lesionWise = options.lesionWise === undefined ? undefined : checkLesionWiseParameters(name, 'options.lesionWise', options.lesionWise);
  checkLabelValues(name, 'input.prediction', input.prediction, input.predictionMapping);
  checkLabelValues(name, 'input.reference', input.reference, input.referenceMapping);

  const voxelMl = voxelVolumeMl(spacing);
  const evaluations: Partial<Record<RegionName, RegionEvaluation>> = {};
  for (const region of regions) {
    const predicted = regionMask(input.prediction, input.predictionMapping, region);
    const truth = regionMask(input.reference, input.referenceMapping, region);
    const counts = countConfusion(predicted, truth, 0.5);
    const distances = surfaceDistances(predicted, truth, input.shape, spacing, 0.5);
    const surface = surfaceMetricsFromDistances(distances, convention, input.shape, spacing);
    evaluations[region] = {
      dice: overlapUnchecked('dice', counts, convention),
      iou: overlapUnchecked('iou', counts, convention),
      sensitivity: overlapUnchecked('sensitivity', counts, convention),
      specificity: overlapUnchecked('specificity', counts, convention),
      precision: overlapUnchecked('precision', counts, convention),
      hd95: surface.hd95,
      hausdorff: surface.hausdorff,
      assd: surface.assd,
      volumeMl: {
        reference: (counts.truePositive + counts.falseNegative) * voxelMl,
        prediction: (counts.truePositive + counts.falsePositive) * voxelMl,
      },
      referenceEmpty: counts.truePositive + counts.falseNegative === 0,
      predictionEmpty: counts.truePositive + counts.falsePositive === 0,
    };
    if (lesionWise !== undefined) {
      const { dice, hd95, truePositives, falsePositives, falseNegatives } = lesionWiseScores(predicted, truth, input.shape, spacing, 0.5, lesionWise);
      evaluations[region]!.lesionWise = { dice, hd95, truePositives, falsePositives, falseNegatives };
    }
  }
  const result: CaseEvaluation = { convention, regions: evaluations };
  if (input.caseId !== undefined) result.caseId = input.caseId;
  if (lesionWise !== undefined) result.lesionWise = lesionWise;
  return result;
}

function metricValue(evaluation: RegionEvaluation, metric: SummaryMetricName): number {
  if (metric === 'volumeMlReference') return evaluation.volumeMl.reference;
  if (metric === 'volumeMlPrediction') return evaluation.volumeMl.prediction;
  return evaluation[metric];
}

/**
 * Mean, median and population std over cases, per region and metric; NaNs (e.g. empty references under `monai`)
 * are counted in `nanCount` and left out. A region appears when at least one case evaluated it.
 * @throws {ArgumentError} when `cases` is not an array of case evaluations.
 */
export function summarizeCases(cases: readonly CaseEvaluation[]): EvaluationSummary {
  if (!Array.isArray(cases)) throw new ArgumentError('summarizeCases', 'cases', 'must be an array of evaluateCase() results');
  const regions: Partial<Record<RegionName, RegionSummary>> = {};
  const present = new Set<RegionName>();
  for (const [index, evaluation] of cases.entries()) {
    if (evaluation === null || typeof evaluation !== 'object' || typeof evaluation.regions !== 'object') {
      throw new ArgumentError('summarizeCases', `cases[${index}]`, 'must be an evaluateCase() result');
    }
    for (const region of Object.keys(evaluation.regions) as RegionName[]) present.add(region);
  }
  for (const region of ['WT', 'TC', 'ET'] as const) {
    if (!present.has(region)) continue;
    const rows = cases.map((evaluation) => evaluation.regions[region]).filter((row) => row !== undefined);
    const statistics = {} as RegionSummary;
    for (const metric of SUMMARY_METRIC_NAMES) statistics[metric] = describeValues(rows.map((row) => metricValue(row, metric)));
    const lesionRows = rows.map((row) => row.lesionWise).filter((row) => row !== undefined);
    if (lesionRows.length > 0) {
      statistics.lesionWiseDice = describeValues(lesionRows.map((row) => row.dice));
      statistics.lesionWiseHd95 = describeValues(lesionRows.map((row) => row.hd95));
    }
    regions[region] = statistics;
  }
  return { caseCount: cases.length, regions };
}
