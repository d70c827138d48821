/**
 * The training loop: batches streamed from the HDF5 slice store, augmented on the fly, Adam on the seed's
 * combined loss, validation each epoch, the best model kept by validation loss, a checkpoint after every
 * epoch so `resume` continues exactly, a JSONL log, a training-curve PNG and the model bundle.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  createRandom,
  deriveCaseSeed,
  isOrientation,
  openSliceStore,
  renderLineCharts,
  resolvePreprocessing,
  writeFileAtomic,
  writeModelManifest,
  writePng,
  type ChannelName,
  type InitialWeightsRecord,
  type ModelManifest,
  type PreprocessSettings,
  type RegionName,
  type SliceStoreReader,
} from '@brats/io';
import { initBackend, type BackendChoice, type BackendSelection } from '../backend.js';
import { TrainingError } from '../errors.js';
import { checkChannelWeights, computeCombinedLoss, computeSoftDice, type CombinedLossOptions } from '../losses.js';
import { buildUnet, UNET_DEFAULTS, type UpsamplingMode } from '../model.js';
import { locateGradientWorker, startDataParallel, type DataParallelTrainer } from '../parallel/data-parallel.js';
import { createUnetManifest } from '../bundle.js';
import { saveLayersModel } from '../model-files.js';
import { SpatialDropout2D } from '../spatial-dropout.js';
import { augmentBatch, DEFAULT_AUGMENTATION, type AugmentOptions } from './augment.js';
import { EPOCH_BASE, loadCheckpoint, saveCheckpoint, type EpochRecord, type TrainingState, type TrainMonitor } from './checkpoint.js';
import { applyInitialWeights, readInitialWeights, type InitialWeights } from './initial-weights.js';
import { recordedDataFile } from './provenance.js';
import { planEpoch } from './sampler.js';
import { CONSTANT_SCHEDULE, ScheduledAdam, describeSchedule, learningRateAt, scheduleConflict, type LearningRateSchedule } from './schedule.js';

/** Re-exported for the trainer's callers; defined with the package's other errors. */
export { TrainingError };

/** Options of {@link trainUnet}; defaults are the seed's recipe. */
export interface TrainOptions {
  /** HDF5 slice store written by `brats convert`; the manifest records it relative to the bundle (see recordedDataFile). */
  dataFile: string;
  /** Model bundle folder to write. */
  bundle: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /**
   * How the learning rate moves (default constant, the seed). Not part of the run's fingerprint: a resume may change
   * it, and `epochs`, as long as every completed epoch keeps the rate it ran with (e.g. extending a constant run
   * with a decay that starts after its last epoch).
   */
  learningRateSchedule?: LearningRateSchedule;
  /** Architecture (defaults: the seed's; with `initialWeights`, the source model's). */
  filters?: number;
  depth?: number;
  upsampling?: UpsamplingMode;
  batchNorm?: boolean;
  dropout?: number;
  /** Fraction of each batch drawn from tumour slices; unset = plain shuffle (seed). */
  tumourFraction?: number;
  /** Batches per epoch when sampling by tumour fraction. */
  stepsPerEpoch?: number;
  /** Augmentation options, or false to switch it off (default on). */
  augment?: boolean | AugmentOptions;
  /** Stop after this many epochs without a better monitored figure (see `monitor`; default: never). */
  patience?: number;
  seed?: number;
  backend?: BackendChoice;
  /** Continue from the bundle's last checkpoint. */
  resume?: boolean;
  /** Validate on at most this many validation slices (evenly spaced), to bound epoch time. */
  maxValidationSlices?: number;
  /** Probability threshold for hard Dice and for the manifest (default 0.5). */
  threshold?: number;
  /**
   * Gradient worker threads besides the main thread (data-parallel steps, see startDataParallel), or `auto`
   * (default): one on the wasm and cpu backends when the machine has two or more cores and the worker entry is
   * built, none on tensorflow (which uses every core itself). Part of the run's options: a resume must use the
   * same count, because each share's Dice term covers its own slices.
   */
  workers?: number | 'auto';
  /**
   * What picks the kept model and drives early stopping: `loss` (default, the seed: lowest validation loss) or
   * `dice` (highest mean validation Dice over the regions). It only selects, so a resume may change it: the kept
   * model stays until a later epoch beats its figure under the new monitor.
   */
  monitor?: TrainMonitor;
  /**
   * A model bundle folder whose weights the run starts from (fine-tuning) instead of a random initialisation: the
   * same architecture, fed the same channels, normalisation and crop placement, predicting the same regions. The
   * optimizer starts fresh. Part of the run's fingerprint (by the weights' SHA-256): a resume must name the same.
   */
  initialWeights?: string;
  /**
   * Weight of each region's Dice loss, in the order of the store's regions (WT; or WT, TC, ET): the Dice term is
   * Σ w_k L_k / Σ w_k (default equal weights, the seed). The cross-entropy term is not weighted. Part of the
   * run's fingerprint.
   */
  regionWeights?: readonly number[];
}

export type { TrainMonitor };

/** Progress callbacks of {@link trainUnet}. Epochs are numbered from 1 here as in every file the trainer writes. */
export interface TrainCallbacks {
  onBackend?: (selection: BackendSelection) => void;
  /** Epoch `epoch` (1 to `epochs`) starts with `steps` batches. */
  onEpochStart?: (epoch: number, epochs: number, steps: number) => void;
  /** Batch `step` (1 to `steps`) is done. */
  onStep?: (step: number, steps: number, loss: number) => void;
  onEpochEnd?: (record: EpochRecord, improved: boolean) => void;
  /** Resumed from a checkpoint after `epochsCompleted` epochs (the last completed epoch's number). */
  onResume?: (epochsCompleted: number) => void;
  /** A resume changed the monitor; epoch `keptEpoch` (from 1) stays the kept model until a later epoch beats it. */
  onMonitorChange?: (previous: TrainMonitor, next: TrainMonitor, keptEpoch: number) => void;
  /** The number of threads that compute each step's gradients (1 = the main thread only) and why. */
  onThreads?: (threads: number, reason: string) => void;
  /** A new run starts from another bundle's weights (see `initialWeights`), recorded as in the manifest. */
  onInitialWeights?: (record: InitialWeightsRecord) => void;
  /** Something the user must know that does not stop the run (e.g. no validation cases), one line. */
  onWarning?: (message: string) => void;
}

/** What {@link trainUnet} returns. */
export interface TrainResult {
  manifest: ModelManifest;
  history: readonly EpochRecord[];
  backend: BackendSelection;
  stoppedEarly: boolean;
}

/** File names written into the bundle besides the model. */
export const TRAINING_LOG_FILE = 'metrics.jsonl';
export const TRAINING_CURVES_FILE = 'training-curves.png';

function settingsFromStore(store: SliceStoreReader, height: number, width: number): PreprocessSettings {
  const attributes = store.attributes();
  const crop = attributes['crop_size'];
  const channels = attributes['channels'];
  return resolvePreprocessing({
    crop: Array.isArray(crop) && crop.length === 3 ? (crop as [number, number, number]) : [height, width, height],
    cropMode: attributes['crop_mode'] === 'brain' ? 'brain' : 'center',
    normalize: attributes['normalize'] === 'nonzero' ? 'nonzero' : 'block',
    target: attributes['target'] === 'regions' ? 'regions' : 'wt',
    ...(Array.isArray(channels) ? { channels: channels as ChannelName[] } : {}),
  });
}

/** The voxel size the store's cases share (`brats convert` records it), undefined where it records none. */
function spacingFromStore(store: SliceStoreReader): [number, number, number] | undefined {
  const spacing = store.attributes()['spacing'];
  if (!Array.isArray(spacing) || spacing.length !== 3) return undefined;
  const values = spacing.map(Number);
  return values.every((value) => Number.isFinite(value) && value > 0) ? (values as [number, number, number]) : undefined;
}

function evenlySpaced(count: number, limit: number | undefined): number[] {
  if (limit === undefined || limit >= count) return Array.from({ length: count }, (_, i) => i);
  return Array.from({ length: limit }, (_, i) => Math.floor(((i + 0.5) * count) / limit));
}

/** Sets the draw counter of every SpatialDropout2D layer so a resumed run draws the masks a straight run would. */
function syncDropoutDraws(model: tf.LayersModel, step: number): void {
  for (const layer of model.layers) if (layer instanceof SpatialDropout2D) layer.setDrawCount(step);
}

async function validate(
  model: tf.LayersModel,
  store: SliceStoreReader,
  indices: readonly number[],
  batchSize: number,
  threshold: number,
  lossOptions: CombinedLossOptions,
): Promise<{ loss: number; softDice: number[]; dice: number[] }> {
  const outputChannels = store.info('validation').maskShape[3];
  let lossSum = 0;
  const softDiceSum = new Float64Array(outputChannels);
  const intersection = new Float64Array(outputChannels);
  const totals = new Float64Array(outputChannels);
  for (let start = 0; start < indices.length; start += batchSize) {
    const chosen = indices.slice(start, start + batchSize);
    const batch = store.readBatch('validation', chosen);
    const [lossValue, softDice, sums] = tf.tidy(() => {
      const x = tf.tensor4d(batch.images, batch.shape as [number, number, number, number]);
      const y = tf.tensor4d(Float32Array.from(batch.masks), batch.maskShape as [number, number, number, number]);
      const prediction = model.predict(x) as tf.Tensor4D;
      const loss = computeCombinedLoss(y, prediction, lossOptions);
      const dice = tf.sum(computeSoftDice(y, prediction), 0);
      const binary = tf.cast(tf.greater(prediction, threshold), 'float32');
      const stacked = tf.stack([tf.sum(tf.mul(binary, y), [0, 1, 2]), tf.add(tf.sum(binary, [0, 1, 2]), tf.sum(y, [0, 1, 2]))]);
      return [loss.dataSync()[0]!, Array.from(dice.dataSync()), Array.from(stacked.dataSync())];
    });
    lossSum += lossValue * chosen.length;
    for (let k = 0; k < outputChannels; k++) {
      softDiceSum[k]! += softDice[k]!;
      intersection[k]! += sums[k]!;
      totals[k]! += sums[outputChannels + k]!;
    }
  }
  const n = indices.length;
  return {
    loss: lossSum / n,
    softDice: Array.from(softDiceSum, (sum) => sum / n),
    // Both empty: a perfect score, as the per-case convention of the BraTS challenge.
    dice: Array.from(intersection, (value, k) => (totals[k]! > 0 ? (2 * value) / totals[k]! : 1)),
  };
}

function meanOf(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function fingerprintOf(values: Record<string, unknown>): string {
  return JSON.stringify(values);
}

/** Resolves the `workers` option to a worker count and the reason shown to the user. */
function resolveWorkers(choice: number | 'auto', backend: BackendSelection, batchSize: number): { workers: number; reason: string } {
  if (choice !== 'auto') {
    if (!Number.isInteger(choice) || choice < 0) throw new TrainingError(`workers must be 'auto' or a whole number >= 0, found ${choice}`);
    if (choice > 0 && backend.name === 'tensorflow') {
      throw new TrainingError('gradient workers need the wasm or cpu backend; the tensorflow backend already uses every core');
    }
    if (choice >= batchSize) throw new TrainingError(`workers (${choice}) must be below the batch size (${batchSize}): each thread needs a share of the batch`);
    return { workers: choice, reason: 'as asked' };
  }
  if (backend.name === 'tensorflow') return { workers: 0, reason: 'the tensorflow backend uses every core itself' };
  const cores = os.availableParallelism();
  if (cores < 2) return { workers: 0, reason: 'one core' };
  if (batchSize < 2) return { workers: 0, reason: 'a batch of one slice cannot be shared' };
  if (locateGradientWorker() === undefined) return { workers: 0, reason: 'the gradient worker is not built (pnpm build)' };
  return { workers: 1, reason: `${backend.name} runs one thread per process; a worker thread takes half of each batch` };
}

/**
 * Trains the U-Net on an HDF5 slice store and writes a model bundle: the best model by validation loss, or by
 * validation Dice with `monitor: 'dice'` (`model.json`, `weights.bin`), the manifest `brats-model.json`,
 * `metrics.jsonl`, `training-curves.png` and the last checkpoint. With `resume`, continues from the last
 * completed epoch with the same weights, optimizer state, data order and dropout draws. With `workers`, each
 * step's gradients are computed on worker threads too (see startDataParallel).
 * Without validation slices every epoch is kept (the last is the model), with a warning through `onWarning`.
 * @throws {TrainingError} when the store has no training slices, the bundle already holds a run
 * (without `resume`), `resume` finds a run with other options, `workers` cannot run (tensorflow backend, a
 * count not below the batch size), or `initialWeights` names a bundle without a readable model or of another
 * architecture, feed or regions, or `regionWeights` has not one weight >= 0 per region (not all 0).
 * @throws {BackendError} when a forced backend cannot load.
 */
export async function trainUnet(options: TrainOptions, callbacks: TrainCallbacks = {}): Promise<TrainResult> {
  const epochs = options.epochs ?? 30;
  const batchSize = options.batchSize ?? 128;
  const learningRate = options.learningRate ?? 1e-4;
  const schedule = options.learningRateSchedule ?? CONSTANT_SCHEDULE;
  if (schedule.kind === 'cosine' && (!Number.isInteger(schedule.decayStart) || schedule.decayStart < 0 || schedule.decayStart >= epochs)) {
    throw new TrainingError(`the decay must start before the last epoch (${epochs}), found ${schedule.decayStart}`);
  }
  const seed = options.seed ?? 816;
  const threshold = options.threshold ?? 0.5;
  const augmentation = options.augment === false ? undefined : { ...DEFAULT_AUGMENTATION, ...(options.augment === true ? {} : options.augment) };
  const monitor = options.monitor ?? 'loss';
  const backend = await initBackend(options.backend ?? 'auto');
  callbacks.onBackend?.(backend);
  const { workers, reason: threadsReason } = resolveWorkers(options.workers ?? 'auto', backend, batchSize);

  const store = await openSliceStore(options.dataFile);
  try {
    if (!store.splits.includes('train') || store.info('train').slices === 0) {
      throw new TrainingError(`${options.dataFile}: has no training slices`);
    }
    // Without validation cases there is nothing to choose a model on: every epoch is kept, so the last one wins.
    const hasValidation = store.splits.includes('validation') && store.info('validation').slices > 0;
    if (!hasValidation) {
      callbacks.onWarning?.(
        `${options.dataFile}: has no validation slices; every epoch is kept (the last one is the model) and no validation figures are recorded. Convert with a --split that leaves validation cases to choose the model on them`,
      );
    }
    const train = store.info('train');
    const [, height, width, channels] = train.imageShape;
    const outputChannels = train.maskShape[3];
    const preprocessing = settingsFromStore(store, height, width);
    const spacing = spacingFromStore(store);
    const storeOrientation = store.attributes()['orientation'];
    const orientation = isOrientation(storeOrientation) ? storeOrientation : undefined;
    const regions: RegionName[] = outputChannels === 3 ? ['WT', 'TC', 'ET'] : ['WT'];
    if (options.regionWeights !== undefined) {
      try {
        checkChannelWeights('trainUnet', options.regionWeights, outputChannels);
      } catch {
        throw new TrainingError(
          `region weights ${options.regionWeights.join(',')}: ${options.dataFile} trains ${regions.join(', ')}; give one weight >= 0 per region, not all 0`,
        );
      }
    }
    const initial: InitialWeights | undefined =
      options.initialWeights === undefined ? undefined : await readInitialWeights(options.initialWeights, { preprocessing, regions, spacing, orientation });
    // Fine-tuning builds the source's network unless told otherwise (and a different one is then refused below).
    const defaults = initial?.architecture ?? UNET_DEFAULTS;
    const architecture = {
      inputShape: [height, width, channels] as [number, number, number],
      filters: options.filters ?? defaults.filters,
      depth: options.depth ?? defaults.depth,
      upsampling: options.upsampling ?? defaults.upsampling,
      batchNorm: options.batchNorm ?? defaults.batchNorm,
      dropout: options.dropout ?? defaults.dropout,
      outputChannels: outputChannels as 1 | 3,
    };
    const lossOptions: CombinedLossOptions = options.regionWeights === undefined ? {} : { channelWeights: options.regionWeights };
    const fingerprint = fingerprintOf({
      architecture,
      batchSize,
      learningRate,
      seed,
      tumourFraction: options.tumourFraction ?? null,
      stepsPerEpoch: options.stepsPerEpoch ?? null,
      augmentation: augmentation ?? null,
      data: path.basename(options.dataFile),
      // Single-thread runs keep the fingerprint they had before workers existed.
      ...(workers > 0 ? { shares: workers + 1 } : {}),
      // Runs from a random start keep the fingerprint they had before fine-tuning existed.
      ...(initial === undefined ? {} : { initialWeights: initial.record.weightsSha256 }),
      ...(options.regionWeights === undefined ? {} : { regionWeights: options.regionWeights }),
    });

    const optimizer = new ScheduledAdam(learningRate);
    let model: tf.LayersModel;
    let state: TrainingState;
    const resumed = await loadCheckpoint(options.bundle, optimizer);
    // A resume continues from the checkpoint; the source weights only served to check the fingerprint.
    if (resumed !== undefined && initial !== undefined) tf.dispose(initial.tensors);
    if (resumed !== undefined && options.resume !== true) {
      resumed.model.dispose();
      throw new TrainingError(`${options.bundle}: already holds a training run; pass --resume to continue it or choose another --out`);
    }
    if (resumed !== undefined) {
      if (resumed.state.fingerprint !== fingerprint) {
        resumed.model.dispose();
        throw new TrainingError(`${options.bundle}: the run there used other options; resume with the same options or choose another --out`);
      }
      // A resume may extend the run or change the schedule, but never the rate of an epoch already run.
      const rewritten = scheduleConflict(resumed.state.history, learningRate, schedule, epochs);
      if (rewritten !== undefined) {
        resumed.model.dispose();
        throw new TrainingError(
          `${options.bundle}: epoch ${rewritten.epoch} ran at learning rate ${rewritten.learningRate ?? learningRate}; the schedule asked for (${describeSchedule(schedule, epochs)}) would change it. Start the decay after epoch ${resumed.state.epochsCompleted}, or choose another --out`,
        );
      }
      model = resumed.model;
      state = resumed.state;
      callbacks.onResume?.(state.epochsCompleted);
      const previous = state.monitor ?? 'loss';
      const kept = state.history.find((record) => record.epoch === state.bestEpoch);
      if (previous !== monitor && kept !== undefined) {
        // The kept model's own figures become the ones to beat, and patience counts from its epoch.
        state.bestValidationLoss = kept.validationLoss;
        state.bestValidationDice = meanOf(kept.validationDice);
        state.epochsWithoutImprovement = state.epochsCompleted - kept.epoch;
        callbacks.onMonitorChange?.(previous, monitor, kept.epoch);
      }
      state.monitor = monitor;
    } else {
      model = buildUnet({ ...architecture, seed });
      if (initial !== undefined) {
        try {
          applyInitialWeights(model, initial);
          callbacks.onInitialWeights?.(initial.record);
        } catch (error) {
          model.dispose();
          throw error;
        }
      }
      state = {
        epochBase: EPOCH_BASE,
        epochsCompleted: 0,
        globalStep: 0,
        bestValidationLoss: Number.POSITIVE_INFINITY,
        bestValidationDice: Number.NEGATIVE_INFINITY,
        monitor,
        bestEpoch: 0,
        epochsWithoutImprovement: 0,
        history: [],
        elapsedSeconds: 0,
        fingerprint,
      };
    }
    const tumourSlices = options.tumourFraction === undefined ? undefined : store.tumourSlices('train');
    const validationIndices = hasValidation ? evenlySpaced(store.info('validation').slices, options.maxValidationSlices) : [];
    const splitIds = (split: 'train' | 'validation' | 'testing'): string[] =>
      store.splits.includes(split) ? (store.sliceIndex(split)?.caseIds.slice() ?? []) : [];

    await fs.mkdir(options.bundle, { recursive: true });
    const dataFile = await recordedDataFile(options.dataFile, options.bundle);
    const writeBundleFiles = async (): Promise<ModelManifest> => {
      const best = state.history.find((record) => record.epoch === state.bestEpoch);
      const manifest: ModelManifest = {
        ...createUnetManifest(model, { ...architecture, seed }, preprocessing, threshold),
        // The spacing of the slices it learnt: predict resamples scans at another spacing to it.
        ...(spacing === undefined ? {} : { spacing }),
        // The orientation of its slices (`brats convert` turns every case to it); a store without one holds BraTS's.
        ...(orientation === undefined ? {} : { orientation }),
        training: {
          backend: backend.name,
          dataFile,
          split: { seed: Number(store.attributes()['split_seed'] ?? seed), train: splitIds('train'), validation: splitIds('validation'), testing: splitIds('testing') },
          epochs: state.epochsCompleted,
          bestEpoch: state.bestEpoch,
          batchSize,
          learningRate,
          ...(schedule.kind === 'constant' ? {} : { learningRateSchedule: describeSchedule(schedule, epochs) }),
          seed,
          durationSeconds: state.elapsedSeconds,
          ...(best === undefined ? {} : { slicesPerSecond: best.slicesPerSecond }),
          ...(initial === undefined ? {} : { initialWeights: initial.record }),
          ...(options.regionWeights === undefined ? {} : { regionWeights: Object.fromEntries(regions.map((region, k) => [region, options.regionWeights![k]!])) }),
        },
      };
      if (best !== undefined && hasValidation) {
        manifest.validation = { loss: best.validationLoss };
        regions.forEach((region, k) => {
          manifest.validation![`${region}Dice`] = best.validationDice[k]!;
          manifest.validation![`${region}SoftDice`] = best.validationSoftDice[k]!;
        });
      }
      await writeModelManifest(options.bundle, manifest);
      const log = state.history.map((record) => JSON.stringify(record)).join('\n');
      await writeFileAtomic(path.join(options.bundle, TRAINING_LOG_FILE), log.length > 0 ? `${log}\n` : '');
      if (state.history.length > 0) {
        const x = state.history.map((record) => record.epoch);
        const lossSeries = [{ label: 'training', color: '#1f77b4', values: state.history.map((r) => r.loss) }];
        if (hasValidation) lossSeries.push({ label: 'validation', color: '#ff7f0e', values: state.history.map((r) => r.validationLoss) });
        const belowZero = lossSeries.some((series) => series.values.some((value) => value < 0));
        const lossChart = {
          title: 'Loss (0.9 Dice + 0.1 BCE)',
          xLabel: 'epoch',
          x,
          integerX: true,
          series: lossSeries,
          // The seed's Dice loss is -log of a smoothed Dice, (2I + 1) / (T + P + 1), which passes 1 on slices with
          // little or no tumour: a loss below 0 is that, not a bug.
          ...(belowZero ? { note: 'below 0: the Dice term is -log((2I+1)/(T+P+1)), above 1 on slices with little tumour' } : {}),
        };
        const figure = renderLineCharts(hasValidation ? [
          lossChart,
          {
            title: 'Validation Dice',
            xLabel: 'epoch',
            x,
            integerX: true,
            yRange: [0, 1],
            series: regions.map((region, k) => ({
              label: `${region} Dice`,
              color: ['#2ca02c', '#d62728', '#bcbd22'][k]!,
              values: state.history.map((r) => r.validationDice[k]!),
            })),
          },
        ] : [lossChart]);
        await writePng(path.join(options.bundle, TRAINING_CURVES_FILE), figure);
      }
      return manifest;
    };

    let parallel: DataParallelTrainer | undefined;
    try {
      if (workers > 0) {
        parallel = await startDataParallel({ model: { ...architecture, seed }, workers, backend: backend.name === 'cpu' ? 'cpu' : 'wasm', loss: lossOptions });
      }
      callbacks.onThreads?.(workers + 1, threadsReason);
      let stoppedEarly = false;
      for (let epoch = state.epochsCompleted + 1; epoch <= epochs; epoch++) {
        const started = performance.now();
        const plan = planEpoch({
          sliceCount: train.slices,
          batchSize,
          seed,
          epoch,
          ...(tumourSlices === undefined ? {} : { tumourSlices, tumourFraction: options.tumourFraction! }),
          ...(options.stepsPerEpoch === undefined ? {} : { stepsPerEpoch: options.stepsPerEpoch }),
        });
        // The stream index counts from 0, as it did before epochs were numbered from 1, so seeds keep their draws.
        const augmentRandom = createRandom(deriveCaseSeed(seed + 1, epoch - 1));
        const epochRate = learningRateAt(learningRate, schedule, epoch, epochs);
        optimizer.setRate(epochRate);
        callbacks.onEpochStart?.(epoch, epochs, plan.length);
        let lossSum = 0;
        let slices = 0;
        for (const [step, indices] of plan.entries()) {
          syncDropoutDraws(model, state.globalStep);
          const batch = store.readBatch('train', indices);
          const masks = Float32Array.from(batch.masks);
          if (augmentation !== undefined) augmentBatch(batch.images, masks, batch.shape, outputChannels, augmentRandom, augmentation);
          const x = tf.tensor4d(batch.images, batch.shape as [number, number, number, number]);
          const y = tf.tensor4d(masks, batch.maskShape as [number, number, number, number]);
          let loss: number;
          try {
            if (parallel === undefined) {
              const lossTensor = tf.tidy(
                () => optimizer.minimize(() => computeCombinedLoss(y, model.apply(x, { training: true }) as tf.Tensor4D, lossOptions), true) as tf.Scalar,
              );
              loss = (await lossTensor.data())[0]!;
              lossTensor.dispose();
            } else {
              loss = await parallel.step(model, optimizer, x, y, state.globalStep);
            }
          } finally {
            tf.dispose([x, y]);
          }
          if (!Number.isFinite(loss)) throw new TrainingError(`the loss became ${loss} at epoch ${epoch}, step ${step + 1}; lower --lr`);
          lossSum += loss * indices.length;
          slices += indices.length;
          state.globalStep++;
          callbacks.onStep?.(step + 1, plan.length, loss);
        }
        const trainSeconds = (performance.now() - started) / 1000;
        const validation = hasValidation
          ? await validate(model, store, validationIndices, batchSize, threshold, lossOptions)
          : { loss: Number.NaN, softDice: regions.map(() => Number.NaN), dice: regions.map(() => Number.NaN) };
        const seconds = (performance.now() - started) / 1000;
        const record: EpochRecord = {
          epoch,
          loss: lossSum / slices,
          validationLoss: validation.loss,
          validationSoftDice: validation.softDice,
          validationDice: validation.dice,
          seconds,
          slicesPerSecond: slices / trainSeconds,
          ...(schedule.kind === 'constant' ? {} : { learningRate: epochRate }),
        };
        state.history.push(record);
        state.epochsCompleted = epoch;
        state.elapsedSeconds += seconds;
        const meanDice = meanOf(validation.dice);
        const improved = !hasValidation || (monitor === 'loss' ? validation.loss < state.bestValidationLoss : meanDice > (state.bestValidationDice ?? Number.NEGATIVE_INFINITY));
        if (improved) {
          state.bestValidationLoss = validation.loss;
          state.bestValidationDice = meanDice;
          state.bestEpoch = epoch;
          state.epochsWithoutImprovement = 0;
          await saveLayersModel(options.bundle, model);
        } else {
          state.epochsWithoutImprovement++;
        }
        // The checkpoint goes last: once it names this epoch, every file above is already complete.
        await writeBundleFiles();
        await saveCheckpoint(options.bundle, model, optimizer, state);
        callbacks.onEpochEnd?.(record, improved);
        if (options.patience !== undefined && state.epochsWithoutImprovement >= options.patience) {
          stoppedEarly = state.epochsCompleted < epochs;
          break;
        }
      }
      const manifest = await writeBundleFiles();
      model.dispose();
      optimizer.dispose();
      return { manifest, history: state.history, backend, stoppedEarly };
    } finally {
      await parallel?.close();
    }
  } finally {
    store.close();
  }
}
