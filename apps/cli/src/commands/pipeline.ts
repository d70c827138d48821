import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError, TRAINING_CURVES_FILE, TRAINING_LOG_FILE, convertDataset, getLabelMapping, openDataset, pairPredictionsWithReferences, readModelManifest, writeFileAtomic, writeModelManifest, type ConvertDatasetOptions, type ReportBlock, type TrainingRecord } from '@brats/io';
import { DEFAULT_LESION_WISE, evaluateCases, evaluationToJson, type EvaluationJson, type RegionName } from '@brats/metrics';
import { EngineUnavailableError, convertBundleToIr, tuneInference } from '@brats/ncs2-runtime';
import type { EpochRate, LearningRateSchedule, TrainOptions } from '@brats/unet';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { ENGINE_CHOICES, openEngine, type EngineChoice } from '../engine-choice.js';
import { UsageError } from '../errors.js';
import { resolveModelArgument } from '../default-model.js';
import { parseChoice, parseFraction, parseInteger, parsePositiveNumber, parseWeights } from '../parse.js';
import { runPrediction } from '../predict-run.js';
import { createProgress, trainingEta, type ProgressReporter } from '../progress.js';
import { evaluationFileTable, writeReport } from '../report.js';
import { loadTrainingPackage } from '../training-package.js';
import { parseCaseIds } from './convert.js';
import { describeInitialWeights } from './train.js';
import { describeInference } from './tune.js';

/** What a pipeline run is: recorded in `pipeline.json`, and the same on every resume. */
export interface PipelineSettings {
  dataset: string;
  target: 'wt' | 'regions';
  crop: number;
  /** Normalisation of each scan's channels: `nonzero` over the brain's voxels (absent: `block`, the seed's). */
  normalize?: 'nonzero';
  validationCases: string[] | null;
  testCases: string[] | null;
  splitSeed: number;
  filters: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** `constant`, or `cosine` after `decayStart` (absent in runs started before schedules: constant). */
  lrSchedule?: 'constant' | 'cosine';
  decayStart?: number;
  tumourFraction: number;
  stepsPerEpoch: number;
  monitor: 'loss' | 'dice';
  seed: number;
  engine: EngineChoice;
  /** Fine-tuning: the model bundle folder (absolute) or installed model package whose weights training starts from. */
  initFrom?: string;
  /** Weight of each region's Dice loss (absent: equal, the seed). */
  regionWeights?: number[];
}

/** The steps, in order; each is done once and recorded. */
export const PIPELINE_STEPS = ['convert', 'train', 'export', 'tune', 'validation', 'test', 'report'] as const;
export type PipelineStep = (typeof PIPELINE_STEPS)[number];

interface PipelineState {
  format: 'brats-pipeline';
  version: 1;
  settings: PipelineSettings;
  /** The command line that started the run. */
  command: string;
  steps: Partial<Record<PipelineStep, { finishedAt: string; seconds: number }>>;
}

export const PIPELINE_FILE = 'pipeline.json';

interface PipelineFlags {
  out: string;
  target: string;
  crop: string;
  normalize: string;
  validationCases?: string;
  testCases?: string;
  splitSeed: string;
  filters: string;
  epochs: string;
  batchSize: string;
  lr: string;
  lrSchedule: string;
  decayStart?: string;
  tumourFraction: string;
  stepsPerEpoch: string;
  monitor: string;
  seed: string;
  engine: string;
  initFrom?: string;
  regionWeights?: string;
  resume?: boolean;
}

/**
 * Settings a resume may change, because training continues from its checkpoint: more epochs, or a decay of the
 * learning rate that starts after the epochs already run (the trainer refuses a schedule that would rewrite one).
 * Changing one redoes every step from training on.
 */
const EXTENDING_FLAGS = new Set(['epochs', 'lrSchedule', 'decayStart']);

/** Option name (commander's camel case) → the setting it fixes, for the resume check. */
const SETTING_FLAGS: Readonly<Record<string, keyof PipelineSettings>> = {
  target: 'target',
  crop: 'crop',
  normalize: 'normalize',
  validationCases: 'validationCases',
  testCases: 'testCases',
  splitSeed: 'splitSeed',
  filters: 'filters',
  epochs: 'epochs',
  batchSize: 'batchSize',
  lr: 'learningRate',
  lrSchedule: 'lrSchedule',
  decayStart: 'decayStart',
  tumourFraction: 'tumourFraction',
  stepsPerEpoch: 'stepsPerEpoch',
  monitor: 'monitor',
  seed: 'seed',
  engine: 'engine',
  initFrom: 'initFrom',
  regionWeights: 'regionWeights',
};

function scheduleFrom(flags: PipelineFlags): Pick<PipelineSettings, 'lrSchedule' | 'decayStart'> {
  const kind = parseChoice('--lr-schedule', flags.lrSchedule, ['constant', 'cosine'] as const);
  if (kind === 'constant') {
    if (flags.decayStart !== undefined) throw new UsageError('--decay-start goes with --lr-schedule cosine');
    return {};
  }
  return { lrSchedule: kind, decayStart: flags.decayStart === undefined ? 0 : parseInteger('--decay-start', flags.decayStart, 0, 100_000) };
}

/** The trainer's schedule of a run's settings. */
function scheduleOf(settings: PipelineSettings): LearningRateSchedule {
  return settings.lrSchedule === 'cosine' ? { kind: 'cosine', decayStart: settings.decayStart ?? 0 } : { kind: 'constant' };
}

function settingsFrom(dataset: string, flags: PipelineFlags): PipelineSettings {
  if ((flags.validationCases === undefined) !== (flags.testCases === undefined)) {
    throw new UsageError('--validation-cases and --test-cases go together (or neither: the split is drawn with --split-seed)');
  }
  const target = parseChoice('--target', flags.target, ['wt', 'regions'] as const);
  const regionWeights = flags.regionWeights === undefined ? undefined : parseWeights('--region-weights', flags.regionWeights);
  const regionCount = target === 'wt' ? 1 : 3;
  const normalize = parseChoice('--normalize', flags.normalize, ['block', 'nonzero'] as const);
  if (regionWeights !== undefined && regionWeights.length !== regionCount) {
    throw new UsageError(`--region-weights: --target ${target} trains ${regionCount === 1 ? '1 region (WT)' : '3 regions (WT,TC,ET)'}, got ${regionWeights.length} weights`);
  }
  return {
    dataset: path.resolve(dataset),
    target,
    crop: parseInteger('--crop', flags.crop, 16, 1024),
    ...(normalize === 'block' ? {} : { normalize }),
    validationCases: flags.validationCases === undefined ? null : parseCaseIds('--validation-cases', flags.validationCases),
    testCases: flags.testCases === undefined ? null : parseCaseIds('--test-cases', flags.testCases),
    splitSeed: parseInteger('--split-seed', flags.splitSeed, 0, 0xffffffff),
    filters: parseInteger('--filters', flags.filters, 1, 256),
    epochs: parseInteger('--epochs', flags.epochs, 1, 100_000),
    batchSize: parseInteger('--batch-size', flags.batchSize, 1, 4096),
    learningRate: parsePositiveNumber('--lr', flags.lr),
    ...scheduleFrom(flags),
    tumourFraction: parseFraction('--tumour-fraction', flags.tumourFraction),
    stepsPerEpoch: parseInteger('--steps-per-epoch', flags.stepsPerEpoch, 1, 1_000_000),
    monitor: parseChoice('--monitor', flags.monitor, ['loss', 'dice'] as const),
    seed: parseInteger('--seed', flags.seed, 0, 0xffffffff),
    engine: parseChoice('--engine', flags.engine, ENGINE_CHOICES),
    ...(regionWeights === undefined ? {} : { regionWeights }),
    ...(flags.initFrom === undefined ? {} : { initFrom: existsSync(flags.initFrom) ? path.resolve(flags.initFrom) : flags.initFrom }),
  };
}

/** Where each output of a run lives under `--out`. */
export function pipelinePaths(out: string): { state: string; data: string; bundle: string; validation: string; test: string; report: string } {
  return {
    state: path.join(out, PIPELINE_FILE),
    data: path.join(out, 'slices.h5'),
    bundle: path.join(out, 'model'),
    validation: path.join(out, 'validation'),
    test: path.join(out, 'test'),
    report: path.join(out, 'report.html'),
  };
}

/** The command line that reproduces a run from its settings. */
export function pipelineCommand(settings: PipelineSettings, out: string): string {
  const parts = ['brats pipeline', settings.dataset, '--out', out, '--target', settings.target, '--crop', String(settings.crop)];
  if (settings.normalize !== undefined) parts.push('--normalize', settings.normalize);
  if (settings.validationCases !== null) parts.push('--validation-cases', settings.validationCases.join(','));
  if (settings.testCases !== null) parts.push('--test-cases', settings.testCases.join(','));
  if (settings.validationCases === null || settings.testCases === null) parts.push('--split-seed', String(settings.splitSeed));
  parts.push(
    '--filters', String(settings.filters), '--epochs', String(settings.epochs), '--batch-size', String(settings.batchSize), '--lr', String(settings.learningRate),
    ...(settings.lrSchedule === 'cosine' ? ['--lr-schedule', 'cosine', '--decay-start', String(settings.decayStart ?? 0)] : []),
    '--tumour-fraction', String(settings.tumourFraction), '--steps-per-epoch', String(settings.stepsPerEpoch), '--monitor', settings.monitor, '--seed', String(settings.seed),
  );
  if (settings.regionWeights !== undefined) parts.push('--region-weights', settings.regionWeights.join(','));
  if (settings.initFrom !== undefined) parts.push('--init-from', settings.initFrom);
  return parts.join(' ');
}

/** What the report says of a run that did not start from the seed's initialisation or loss: its start and its weights. */
function trainingFacts(training: TrainingRecord | undefined): ReportBlock[] {
  const facts: string[] = [];
  if (training?.initialWeights !== undefined) facts.push(`Fine-tuned: training started from ${describeInitialWeights(training.initialWeights)}.`);
  const weights = training?.regionWeights;
  if (weights !== undefined) facts.push(`Dice loss weights per region: ${Object.entries(weights).map(([region, weight]) => `${region} ${weight}`).join(', ')}.`);
  return facts.length === 0 ? [] : [{ kind: 'paragraph', text: facts.join(' ') }];
}

/** The learning rate of each epoch a run's training log records (none before training started). */
async function readEpochRates(bundle: string): Promise<EpochRate[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(bundle, TRAINING_LOG_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text.split('\n').filter((line) => line.trim().length > 0).map((line) => JSON.parse(line) as EpochRate);
}

/** Reads a run's state; undefined when there is none. @throws {UsageError} for a file that is not a pipeline state. */
async function readState(file: string): Promise<PipelineState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let state: PipelineState;
  try {
    state = JSON.parse(text) as PipelineState;
  } catch {
    throw new UsageError(`${file}: is not JSON; it is no pipeline state (remove it, or choose another --out)`);
  }
  if (state.format !== 'brats-pipeline' || state.version !== 1) throw new UsageError(`${file}: is no brats pipeline state of version 1`);
  return state;
}

/**
 * `brats pipeline DATASET --out DIR`: the seed's one command on real data. Converts the labelled cases to HDF5 (split
 * by case), trains the U-Net, exports ONNX (and the OpenVINO IR where openvino-node loads), chooses the
 * post-processing on the validation cases, scores the validation cases and then, once, the test cases (BraTS
 * convention), and writes the report. Every step is recorded in `DIR/pipeline.json`; `--resume` continues a run
 * where it stopped (training from its last completed epoch) with the settings it started with.
 */
export function registerPipelineCommand(program: Command, context: CliContext): void {
  program
    .command('pipeline')
    .description('raw labelled scans to a scored model in one resumable command: convert, train, export, tune, evaluate, report')
    .argument('<dataset>', 'labelled dataset folder (Decathlon, BraTS 2017-2021 or BraTS 2023+ layout; case folders are found up to three levels down)')
    .requiredOption('--out <dir>', 'folder of the run: pipeline.json, slices.h5, model/, validation/, test/, report.html')
    .option('--target <target>', 'wt: whole tumour; regions: WT, TC and ET (nested, three sigmoid outputs)', 'regions')
    .option('--crop <n>', 'centre crop of each slice and of k (the seed: 144)', '144')
    .option('--normalize <mode>', "each scan's channels: block, z-score over the cropped block (the seed); nonzero, over the non-zero (brain) voxels", 'block')
    .option('--validation-cases <ids>', 'the validation cases by id (default: drawn with --split-seed)')
    .option('--test-cases <ids>', 'the test cases by id, scored once at the end (default: drawn with --split-seed)')
    .option('--split-seed <n>', "seed of the drawn split (the seed's 0.85/0.075/0.075 by case)", '816')
    .option('--filters <n>', 'filters of the first U-Net level (with --init-from: the model\'s)', '16')
    .option('--epochs <n>', 'training epochs', '60')
    .option('--batch-size <n>', 'slices per batch', '16')
    .option('--lr <x>', 'Adam learning rate', '5e-4')
    .option('--lr-schedule <kind>', 'constant, or cosine: the rate held to --decay-start, then annealed along a half cosine to 0 at the last epoch', 'constant')
    .option('--decay-start <epoch>', 'with --lr-schedule cosine: the last epoch at the full rate (default 0)')
    .option('--tumour-fraction <f>', 'fraction of each batch drawn from slices with tumour', '0.5')
    .option('--steps-per-epoch <n>', 'batches per epoch', '50')
    .option('--monitor <what>', 'keep the model with the lowest validation loss or the highest validation Dice', 'dice')
    .option('--seed <s>', 'seed of initialisation, data order, augmentation and dropout', '816')
    .option('--engine <name>', `engine for tuning and scoring: ${ENGINE_CHOICES.join(', ')}`, 'auto')
    .option('--region-weights <w>', "weight of each region's Dice loss, comma-separated (WT,TC,ET with --target regions; default equal)")
    .option('--init-from <model>', 'fine-tune: training starts from the weights of this model bundle folder or installed model package and builds its network (its inputs must be those of the conversion)')
    .option('--resume', 'continue the run in --out where it stopped, with the settings it started with (or more --epochs and a later decay: training continues and the steps after it run again)')
    .action(async (dataset: string, flags: PipelineFlags, command: Command) => {
      const started = performance.now();
      const out = path.resolve(flags.out);
      const paths = pipelinePaths(out);
      const given = settingsFrom(dataset, flags);
      // Checked before the conversion's minutes, so a wrong name fails at once; without --filters, fine-tuning builds
      // the source's network (the trainer takes its other architecture settings too).
      if (given.initFrom !== undefined) {
        const source = await readModelManifest(await resolveModelArgument(given.initFrom, '--init-from'));
        if (command.getOptionValueSource('filters') !== 'cli') given.filters = source.model.filters;
      }
      let state = await readState(paths.state);
      if (state !== undefined && flags.resume !== true) {
        throw new UsageError(`--out ${flags.out}: holds a pipeline run (${PIPELINE_FILE}); add --resume to continue it, or choose another folder`);
      }
      if (state === undefined) {
        if (existsSync(out) && (await fs.readdir(out)).length > 0) {
          throw new UsageError(
            flags.resume === true ? `--out ${flags.out}: has no ${PIPELINE_FILE} to resume, and is not empty` : `--out ${flags.out}: exists and is not empty; choose another folder`,
          );
        }
        state = { format: 'brats-pipeline', version: 1, settings: given, command: pipelineCommand(given, out), steps: {} };
      } else {
        // A resume runs with the recorded settings: a setting given again must say the same, except the ones that
        // extend training (EXTENDING_FLAGS), which continue it from its checkpoint and redo the steps after it.
        const fromCli = (flag: string): boolean => command.getOptionValueSource(flag) === 'cli';
        for (const [flag, key] of Object.entries(SETTING_FLAGS)) {
          if (!fromCli(flag) || EXTENDING_FLAGS.has(flag)) continue;
          if (JSON.stringify(given[key]) !== JSON.stringify(state.settings[key])) {
            const recorded = state.settings[key];
            throw new UsageError(
              `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}: the run in ${flags.out} was started with ${recorded === undefined ? 'its default' : JSON.stringify(recorded)}; a resume keeps its settings`,
            );
          }
        }
        if (given.dataset !== state.settings.dataset) throw new UsageError(`${dataset}: the run in ${flags.out} was started on ${state.settings.dataset}`);
        const epochs = fromCli('epochs') ? given.epochs : state.settings.epochs;
        const recordedSchedule = { lrSchedule: state.settings.lrSchedule, decayStart: state.settings.decayStart };
        const schedule = fromCli('lrSchedule') || fromCli('decayStart') ? { lrSchedule: given.lrSchedule, decayStart: given.decayStart } : recordedSchedule;
        if (epochs !== state.settings.epochs || JSON.stringify(schedule) !== JSON.stringify(recordedSchedule)) {
          if (epochs < state.settings.epochs) throw new UsageError(`--epochs ${epochs}: the run in ${flags.out} was started with ${state.settings.epochs}; a resume can add epochs, not remove them`);
          const { lrSchedule: _schedule, decayStart: _start, ...kept } = state.settings;
          const extended: PipelineSettings = { ...kept, epochs, ...(schedule.lrSchedule === undefined ? {} : { lrSchedule: schedule.lrSchedule, decayStart: schedule.decayStart! }) };
          // Refused here, before the state changes, so a refused extension leaves the run as it was.
          const ran = await readEpochRates(paths.bundle);
          const conflict = (await loadTrainingPackage('pipeline')).scheduleConflict(ran, extended.learningRate, scheduleOf(extended), extended.epochs);
          if (conflict !== undefined) {
            throw new UsageError(
              `--lr-schedule: epoch ${conflict.epoch} of the run in ${flags.out} ran at learning rate ${conflict.learningRate ?? extended.learningRate}, which this schedule would change; start the decay after epoch ${ran.length}`,
            );
          }
          state.settings = extended;
          state.command = pipelineCommand(state.settings, out);
          for (const name of PIPELINE_STEPS.slice(PIPELINE_STEPS.indexOf('train'))) delete state.steps[name];
          printLine(context, `extending the run: ${state.command}`);
        }
      }
      const settings = state.settings;
      await fs.mkdir(out, { recursive: true });
      const save = (): Promise<void> => writeFileAtomic(paths.state, `${JSON.stringify(state, null, 2)}\n`);
      await save();
      const regions: RegionName[] = settings.target === 'wt' ? ['WT'] : ['WT', 'TC', 'ET'];
      const { exportBundleToOnnx, trainUnet } = await loadTrainingPackage('pipeline');

      const step = async (name: PipelineStep, run: () => Promise<string | undefined>): Promise<void> => {
        const index = PIPELINE_STEPS.indexOf(name) + 1;
        const done = state.steps[name];
        if (done !== undefined) {
          printLine(context, `${index}/${PIPELINE_STEPS.length} ${name}: done (${done.finishedAt})`);
          return;
        }
        const stepStarted = performance.now();
        printLine(context, `${index}/${PIPELINE_STEPS.length} ${name}`);
        const summary = await run();
        state.steps[name] = { finishedAt: new Date().toISOString(), seconds: (performance.now() - stepStarted) / 1000 };
        await save();
        if (summary !== undefined) printLine(context, `    ${summary}`);
      };

      await step('convert', async () => {
        const options: ConvertDatasetOptions = { crop: settings.crop, target: settings.target, seed: settings.splitSeed, normalize: settings.normalize ?? 'block' };
        if (settings.validationCases !== null && settings.testCases !== null) options.namedSplits = { validation: settings.validationCases, testing: settings.testCases };
        const cases = (await openDataset(settings.dataset)).cases.length;
        const progress = createProgress(context, '    convert', cases, 'cases');
        const summary = await convertDataset(settings.dataset, paths.data, { ...options, onCase: (done) => progress.update(done.done, done.caseId) });
        progress.finish();
        return `${summary.cases} cases: train ${summary.splits.train.length}, validation ${summary.splits.validation.join(', ')}, test ${summary.splits.testing.join(', ')}`;
      });

      await step('train', async () => {
        const options: TrainOptions = {
          dataFile: paths.data,
          bundle: paths.bundle,
          epochs: settings.epochs,
          batchSize: settings.batchSize,
          learningRate: settings.learningRate,
          learningRateSchedule: scheduleOf(settings),
          filters: settings.filters,
          tumourFraction: settings.tumourFraction,
          stepsPerEpoch: settings.stepsPerEpoch,
          monitor: settings.monitor,
          seed: settings.seed,
          ...(settings.regionWeights === undefined ? {} : { regionWeights: settings.regionWeights }),
          ...(settings.initFrom === undefined ? {} : { initialWeights: await resolveModelArgument(settings.initFrom, '--init-from') }),
          // A run killed mid-training continues from its last completed epoch.
          resume: true,
        };
        let progress: ProgressReporter | undefined;
        const eta = trainingEta();
        const result = await trainUnet(options, {
          onBackend: (selection) => printLine(context, `    backend: ${selection.name} (${selection.reason})`),
          onThreads: (threads, why) => printLine(context, `    threads: ${threads} (${why})`),
          onResume: (done) => printLine(context, `    resuming after epoch ${done}`),
          onInitialWeights: (record) => printLine(context, `    initial weights: ${describeInitialWeights(record)}`),
          onWarning: (line) => context.stderr.write(`warning: ${line}\n`),
          onEpochStart: (epoch, epochs, steps) => (progress = createProgress(context, `    epoch ${epoch}/${epochs}`, steps, 'batches')),
          onStep: (done, _steps, loss) => progress?.update(done, `loss ${loss.toFixed(4)}`),
          onEpochEnd: (record, improved) =>
            progress?.finish(
              `loss ${record.loss.toFixed(4)}, validation Dice ${record.validationDice.map((value) => value.toFixed(3)).join('/')}${improved ? ' (best, saved)' : ''}; ` +
                eta(record.epoch, settings.epochs, record.seconds),
            ),
        });
        return `best epoch ${result.manifest.training?.bestEpoch ?? '?'} of ${settings.epochs}; ${((result.manifest.training?.durationSeconds ?? 0) / 3600).toFixed(2)} h of training`;
      });

      await step('export', async () => {
        const onnx = await exportBundleToOnnx(paths.bundle);
        let ir = 'OpenVINO IR: not written';
        try {
          const written = await convertBundleToIr(paths.bundle, ['FP32']);
          ir = `OpenVINO IR: ${written.map((entry) => entry.xml).join(', ')}`;
        } catch (error) {
          if (!(error instanceof EngineUnavailableError)) throw error;
          ir = `OpenVINO IR: skipped (${error.reason})`;
        }
        return `ONNX: ${path.relative(out, onnx.path)} (${(onnx.bytes / 1e6).toFixed(1)} MB); ${ir}`;
      });

      const manifestNow = async () => readModelManifest(paths.bundle);
      await step('tune', async () => {
        const manifest = await manifestNow();
        const ids = manifest.training?.split.validation ?? [];
        if (ids.length === 0) throw new DatasetError(settings.dataset, 'the run has no validation cases to choose the post-processing on (too few cases for the split?)');
        const refs = (await openDataset(settings.dataset)).cases.filter((ref) => ids.includes(ref.id));
        const engine = await openEngine(paths.bundle, settings.engine);
        const progress = createProgress(context, '    tune', refs.length, 'cases');
        try {
          const inference = await tuneInference(refs, manifest, engine.runner, { bundle: paths.bundle, data: settings.dataset, onCase: (done, _total, id) => progress.update(done, id) });
          progress.finish();
          await writeModelManifest(paths.bundle, { ...manifest, inference });
          return `${describeInference(inference)} (${inference.selection.metric} ${Math.max(...inference.selection.candidates.map((c) => c.mean)).toFixed(4)} at 0.5)`;
        } finally {
          await engine.runner.dispose();
        }
      });

      /** Predicts one split's cases with the bundle's settings and scores them with the BraTS rules. */
      const score = async (split: 'validation' | 'testing', folder: string, file: string): Promise<string> => {
        const manifest = await manifestNow();
        const ids = manifest.training?.split[split] ?? [];
        if (ids.length === 0) throw new DatasetError(settings.dataset, `the run has no ${split} cases (too few cases for the split?)`);
        await fs.rm(folder, { recursive: true, force: true });
        const run = await runPrediction(context, {
          model: paths.bundle,
          inputs: [settings.dataset],
          out: folder,
          engine: settings.engine,
          probabilities: false,
          figures: split === 'testing',
          title: `brats pipeline: ${split === 'testing' ? 'test' : 'validation'} cases`,
          onlyCases: ids,
        });
        if (run.failures.length > 0) throw new DatasetError(settings.dataset, `${run.failures.length} ${split} case(s) failed: ${run.failures.join('; ')}`);
        const pairing = await pairPredictionsWithReferences(folder, settings.dataset, { caseIds: ids, ...(settings.target === 'wt' ? { predictionMapping: getLabelMapping('wt') } : {}) });
        // Scored as the challenge scores: the legacy whole-region figures and BraTS 2023's lesion-wise ones (BraTS-GLI).
        const result = await evaluateCases(pairing.pairs, { convention: 'brats', regions, lesionWise: DEFAULT_LESION_WISE });
        const problems = [...result.problems, ...pairing.unmatched];
        if (problems.length > 0) throw new DatasetError(settings.dataset, `scoring the ${split} cases: ${problems.map((problem) => problem.message).join('; ')}`);
        await writeFileAtomic(path.join(paths.bundle, file), `${JSON.stringify(evaluationToJson(result.cases, result.summary, problems), null, 2)}\n`);
        return (
          regions
            .map((region) => {
              const stats = result.summary.regions[region]!;
              return `${region} Dice ${stats.dice.mean.toFixed(4)}, HD95 ${stats.hd95.mean.toFixed(2)} mm, lesion-wise Dice ${stats.lesionWiseDice!.mean.toFixed(4)}`;
            })
            .join('; ') + ` (${ids.length} cases, ${file})`
        );
      };
      await step('validation', () => score('validation', paths.validation, 'validation-evaluation.json'));
      // The test cases are scored once, after every choice was made on validation.
      await step('test', () => score('testing', paths.test, 'test-evaluation.json'));

      await step('report', async () => {
        const manifest = await manifestNow();
        const read = async (file: string): Promise<EvaluationJson> => JSON.parse(await fs.readFile(path.join(paths.bundle, file), 'utf8')) as EvaluationJson;
        const blocks: ReportBlock[] = [
          { kind: 'paragraph', text: `Dataset ${settings.dataset}; target ${settings.target} (${regions.join(', ')}); command: ${state.command}` },
          { kind: 'heading', text: 'Training' },
          { kind: 'figure', src: path.relative(out, path.join(paths.bundle, TRAINING_CURVES_FILE)), caption: `loss and validation Dice per epoch; best epoch ${manifest.training?.bestEpoch ?? '?'}` },
          ...trainingFacts(manifest.training),
          { kind: 'heading', text: 'Validation cases (post-processing chosen here)' },
          evaluationFileTable(await read('validation-evaluation.json'), regions),
          { kind: 'heading', text: 'Test cases (scored once, at the end)' },
          evaluationFileTable(await read('test-evaluation.json'), regions),
          { kind: 'paragraph', text: `Per-case figures and overlays of the test cases: ${path.relative(out, path.join(paths.test, 'report.html'))}` },
        ];
        await writeReport(paths.report, 'brats pipeline', blocks);
        return `report: ${paths.report}`;
      });
      printLine(context, `pipeline done in ${((performance.now() - started) / 60000).toFixed(1)} min this run; model: ${paths.bundle}; report: ${paths.report}`);
    });
}
