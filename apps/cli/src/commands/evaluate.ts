import path from 'node:path';
import { getLabelMapping, pairPredictionsWithReferences, readPredictionLabels, writeFileAtomic } from '@brats/io';
import {
  LESION_WISE_CHALLENGES,
  evaluateCases,
  evaluationToCsv,
  evaluationToJson,
  type EmptyConvention,
  type LesionWiseChallenge,
  type RegionName,
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
  lesionWise?: string | true;
}

function format(value: number, digits: number): string {
  return Number.isNaN(value) ? 'NaN' : value.toFixed(digits);
}

/** `brats evaluate --pred DIR --ref DATASET_DIR [--lesion-wise [challenge]]`: per-case and summary Dice, HD95, ASSD, … per region, and BraTS 2023's lesion-wise scores. */
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
    .option(
      '--lesion-wise [challenge]',
      `also score lesion by lesion, as BraTS ranks since 2023, with a challenge's parameters: ${Object.keys(LESION_WISE_CHALLENGES).join(', ')} (default BraTS-GLI)`,
    )
    .action(async (options: EvaluateOptions) => {
      const regions: RegionName[] =
        options.regions === 'wt' ? ['WT'] : options.regions === 'brats' ? ['WT', 'TC', 'ET'] : [];
      if (regions.length === 0) throw new UsageError(`--regions must be wt or brats, got ${options.regions}`);
      if (options.convention !== 'monai' && options.convention !== 'brats') {
        throw new UsageError(`--convention must be monai or brats, got ${options.convention}`);
      }
      const convention = options.convention as EmptyConvention;
      const challenge = options.lesionWise === undefined ? undefined : options.lesionWise === true ? 'BraTS-GLI' : options.lesionWise;
      const known = Object.keys(LESION_WISE_CHALLENGES);
      const challengeName = challenge === undefined ? undefined : known.find((name) => name.toLowerCase() === challenge.toLowerCase() || name.slice(6).toLowerCase() === challenge.toLowerCase());
      if (challenge !== undefined && challengeName === undefined) throw new UsageError(`--lesion-wise: '${challenge}' is unknown; known: ${known.join(', ')}`);
      const lesionWise = challengeName === undefined ? undefined : LESION_WISE_CHALLENGES[challengeName as LesionWiseChallenge];
      if (options.out !== undefined && !/\.(csv|json)$/i.test(options.out)) {
        throw new UsageError(`--out must end in .csv or .json, got ${options.out}`);
      }
      // What the prediction folder says it holds (brats predict records it) unless --pred-labels says otherwise.
      const recorded = options.predLabels === undefined ? await readPredictionLabels(options.pred) : undefined;
      const labelsName = options.predLabels ?? recorded;
      const predictionMapping = labelsName === undefined ? undefined : getLabelMapping(labelsName === 'brats2018' ? 'brats2017' : labelsName);
      if (recorded !== undefined) printLine(context, `prediction labels: ${recorded} (from ${options.pred}/predictions.json)`);
      const inner = regions.filter((region) => region !== 'WT');
      if (predictionMapping?.name === 'wt' && inner.length > 0) {
        throw new UsageError(
          `${options.pred} holds whole-tumour masks (0/1${recorded === undefined ? '' : ', as its predictions.json says'}): they cannot be scored as ${inner.join(' or ')}; use --regions wt`,
        );
      }
      const pairing = await pairPredictionsWithReferences(
        options.pred,
        options.ref,
        predictionMapping === undefined ? {} : { predictionMapping },
      );
      const progress = createProgress(context, 'evaluate', pairing.caseCount, 'cases');
      const result = await evaluateCases(pairing.pairs, { convention, regions, ...(lesionWise === undefined ? {} : { lesionWise }) }, (done, caseId) => progress.update(done, caseId));
      progress.finish();
      const { cases: evaluations, summary } = result;
      const problems = [...result.problems, ...pairing.unmatched].map((problem) => problem.message);

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
      if (lesionWise !== undefined) {
        printLine(context);
        printLine(
          context,
          `lesion-wise (${challengeName}: lesions within ${lesionWise.dilation} dilation step${lesionWise.dilation === 1 ? '' : 's'} merged, ` +
            `lesions of ${lesionWise.minimumVolumeMm3} mm³ or less left out, ${lesionWise.penaltyMm} mm for a missed or stray lesion)`,
        );
        printLine(context, `${'case'.padEnd(28)} ${regions.map((r) => `${r} Dice  ${r} HD95  TP/FP/FN`.padEnd(28)).join(' ')}`);
        for (const evaluation of evaluations) {
          const cells = regions.map((region) => {
            const scores = evaluation.regions[region]!.lesionWise!;
            const counts = `${scores.truePositives}/${scores.falsePositives}/${scores.falseNegatives}`;
            return `${format(scores.dice, 4).padStart(7)} ${format(scores.hd95, 2).padStart(9)} ${counts.padStart(9)}`.padEnd(28);
          });
          printLine(context, `${(evaluation.caseId ?? '').padEnd(28)} ${cells.join(' ')}`);
        }
        for (const region of regions) {
          const stats = summary.regions[region];
          if (stats?.lesionWiseDice === undefined || stats.lesionWiseHd95 === undefined) continue;
          printLine(
            context,
            `  ${region}  lesion-wise Dice mean ${format(stats.lesionWiseDice.mean, 4)} median ${format(stats.lesionWiseDice.median, 4)}` +
              `   HD95 mean ${format(stats.lesionWiseHd95.mean, 2)} median ${format(stats.lesionWiseHd95.median, 2)} mm`,
          );
        }
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
