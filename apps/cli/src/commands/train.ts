import type { InitialWeightsRecord } from '@brats/io';
import type { TrainOptions } from '@brats/unet';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { createProgress, trainingEta, type ProgressReporter } from '../progress.js';
import { parseChoice, parseFraction, parseInteger, parsePositiveNumber, parseWeights } from '../parse.js';
import { loadTrainingPackage } from '../training-package.js';
import { UsageError } from '../errors.js';
import { resolveModelArgument } from '../default-model.js';

interface TrainFlags {
  data: string;
  out: string;
  epochs: string;
  batchSize: string;
  lr: string;
  lrSchedule: string;
  decayStart?: string;
  filters?: string;
  depth?: string;
  upsampling?: string;
  batchNorm?: boolean;
  dropout?: string;
  backend: string;
  tumourFraction?: string;
  stepsPerEpoch?: string;
  patience?: string;
  augment: boolean;
  maxValidationSlices?: string;
  resume?: boolean;
  seed: string;
  workers: string;
  monitor: string;
  initFrom?: string;
  regionWeights?: string;
}

/** One line naming the weights a fine-tuning run starts from. */
export function describeInitialWeights(record: InitialWeightsRecord): string {
  const epoch = record.bestEpoch === undefined ? '' : `epoch ${record.bestEpoch}, `;
  return `${record.source} (${epoch}made ${record.createdAt}, weights sha256 ${record.weightsSha256.slice(0, 12)}…)`;
}

/** `brats train --data FILE.h5 --out BUNDLE`: the seed's U-Net training, resumable. */
export function registerTrainCommand(program: Command, context: CliContext): void {
  program
    .command('train')
    .description('train the 2D U-Net on an HDF5 slice store and write a model bundle (resumable with --resume)')
    .requiredOption('--data <file>', 'HDF5 slice store from brats convert')
    .requiredOption('--out <dir>', 'model bundle folder to write')
    .option('--epochs <n>', 'epochs', '30')
    .option('--batch-size <n>', 'slices per batch (the seed: 128)', '128')
    .option('--lr <x>', 'Adam learning rate', '1e-4')
    .option('--lr-schedule <kind>', 'constant (the seed), or cosine: the rate held to --decay-start, then annealed along a half cosine to 0 at the last epoch', 'constant')
    .option('--decay-start <epoch>', 'with --lr-schedule cosine: the last epoch at the full rate (default 0)')
    .option('--filters <n>', 'filters of the first level, doubling per level (default: 16, or the --init-from model\'s)')
    .option('--depth <n>', 'number of 2x2 poolings (default: 4, or the --init-from model\'s)')
    .option('--upsampling <mode>', 'bilinear or transpose (default: bilinear, or the --init-from model\'s)')
    .option('--batch-norm', 'batch normalisation after each convolution (not in the seed; default: off, or as the --init-from model)')
    .option('--dropout <rate>', 'SpatialDropout2D rate in the two deepest encoder levels (default: 0.2, or the --init-from model\'s)')
    .option('--backend <name>', 'auto, tensorflow, wasm or cpu', 'auto')
    .option('--tumour-fraction <f>', 'fraction of each batch drawn from tumour slices (default: plain shuffle)')
    .option('--steps-per-epoch <n>', 'batches per epoch with --tumour-fraction')
    .option('--patience <n>', 'stop after n epochs without a better monitored figure (--monitor)')
    .option('--monitor <what>', 'keep the model with the lowest validation loss (the seed) or the highest validation dice', 'loss')
    .option('--workers <n>', 'gradient worker threads besides the main one, or auto (one on wasm and cpu with two or more cores)', 'auto')
    .option('--no-augment', 'switch off flips, rotations, shear, scale and intensity augmentation')
    .option('--max-validation-slices <n>', 'validate on at most n evenly spaced validation slices')
    .option('--resume', 'continue the run in --out from its last completed epoch')
    .option('--seed <s>', 'seed of initialisation, data order, augmentation and dropout', '816')
    .option('--region-weights <w>', "weight of each region's Dice loss, comma-separated in the store's order (WT,TC,ET; default equal, the seed)")
    .option('--init-from <model>', 'fine-tune: start from the weights of this model bundle folder or installed model package, and build its network, instead of a random initialisation (its inputs must be this store\'s)')
    .action(async (flags: TrainFlags) => {
      const options: TrainOptions = {
        dataFile: flags.data,
        bundle: flags.out,
        epochs: parseInteger('--epochs', flags.epochs, 1),
        batchSize: parseInteger('--batch-size', flags.batchSize, 1),
        learningRate: parsePositiveNumber('--lr', flags.lr),
        backend: parseChoice('--backend', flags.backend, ['auto', 'tensorflow', 'wasm', 'cpu'] as const),
        augment: flags.augment,
        resume: flags.resume === true,
        seed: parseInteger('--seed', flags.seed, 0),
        workers: flags.workers === 'auto' ? 'auto' : parseInteger('--workers', flags.workers, 0, 64),
        monitor: parseChoice('--monitor', flags.monitor, ['loss', 'dice'] as const),
      };
      const schedule = parseChoice('--lr-schedule', flags.lrSchedule, ['constant', 'cosine'] as const);
      if (schedule === 'cosine') options.learningRateSchedule = { kind: 'cosine', decayStart: flags.decayStart === undefined ? 0 : parseInteger('--decay-start', flags.decayStart, 0) };
      else if (flags.decayStart !== undefined) throw new UsageError('--decay-start goes with --lr-schedule cosine');
      // Unset architecture flags take the seed's values, or the --init-from model's (the trainer decides).
      if (flags.filters !== undefined) options.filters = parseInteger('--filters', flags.filters, 1);
      if (flags.depth !== undefined) options.depth = parseInteger('--depth', flags.depth, 1);
      if (flags.upsampling !== undefined) options.upsampling = parseChoice('--upsampling', flags.upsampling, ['bilinear', 'transpose'] as const);
      if (flags.batchNorm === true) options.batchNorm = true;
      if (flags.dropout !== undefined) options.dropout = parseFraction('--dropout', flags.dropout);
      if (flags.tumourFraction !== undefined) options.tumourFraction = parseFraction('--tumour-fraction', flags.tumourFraction);
      if (flags.stepsPerEpoch !== undefined) options.stepsPerEpoch = parseInteger('--steps-per-epoch', flags.stepsPerEpoch, 1);
      if (flags.patience !== undefined) options.patience = parseInteger('--patience', flags.patience, 1);
      if (flags.maxValidationSlices !== undefined) options.maxValidationSlices = parseInteger('--max-validation-slices', flags.maxValidationSlices, 1);
      if (flags.regionWeights !== undefined) options.regionWeights = parseWeights('--region-weights', flags.regionWeights);
      if (flags.initFrom !== undefined) options.initialWeights = await resolveModelArgument(flags.initFrom, '--init-from');

      let progress: ProgressReporter | undefined;
      let batchSlices = options.batchSize ?? 128;
      let epochCount = 0;
      const eta = trainingEta();
      const { trainUnet } = await loadTrainingPackage('train');
      const result = await trainUnet(options, {
        onBackend: (selection) => {
          printLine(context, `backend: ${selection.name} (${selection.reason})`);
          for (const fallback of selection.fallbacks) printLine(context, `  not ${fallback.name}: ${fallback.why}`);
        },
        onResume: (done) => printLine(context, `resuming after epoch ${done}`),
        onInitialWeights: (record) => printLine(context, `initial weights: ${describeInitialWeights(record)}`),
        onThreads: (threads, why) => printLine(context, `threads: ${threads} (${why})`),
        onWarning: (line) => context.stderr.write(`warning: ${line}\n`),
        onMonitorChange: (previous, next, kept) =>
          printLine(context, `monitor: ${next} instead of ${previous}; the kept model (epoch ${kept}) stays until a later epoch has a better validation ${next}`),
        onEpochStart: (epoch, epochs, steps) => {
          batchSlices = options.batchSize ?? 128;
          epochCount = epochs;
          progress = createProgress(context, `epoch ${epoch}/${epochs}`, steps * batchSlices, 'slices');
        },
        onStep: (step, _steps, loss) => progress?.update(step * batchSlices, `loss ${loss.toFixed(4)}`),
        onEpochEnd: (record, improved) => {
          progress?.finish();
          const dice = record.validationDice.map((value) => value.toFixed(4)).join('/');
          printLine(
            context,
            `epoch ${record.epoch}: loss ${record.loss.toFixed(4)}  val loss ${record.validationLoss.toFixed(4)}  val Dice ${dice}  ` +
              `${record.slicesPerSecond.toFixed(1)} slices/s  ${record.seconds.toFixed(1)} s${improved ? '  (best, saved)' : ''}  ` +
              eta(record.epoch, epochCount, record.seconds),
          );
        },
      });
      const validation = result.manifest.validation;
      printLine(context, `model bundle: ${flags.out}${result.stoppedEarly ? ' (stopped early: no improvement)' : ''}`);
      if (validation !== undefined) printLine(context, `best epoch ${result.manifest.training?.bestEpoch}: validation WT Dice ${validation['WTDice']?.toFixed(4)}`);
    });
}
