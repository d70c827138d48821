import { caseMessage, convertDataset, formatSpacing, parseChannelName, type ChannelName, type ConvertDatasetOptions, type SplitFractions } from '@brats/io';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseChoice, parseInteger } from '../parse.js';
import { createProgress } from '../progress.js';

interface ConvertFlags {
  out: string;
  crop: string;
  cropMode: string;
  normalize: string;
  target: string;
  channels: string;
  split: string;
  seed: string;
  workers?: string;
  compression: string;
  json?: boolean;
  replaceNonFinite?: boolean;
  validationCases?: string;
  testCases?: string;
}

/** A comma-separated list of case ids. @throws {UsageError} for an empty list. */
export function parseCaseIds(flag: string, text: string): string[] {
  const ids = text.split(',').map((id) => id.trim()).filter((id) => id.length > 0);
  if (ids.length === 0) throw new UsageError(`${flag} takes comma-separated case ids, got '${text}'`);
  return ids;
}

function parseCrop(text: string): number | [number, number, number] {
  const parts = text.split(',').map((part) => parseInteger('--crop', part, 1));
  if (parts.length === 1) return parts[0]!;
  if (parts.length === 3) return parts as [number, number, number];
  throw new UsageError(`--crop takes one size or three (i,j,k), got '${text}'`);
}

function parseSplit(text: string): number | SplitFractions {
  const parts = text.split(',').map((part) => Number(part));
  if (parts.some((value) => !Number.isFinite(value) || value < 0 || value > 1)) {
    throw new UsageError(`--split takes a training fraction or train,validation,testing fractions in [0, 1], got '${text}'`);
  }
  if (parts.length === 1) return parts[0]!;
  if (parts.length === 3) {
    const [train, validation, testing] = parts as [number, number, number];
    if (Math.abs(train + validation + testing - 1) > 1e-6) throw new UsageError(`--split fractions must sum to 1, got '${text}'`);
    return { train, validation, testing };
  }
  throw new UsageError(`--split takes one fraction or three, got '${text}'`);
}

function parseChannels(text: string): ChannelName[] {
  return text.split(',').map((name) => {
    const channel = parseChannelName(name);
    if (channel === undefined) throw new UsageError(`--channels: unknown channel '${name}' (known: flair, t1w, t1gd, t2w)`);
    return channel;
  });
}

/** Turns command-line flags into {@link convertDataset} options. @throws {UsageError} for a malformed flag. */
export function parseConvertFlags(flags: ConvertFlags): ConvertDatasetOptions {
  const options: ConvertDatasetOptions = {
    crop: parseCrop(flags.crop),
    cropMode: parseChoice('--crop-mode', flags.cropMode, ['center', 'brain'] as const),
    normalize: parseChoice('--normalize', flags.normalize, ['block', 'nonzero'] as const),
    target: parseChoice('--target', flags.target, ['wt', 'regions'] as const),
    channels: parseChannels(flags.channels),
    split: parseSplit(flags.split),
    seed: parseInteger('--seed', flags.seed, 0, 0xffffffff),
    compressionLevel: parseInteger('--compression', flags.compression, 0, 9),
  };
  if (flags.workers !== undefined) options.workers = parseInteger('--workers', flags.workers, 0, 256);
  if (flags.replaceNonFinite === true) options.nonFinite = 'zero';
  if (flags.validationCases !== undefined || flags.testCases !== undefined) {
    options.namedSplits = {
      ...(flags.validationCases === undefined ? {} : { validation: parseCaseIds('--validation-cases', flags.validationCases) }),
      ...(flags.testCases === undefined ? {} : { testing: parseCaseIds('--test-cases', flags.testCases) }),
    };
  }
  return options;
}

/**
 * `brats convert DATASET_DIR --out FILE.h5 [...]`: decode, crop and normalise every labelled case on all cores
 * and write the HDF5 slice store (imgs_/msks_ train, validation, testing), split by case with the seed's draws.
 */
export function registerConvertCommand(program: Command, context: CliContext): void {
  program
    .command('convert')
    .description('convert a dataset folder (Decathlon Task01, BraTS 2017-2021, BraTS 2023+) into an HDF5 slice store for training')
    .argument('<dataset>', 'dataset folder')
    .requiredOption('--out <file>', 'output .h5 file (written atomically)')
    .option('--crop <size>', 'centre crop size on i, j and k, or i,j,k', '144')
    .option('--crop-mode <mode>', 'center (the seed) or brain (window centred on the non-zero voxels)', 'center')
    .option('--normalize <mode>', 'block: z-score over the cropped block (the seed); nonzero: over non-zero voxels', 'block')
    .option('--target <target>', 'wt: one whole-tumour mask (the seed); regions: WT, TC, ET masks', 'wt')
    .option('--channels <list>', 'channels to keep, in order', 'flair,t1w,t1gd,t2w')
    .option(
      '--split <fractions>',
      'training fraction (rest halved into validation and testing) or train,validation,testing. Per case in dataset order, ' +
        'numpy legacy draws after np.random.seed(SEED): u < train -> training; the remaining cases draw again, ' +
        'v >= testing/(validation+testing) -> validation, else testing',
      '0.85',
    )
    .option('--seed <n>', 'split seed', '816')
    .option('--validation-cases <ids>', 'name the validation cases (comma-separated ids) instead of drawing the split; every case not named trains')
    .option('--test-cases <ids>', 'name the test cases (comma-separated ids) instead of drawing the split; every case not named trains')
    .option('--workers <n>', 'decoding threads (0: decode in the main thread; default: one per core but the writing one, 1 to 8, fewer when memory is short)')
    .option('--compression <level>', 'gzip level 1-9, 0 for none (faster, about 5x larger)', '1')
    .option('--replace-non-finite', 'set NaN or infinite image voxels to 0 (each case says how many) instead of refusing the case')
    .option('--json', 'print the summary as one JSON document')
    .action(async (datasetDir: string, flags: ConvertFlags) => {
      const options = parseConvertFlags(flags);
      const controller = new AbortController();
      const interrupt = () => controller.abort();
      // Ctrl-C or a kill: abort so that the partial file is removed and no output appears.
      process.once('SIGINT', interrupt);
      process.once('SIGTERM', interrupt);
      let reporter: ReturnType<typeof createProgress> | undefined;
      try {
        const summary = await convertDataset(datasetDir, flags.out, {
          ...options,
          signal: controller.signal,
          onCase: ({ done, total, caseId }) => {
            reporter ??= createProgress(context, 'convert', total, 'cases');
            reporter.update(done, caseId);
          },
        });
        const { train, validation, testing } = summary.counts;
        reporter?.finish(`${summary.cases} cases`);
        for (const { caseId, message } of summary.warnings) context.stderr.write(`warning: ${caseMessage(caseId, message)}\n`);
        if (flags.json === true) {
          printLine(context, JSON.stringify(summary, null, 2));
          return;
        }
        const [height, width] = summary.settings.cropSize;
        printLine(context, `wrote ${summary.path}`);
        printLine(context, `  layout      ${summary.layout}, ${summary.cases} labelled cases${summary.skippedUnlabelled > 0 ? ` (${summary.skippedUnlabelled} unlabelled skipped)` : ''}`);
        printLine(context, `  cases       train ${train.cases}, validation ${validation.cases}, testing ${testing.cases}`);
        printLine(context, `  slices      train ${train.slices}, validation ${validation.slices}, testing ${testing.slices}`);
        printLine(context, `  slice       ${height} x ${width} x ${summary.geometry.channels} (${summary.settings.channels.join(', ')}), masks x ${summary.geometry.maskChannels}`);
        printLine(context, `  workers     ${summary.workers}`);
        printLine(
          context,
          `  spacing     ${summary.spacing === undefined ? 'none recorded: the cases differ (see the warning), so a model trained on it is taken to be 1 mm' : `${formatSpacing(summary.spacing)} mm, every case: recorded, so a model trained on it resamples scans to it`}`,
        );
      } finally {
        process.removeListener('SIGINT', interrupt);
        process.removeListener('SIGTERM', interrupt);
      }
    });
}
