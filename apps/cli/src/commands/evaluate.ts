import path from 'node:path';
import {
  BratsError,
  affinesClose,
  findLabelMaps,
  getLabelMapping,
  loadCase,
  openDataset,
  readNifti,
  writeFileAtomic,
  type RegionName,
} from '@brats/io';
import {
  SUMMARY_METRIC_NAMES,
  evaluateCase,
  summarizeCases,
  type CaseEvaluation,
  type EmptyConvention,
  type EvaluationSummary,
} from '@brats/metrics';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { createProgress } from '../progress.js';

interface EvaluateOptions {
  pred: string;
  ref: string;
  regions: string;
  convention: string;
  predLabels?: string;
  out?: string;
}

const PER_CASE_METRICS = ['dice', 'iou', 'sensitivity', 'specificity', 'precision', 'hd95', 'hausdorff', 'assd'] as const;

/** JSON numbers cannot be NaN or infinite: those become null. */
function jsonNumber(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

/** The `brats evaluate` JSON document: `{ cases: [{ id, WT: { dice, ... } }], summary: { WT: { dice: { mean, ... } } } }`. */
export function evaluationToJson(cases: readonly CaseEvaluation[], summary: EvaluationSummary, problems: readonly string[]) {
  return {
    cases: cases.map((evaluation) => {
      const row: Record<string, unknown> = { id: evaluation.caseId };
      for (const [region, values] of Object.entries(evaluation.regions)) {
        row[region] = {
          ...Object.fromEntries(PER_CASE_METRICS.map((metric) => [metric, jsonNumber(values[metric])])),
          volumeMlReference: values.volumeMl.reference,
          volumeMlPrediction: values.volumeMl.prediction,
        };
      }
      return row;
    }),
    summary: Object.fromEntries(
      Object.entries(summary.regions).map(([region, metrics]) => [
        region,
        Object.fromEntries(
          SUMMARY_METRIC_NAMES.map((metric) => {
            const stats = metrics[metric];
            return [metric, { mean: jsonNumber(stats.mean), median: jsonNumber(stats.median), std: jsonNumber(stats.std), count: stats.count, nanCount: stats.nanCount }];
          }),
        ),
      ]),
    ),
    caseCount: summary.caseCount,
    convention: cases[0]?.convention ?? null,
    problems,
  };
}

function evaluationToCsv(cases: readonly CaseEvaluation[]): string {
  const lines = [['id', 'region', ...PER_CASE_METRICS, 'volume_ml_reference', 'volume_ml_prediction'].join(',')];
  for (const evaluation of cases) {
    for (const [region, values] of Object.entries(evaluation.regions)) {
      lines.push([evaluation.caseId ?? '', region, ...PER_CASE_METRICS.map((m) => values[m]), values.volumeMl.reference, values.volumeMl.prediction].join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}

function format(value: number, digits: number): string {
  return Number.isNaN(value) ? 'NaN' : value.toFixed(digits);
}

/** `brats evaluate --pred DIR --ref DATASET_DIR`: per-case and summary Dice, HD95, ASSD, … per region. */
export function registerEvaluateCommand(program: Command, context: CliContext): void {
  program
    .command('evaluate')
    .description('score predicted label maps against a reference dataset (Dice, IoU, HD95, ASSD, volumes per region)')
    .requiredOption('--pred <dir>', 'folder of predicted label maps (<id>.nii.gz, <id>_seg.nii.gz, case folders, …)')
    .requiredOption('--ref <dir>', 'reference dataset folder (any layout)')
    .option('--regions <set>', 'wt (whole tumour only) or brats (WT, TC, ET)', 'brats')
    .option('--convention <name>', 'empty-mask convention: monai (empty reference -> NaN) or brats (challenge style)', 'monai')
    .option('--pred-labels <name>', "label convention of the predictions: msd, brats2017, brats2023 or wt (0/1 whole-tumour masks; default: the reference's)")
    .option('--out <file>', 'write the results to a .csv or .json file')
    .action(async (options: EvaluateOptions) => {
      const regions: RegionName[] =
        options.regions === 'wt' ? ['WT'] : options.regions === 'brats' ? ['WT', 'TC', 'ET'] : [];
      if (regions.length === 0) throw new UsageError(`--regions must be wt or brats, got ${options.regions}`);
      if (options.convention !== 'monai' && options.convention !== 'brats') {
        throw new UsageError(`--convention must be monai or brats, got ${options.convention}`);
      }
      const convention = options.convention as EmptyConvention;
      if (options.out !== undefined && !/\.(csv|json)$/i.test(options.out)) {
        throw new UsageError(`--out must end in .csv or .json, got ${options.out}`);
      }
      const reference = await openDataset(options.ref);
      const predictionMapping =
        options.predLabels === undefined ? reference.labelMapping : getLabelMapping(options.predLabels === 'brats2018' ? 'brats2017' : options.predLabels);
      const predictions = new Map((await findLabelMaps(options.pred)).map((file) => [file.id, file.path]));
      const labelled = reference.cases.filter((ref) => ref.label !== undefined);
      const problems: string[] = [];
      const evaluations: CaseEvaluation[] = [];
      const progress = createProgress(context, 'evaluate', labelled.length, 'cases');
      let done = 0;
      for (const ref of labelled) {
        const predictionPath = predictions.get(ref.id);
        predictions.delete(ref.id);
        if (predictionPath === undefined) {
          problems.push(`case ${ref.id}: no prediction in ${options.pred}`);
        } else {
          try {
            const truth = await loadCase(ref);
            const labels = truth.labels!;
            const prediction = await readNifti(predictionPath);
            if (prediction.shape.length !== 3 || prediction.shape.some((n, i) => n !== labels.shape[i])) {
              problems.push(`case ${ref.id}: ${predictionPath}: shape [${prediction.shape.join(', ')}] differs from the reference [${labels.shape.join(', ')}]`);
            } else if (!affinesClose(prediction.affine, labels.affine, 1e-3)) {
              problems.push(`case ${ref.id}: ${predictionPath}: affine differs from the reference's (not on the same grid)`);
            } else {
              evaluations.push(
                evaluateCase(
                  {
                    caseId: ref.id,
                    prediction: prediction.data,
                    predictionMapping,
                    reference: labels.data,
                    referenceMapping: reference.labelMapping,
                    shape: [labels.shape[0], labels.shape[1], labels.shape[2]],
                    spacing: labels.spacing,
                  },
                  { convention, regions },
                ),
              );
            }
          } catch (error) {
            if (!(error instanceof BratsError)) throw error;
            problems.push(`case ${ref.id}: ${error.message}`);
          }
        }
        progress.update(++done, ref.id);
      }
      progress.finish();
      for (const id of predictions.keys()) problems.push(`prediction ${id}: no labelled reference case with this id in ${options.ref}`);
      const summary = summarizeCases(evaluations);

      printLine(context, `${'case'.padEnd(28)} ${regions.map((r) => `${r} Dice  ${r} HD95`.padEnd(18)).join(' ')}`);
      for (const evaluation of evaluations) {
        const cells = regions.map((region) => {
          const values = evaluation.regions[region]!;
          return `${format(values.dice, 4).padStart(7)} ${format(values.hd95, 2).padStart(9)}`.padEnd(18);
        });
        printLine(context, `${(evaluation.caseId ?? '').padEnd(28)} ${cells.join(' ')}`);
      }
      printLine(context);
      printLine(context, `summary over ${summary.caseCount} cases (${convention} convention)`);
      for (const region of regions) {
        const stats = summary.regions[region];
        if (stats === undefined) continue;
        const dice = stats.dice;
        const hd95 = stats.hd95;
        printLine(
          context,
          `  ${region}  Dice mean ${format(dice.mean, 4)} median ${format(dice.median, 4)} std ${format(dice.std, 4)}` +
            `   HD95 mean ${format(hd95.mean, 2)} median ${format(hd95.median, 2)} mm` +
            (dice.nanCount > 0 ? `   (${dice.nanCount} NaN: empty reference)` : ''),
        );
      }
      if (options.out !== undefined) {
        const text = options.out.toLowerCase().endsWith('.csv')
          ? evaluationToCsv(evaluations)
          : `${JSON.stringify(evaluationToJson(evaluations, summary, problems), null, 2)}\n`;
        await writeFileAtomic(options.out, text);
        printLine(context, `results written to ${path.resolve(options.out)}`);
      }
      if (problems.length > 0) {
        context.stderr.write(`${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
        context.exitCode = 2;
      }
    });
}
