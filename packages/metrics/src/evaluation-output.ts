/**
 * The written forms of an evaluation: the JSON document of `brats evaluate --out x.json` (and the demo's
 * `metrics.json`) and the CSV of `--out x.csv`. Their field names are a published format: change them only
 * with a new format, never in passing.
 */
import { ArgumentError } from './errors.js';
import type { EmptyConvention } from './conventions.js';
import {
  SUMMARY_METRIC_NAMES,
  type CaseEvaluation,
  type EvaluationSummary,
  type LesionWiseSummaryName,
  type RegionEvaluation,
  type RegionLesionWise,
  type SummaryMetricName,
} from './evaluate.js';
import type { LesionWiseParameters } from './lesion-wise.js';
import type { EvaluationProblem } from './evaluate-cases.js';
import type { RegionName } from './labels.js';

/** The lesion-wise summary metrics, in report order (after {@link SUMMARY_METRIC_NAMES}, when scored). */
const LESION_WISE_SUMMARY_NAMES: readonly LesionWiseSummaryName[] = ['lesionWiseDice', 'lesionWiseHd95'];

/** The per-case metrics of the JSON and CSV rows, in column order (volumes follow them). */
export const CASE_METRIC_NAMES = ['dice', 'iou', 'sensitivity', 'specificity', 'precision', 'hd95', 'hausdorff', 'assd'] as const;

/** One of {@link CASE_METRIC_NAMES}. */
export type CaseMetricName = (typeof CASE_METRIC_NAMES)[number];

/** One region of one case in the JSON document: a metric that is NaN or infinite is `null`; volumes in mL. */
export type RegionEvaluationJson = Record<CaseMetricName, number | null> & {
  volumeMlReference: number;
  volumeMlPrediction: number;
  /** Lesion-wise scores, when they were asked for. */
  lesionWise?: RegionLesionWise;
};

/** One case in the JSON document: its id, then one entry per evaluated region. */
export type CaseEvaluationJson = { id: string | undefined } & Partial<Record<RegionName, RegionEvaluationJson>>;

/** Statistics of one metric over cases in the JSON document; `null` where the value is NaN. */
export interface MetricStatisticsJson {
  mean: number | null;
  median: number | null;
  std: number | null;
  count: number;
  nanCount: number;
}

/**
 * The evaluation JSON document:
 * `{ cases: [{ id, WT: { dice, …, volumeMlPrediction } }], summary: { WT: { dice: { mean, median, std, count, nanCount } } },
 * caseCount, convention, problems }`; with lesion-wise scores, each region of a case also holds
 * `lesionWise: { dice, hd95, truePositives, falsePositives, falseNegatives }`, each region of the summary
 * `lesionWiseDice` and `lesionWiseHd95`, and the document `lesionWise: { dilation, minimumVolumeMm3, penaltyMm }`.
 */
export interface EvaluationJson {
  cases: CaseEvaluationJson[];
  summary: Partial<Record<RegionName, Record<SummaryMetricName, MetricStatisticsJson> & Partial<Record<LesionWiseSummaryName, MetricStatisticsJson>>>>;
  caseCount: number;
  /** The convention of the scored cases, or `null` when no case was scored. */
  convention: EmptyConvention | null;
  /** One line per case that was not scored. */
  problems: string[];
  /** The lesion-wise parameters, when lesion-wise scores were asked for. */
  lesionWise?: LesionWiseParameters;
}

/** JSON numbers cannot be NaN or infinite: those become null. */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

function checkCases(functionName: string, cases: unknown): readonly CaseEvaluation[] {
  if (!Array.isArray(cases)) throw new ArgumentError(functionName, 'cases', 'must be an array of evaluateCase() results');
  cases.forEach((evaluation: unknown, index) => {
    const candidate = evaluation as Partial<CaseEvaluation> | null;
    if (candidate === null || typeof candidate !== 'object' || candidate.regions === null || typeof candidate.regions !== 'object') {
      throw new ArgumentError(functionName, `cases[${index}]`, 'must be an evaluateCase() result');
    }
  });
  return cases as readonly CaseEvaluation[];
}

function regionEntries(evaluation: CaseEvaluation): [string, RegionEvaluation][] {
  return Object.entries(evaluation.regions).filter((entry): entry is [string, RegionEvaluation] => entry[1] !== undefined);
}

/**
 * Builds the evaluation JSON document (see {@link EvaluationJson}); NaN and infinite metrics become `null` so the
 * document is valid JSON, and problems become their message lines.
 * @param cases evaluations as {@link evaluateCase} or {@link evaluateCases} return them; @param summary
 *   {@link summarizeCases} over them; @param problems lines or {@link EvaluationProblem}s, kept in order.
 * @throws {ArgumentError} when `cases` or `problems` is not an array, or `summary` is not a summary.
 * @example JSON.stringify(evaluationToJson(result.cases, result.summary, result.problems), null, 2)
 */
export function evaluationToJson(
  cases: readonly CaseEvaluation[],
  summary: EvaluationSummary,
  problems: readonly (string | EvaluationProblem)[],
): EvaluationJson {
  const name = 'evaluationToJson';
  checkCases(name, cases);
  if (summary === null || typeof summary !== 'object' || summary.regions === null || typeof summary.regions !== 'object') {
    throw new ArgumentError(name, 'summary', 'must be a summarizeCases() result');
  }
  if (!Array.isArray(problems)) throw new ArgumentError(name, 'problems', 'must be an array of strings or EvaluationProblems');
  return {
    cases: cases.map((evaluation) => {
      const row: Record<string, unknown> = { id: evaluation.caseId };
      for (const [region, values] of regionEntries(evaluation)) {
        row[region] = {
          ...Object.fromEntries(CASE_METRIC_NAMES.map((metric) => [metric, jsonNumber(values[metric])])),
          volumeMlReference: values.volumeMl.reference,
          volumeMlPrediction: values.volumeMl.prediction,
          ...(values.lesionWise === undefined ? {} : { lesionWise: { ...values.lesionWise } }),
        };
      }
      return row as CaseEvaluationJson;
    }),
    summary: Object.fromEntries(
      Object.entries(summary.regions).map(([region, metrics]) => [
        region,
        Object.fromEntries(
          [...SUMMARY_METRIC_NAMES, ...LESION_WISE_SUMMARY_NAMES.filter((metric) => metrics[metric] !== undefined)].map((metric) => {
            const stats = metrics[metric]!;
            return [
              metric,
              { mean: jsonNumber(stats.mean), median: jsonNumber(stats.median), std: jsonNumber(stats.std), count: stats.count, nanCount: stats.nanCount },
            ];
          }),
        ),
      ]),
    ) as EvaluationJson['summary'],
    caseCount: summary.caseCount,
    convention: cases[0]?.convention ?? null,
    problems: problems.map((problem) => (typeof problem === 'string' ? problem : problem.message)),
    ...(cases[0]?.lesionWise === undefined ? {} : { lesionWise: { ...cases[0].lesionWise } }),
  };
}

/**
 * Builds the evaluation CSV: a header `id,region,dice,…,assd,volume_ml_reference,volume_ml_prediction` (then
 * `lesion_wise_dice,lesion_wise_hd95,lesion_true_positives,lesion_false_positives,lesion_false_negatives` when the
 * cases hold lesion-wise scores), then one row per case and region in input order; NaN is written `NaN`, and the
 * text ends with a newline.
 * @param cases evaluations as {@link evaluateCase} or {@link evaluateCases} return them.
 * @throws {ArgumentError} when `cases` is not an array of evaluations.
 */
export function evaluationToCsv(cases: readonly CaseEvaluation[]): string {
  checkCases('evaluationToCsv', cases);
  const lesionWise = cases.some((evaluation) => evaluation.lesionWise !== undefined);
  const lesionColumns = lesionWise ? ['lesion_wise_dice', 'lesion_wise_hd95', 'lesion_true_positives', 'lesion_false_positives', 'lesion_false_negatives'] : [];
  const lines = [['id', 'region', ...CASE_METRIC_NAMES, 'volume_ml_reference', 'volume_ml_prediction', ...lesionColumns].join(',')];
  for (const evaluation of cases) {
    for (const [region, values] of regionEntries(evaluation)) {
      const lesions = values.lesionWise;
      const lesionCells = !lesionWise
        ? []
        : lesions === undefined
          ? ['', '', '', '', '']
          : [lesions.dice, lesions.hd95, lesions.truePositives, lesions.falsePositives, lesions.falseNegatives];
      lines.push(
        [evaluation.caseId ?? '', region, ...CASE_METRIC_NAMES.map((metric) => values[metric]), values.volumeMl.reference, values.volumeMl.prediction, ...lesionCells].join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
