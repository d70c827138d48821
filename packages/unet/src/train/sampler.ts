/**
 * The order in which training slices are visited. Each epoch's plan depends only on (seed, epoch), so a
 * resumed run visits exactly the slices an uninterrupted run would.
 */
import { ArgumentError, createRandom, deriveCaseSeed, type RandomSource } from '@brats/io';

/** Options of {@link planEpoch}. */
export interface EpochPlanOptions {
  /** Number of training slices N. */
  sliceCount: number;
  /** Store indices of slices that hold tumour (used when `tumourFraction` is set). */
  tumourSlices?: ArrayLike<number>;
  batchSize: number;
  /**
   * Fraction of each batch drawn from tumour slices (e.g. 0.5). Unset: the seed's plain shuffle of every
   * slice once per epoch.
   */
  tumourFraction?: number;
  /** Batches per epoch when sampling by tumour fraction (default ceil(N / batchSize)). */
  stepsPerEpoch?: number;
  seed: number;
  /** Epoch number, counted from 1 as everywhere in training (epoch 1 is the first). */
  epoch: number;
}

function shuffle(values: number[], random: RandomSource): number[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = random.nextUint32() % (i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return values;
}

/** Draws from a list in shuffled passes: every element once per pass, a new shuffle for each pass. */
function cycler(values: number[], random: RandomSource): () => number {
  let order: number[] = [];
  let position = 0;
  return () => {
    if (position >= order.length) {
      order = shuffle([...values], random);
      position = 0;
    }
    return order[position++]!;
  };
}

/**
 * The batches (lists of slice indices) of one epoch.
 * @throws {ArgumentError} for a non-positive size, a fraction outside [0, 1], no slices or an epoch below 1.
 * @example planEpoch({ sliceCount: 1000, batchSize: 32, seed: 816, epoch: 1 }) // 32 batches, the last of 8
 */
export function planEpoch(options: EpochPlanOptions): number[][] {
  const { sliceCount, batchSize, tumourFraction } = options;
  if (!Number.isInteger(sliceCount) || sliceCount < 1) throw new ArgumentError('planEpoch', 'sliceCount', `must be a positive integer, got ${sliceCount}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError('planEpoch', 'batchSize', `must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(options.epoch) || options.epoch < 1) throw new ArgumentError('planEpoch', 'epoch', `must be an integer >= 1 (epochs count from 1), got ${options.epoch}`);
  // The random stream keeps the index it had when epochs were counted from 0, so a seed still gives the orders
  // of runs recorded before (models/brats2018-wt-unet among them).
  const random = createRandom(deriveCaseSeed(options.seed, options.epoch - 1));
  if (tumourFraction === undefined) {
    const order = shuffle(Array.from({ length: sliceCount }, (_, i) => i), random);
    const batches: number[][] = [];
    for (let start = 0; start < sliceCount; start += batchSize) batches.push(order.slice(start, start + batchSize));
    return batches;
  }
  if (!(tumourFraction >= 0 && tumourFraction <= 1)) {
    throw new ArgumentError('planEpoch', 'tumourFraction', `must be in [0, 1], got ${tumourFraction}`);
  }
  const tumour = Array.from(options.tumourSlices ?? []);
  const tumourSet = new Set(tumour);
  const other = Array.from({ length: sliceCount }, (_, i) => i).filter((i) => !tumourSet.has(i));
  const steps = options.stepsPerEpoch ?? Math.ceil(sliceCount / batchSize);
  const nextTumour = tumour.length > 0 ? cycler(tumour, random) : undefined;
  const nextOther = other.length > 0 ? cycler(other, random) : undefined;
  const perBatchTumour = nextTumour === undefined ? 0 : nextOther === undefined ? batchSize : Math.round(tumourFraction * batchSize);
  const batches: number[][] = [];
  for (let step = 0; step < steps; step++) {
    const batch: number[] = [];
    for (let n = 0; n < batchSize; n++) batch.push(n < perBatchTumour ? nextTumour!() : nextOther!());
    batches.push(shuffle(batch, random));
  }
  return batches;
}
