/**
 * Training checkpoints that survive a kill: each checkpoint is a new folder, and a small pointer file,
 * replaced atomically, names the current one. A kill at any moment leaves the pointer on a complete folder.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelBundleError, writeFileAtomic } from '@brats/io';
import { loadLayersModel, saveLayersModel } from '../model-files.js';

/** Name of the pointer file inside a bundle folder. */
export const CHECKPOINT_POINTER = 'checkpoint.json';

/** The validation figure that selects the kept model. */
export type TrainMonitor = 'loss' | 'dice';

/**
 * Epochs are numbered from 1 (epoch 1 is the first, as Keras prints them) in the state, the history, the manifest,
 * `metrics.jsonl` and the curves. Checkpoints written before carry no `epochBase` and count from 0; loading one
 * renumbers it.
 */
export const EPOCH_BASE = 1;

/** Everything besides weights that a resumed run needs (JSON-able). */
export interface TrainingState {
  /** Where epoch numbers start: 1 (absent in checkpoints written when they started at 0). */
  epochBase?: typeof EPOCH_BASE;
  /** Epochs completed, which is also the number of the last completed epoch (the next to run is this + 1). */
  epochsCompleted: number;
  /** Optimizer steps taken. */
  globalStep: number;
  bestValidationLoss: number;
  /** Mean validation Dice of the kept epoch (absent in runs saved before it was recorded). */
  bestValidationDice?: number;
  /** The figure that picked the kept epoch (absent in runs saved before it was recorded: `loss`). */
  monitor?: TrainMonitor;
  /** Number of the kept epoch (from 1); 0 before any epoch has been kept. */
  bestEpoch: number;
  /** Epochs without improvement, for early stopping. */
  epochsWithoutImprovement: number;
  history: EpochRecord[];
  /** Seconds spent training so far (summed over runs). */
  elapsedSeconds: number;
  /** The options the run started with, to refuse resuming with different ones. */
  fingerprint: string;
}

/** One epoch's results: one line of `metrics.jsonl`. */
export interface EpochRecord {
  /** Epoch number, from 1. */
  epoch: number;
  loss: number;
  validationLoss: number;
  /** Mean per-slice soft Dice (the seed's metric), per output channel. */
  validationSoftDice: number[];
  /** Dice over all validation voxels after thresholding, per output channel. */
  validationDice: number[];
  seconds: number;
  slicesPerSecond: number;
  /** The epoch's learning rate (absent in runs saved before schedules: the run's constant rate). */
  learningRate?: number;
}

/**
 * Adam keeps beta1^t and beta2^t as running float32 products, but its setWeights() recomputes them with pow(),
 * which differs in the last bits; restoring the saved products keeps a resumed run bit-identical to a straight one.
 */
interface AdamBetaPowers {
  accBeta1?: tf.Variable;
  accBeta2?: tf.Variable;
}

interface SerializedTensor {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

async function saveOptimizer(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const weights = await optimizer.getWeights();
  const entries: SerializedTensor[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  for (const { name, tensor } of weights) {
    const values = (await tensor.data()) as Float32Array;
    entries.push({ name, shape: tensor.shape, offset, length: values.length });
    arrays.push(Float32Array.from(values));
    offset += values.length;
  }
  const all = new Float32Array(offset);
  let position = 0;
  for (const array of arrays) {
    all.set(array, position);
    position += array.length;
  }
  const powers = optimizer as unknown as AdamBetaPowers;
  const betaPowers = powers.accBeta1 !== undefined && powers.accBeta2 !== undefined ? [powers.accBeta1.dataSync()[0]!, powers.accBeta2.dataSync()[0]!] : null;
  await writeFileAtomic(path.join(dir, 'optimizer.bin'), new Uint8Array(all.buffer));
  await writeFileAtomic(path.join(dir, 'optimizer.json'), JSON.stringify({ entries, betaPowers }));
}

async function loadOptimizer(dir: string, optimizer: tf.Optimizer): Promise<void> {
  const { entries, betaPowers } = JSON.parse(await fs.readFile(path.join(dir, 'optimizer.json'), 'utf8')) as {
    entries: SerializedTensor[];
    betaPowers: [number, number] | null;
  };
  const bytes = await fs.readFile(path.join(dir, 'optimizer.bin'));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const weights = entries.map(({ name, shape, offset, length }) => ({ name, tensor: tf.tensor(all.slice(offset, offset + length), shape) }));
  await optimizer.setWeights(weights);
  weights.forEach(({ tensor }) => tensor.dispose());
  const powers = optimizer as unknown as AdamBetaPowers;
  if (betaPowers !== null && powers.accBeta1 !== undefined && powers.accBeta2 !== undefined) {
    tf.tidy(() => {
      powers.accBeta1!.assign(tf.scalar(betaPowers[0]));
      powers.accBeta2!.assign(tf.scalar(betaPowers[1]));
    });
  }
}

/** Writes a checkpoint (weights, optimizer state, training state) and makes it the current one. */
export async function saveCheckpoint(bundle: string, model: tf.LayersModel, optimizer: tf.Optimizer, state: TrainingState): Promise<void> {
  const name = `checkpoint-epoch-${String(state.epochsCompleted).padStart(4, '0')}`;
  const dir = path.join(bundle, name);
  await fs.rm(dir, { recursive: true, force: true });
  await saveLayersModel(dir, model);
  await saveOptimizer(dir, optimizer);
  await writeFileAtomic(path.join(dir, 'state.json'), JSON.stringify(state));
  let previous: string | undefined;
  try {
    previous = (JSON.parse(await fs.readFile(path.join(bundle, CHECKPOINT_POINTER), 'utf8')) as { current: string }).current;
  } catch {
    previous = undefined;
  }
  await writeFileAtomic(path.join(bundle, CHECKPOINT_POINTER), JSON.stringify({ current: name }));
  // Older checkpoint folders (complete or half-written by a killed run) are no longer needed.
  for (const entry of await fs.readdir(bundle)) {
    if (entry.startsWith('checkpoint-epoch-') && entry !== name && entry !== previous) await fs.rm(path.join(bundle, entry), { recursive: true, force: true });
  }
  if (previous !== undefined && previous !== name) await fs.rm(path.join(bundle, previous), { recursive: true, force: true });
}

/** A state counted from 0 (written before `epochBase`) renumbered from 1; a state counted from 1 as it is. */
export function renumberEpochs(state: TrainingState): TrainingState {
  if (state.epochBase === EPOCH_BASE) return state;
  return {
    ...state,
    epochBase: EPOCH_BASE,
    // -1 was "none kept yet" when epochs counted from 0: it becomes 0.
    bestEpoch: state.bestEpoch + 1,
    history: state.history.map((record) => ({ ...record, epoch: record.epoch + 1 })),
  };
}

/**
 * Loads the current checkpoint of a bundle folder, or undefined when it has none; its epochs are numbered from 1
 * (an older checkpoint counted from 0 is renumbered).
 * @throws {ModelBundleError} when the pointer names a folder that is unreadable.
 */
export async function loadCheckpoint(
  bundle: string,
  optimizer: tf.Optimizer,
): Promise<{ model: tf.LayersModel; state: TrainingState } | undefined> {
  let current: string;
  try {
    current = (JSON.parse(await fs.readFile(path.join(bundle, CHECKPOINT_POINTER), 'utf8')) as { current: string }).current;
  } catch {
    return undefined;
  }
  const dir = path.join(bundle, current);
  try {
    const model = await loadLayersModel(dir);
    const state = renumberEpochs(JSON.parse(await fs.readFile(path.join(dir, 'state.json'), 'utf8')) as TrainingState);
    // setWeights restores the step count and creates Adam's moment slots in the order of the model's variables.
    await loadOptimizer(dir, optimizer);
    return { model, state };
  } catch (error) {
    if (error instanceof ModelBundleError) throw error;
    throw new ModelBundleError(dir, `checkpoint cannot be read (${(error as Error).message})`);
  }
}
