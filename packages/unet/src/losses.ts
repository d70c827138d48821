/**
 * The seed's training loss (0.9 · Dice loss + 0.1 · binary cross-entropy) and its Dice metrics, as tfjs ops on
 * [batch, height, width, channels] tensors of truth (0/1) and sigmoid predictions. Channels are independent
 * regions (1: whole tumour; 3: WT, TC, ET); every reduction keeps them apart until the final mean.
 */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError, ShapeMismatchError } from '@brats/io';

/** Options of the Dice computations. */
export interface DiceOptions {
  /** Smoothing term s added to numerator and denominator. Default 1 (soft Dice, loss) or 0.01 (hard Dice). */
  readonly smooth?: number;
}

/** Options of computeHardDice. */
export interface HardDiceOptions extends DiceOptions {
  /** A prediction above this counts as foreground. Default 0.5. */
  readonly threshold?: number;
}

/** Options of computeBinaryCrossEntropy. */
export interface BinaryCrossEntropyOptions {
  /** Predictions are clipped to [epsilon, 1 - epsilon] before the logarithm (as Keras does). Default 1e-7. */
  readonly epsilon?: number;
}

/** Options of computeDiceLoss. */
export interface DiceLossOptions extends DiceOptions {
  /**
   * Weight of each channel's Dice loss (one per channel, each >= 0, not all 0): the loss is Σ w_k L_k / Σ w_k.
   * Default: equal weights, the plain mean (the seed).
   */
  readonly channelWeights?: readonly number[];
}

/** Options of computeCombinedLoss. */
export interface CombinedLossOptions extends DiceLossOptions, BinaryCrossEntropyOptions {
  /** Weight of the Dice loss. Default 0.9. */
  readonly diceWeight?: number;
  /** Weight of the binary cross-entropy. Default 0.1. */
  readonly crossEntropyWeight?: number;
}

function checkShapes(functionName: string, truth: tf.Tensor, prediction: tf.Tensor): void {
  const same = truth.rank === 4 && truth.shape.every((size, axis) => size === prediction.shape[axis]);
  if (!same || prediction.rank !== 4) {
    throw new ShapeMismatchError(`${functionName}(): truth [batch, height, width, channels] and prediction`, truth.shape, prediction.shape);
  }
}

/** Per-slice, per-channel sums over height and width: intersection I, truth T and prediction P, each [batch, channels]. */
function sumPerSlice(truth: tf.Tensor4D, prediction: tf.Tensor4D): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const intersection = tf.sum(tf.mul(truth, prediction), [1, 2]) as tf.Tensor2D;
  const truthSum = tf.sum(truth, [1, 2]) as tf.Tensor2D;
  const predictionSum = tf.sum(prediction, [1, 2]) as tf.Tensor2D;
  return [intersection, truthSum, predictionSum];
}

/**
 * The seed's Dice loss `-log(2·mean_b(I_b + s)) + log(mean_b(T_b + P_b + s))` per channel (I, T, P summed over one
 * slice, means over the batch: a ratio of batch means, so empty slices do not dominate), averaged over channels
 * (weighted by `channelWeights` when given).
 * @param truth [batch, height, width, channels] of 0/1.
 * @param prediction [batch, height, width, channels] in [0, 1].
 * @throws ShapeMismatchError when the shapes differ or are not rank 4.
 * @throws ArgumentError when `channelWeights` has not one weight >= 0 per channel, or they are all 0.
 */
export function computeDiceLoss(truth: tf.Tensor4D, prediction: tf.Tensor4D, options: DiceLossOptions = {}): tf.Scalar {
  checkShapes('computeDiceLoss', truth, prediction);
  const smooth = options.smooth ?? 1;
  const weights = options.channelWeights;
  if (weights !== undefined) checkChannelWeights('computeDiceLoss', weights, truth.shape[3]);
  return tf.tidy(() => {
    const [intersection, truthSum, predictionSum] = sumPerSlice(truth, prediction);
    const numerator = tf.mean(tf.add(intersection, smooth), 0);
    const denominator = tf.mean(tf.add(tf.add(truthSum, predictionSum), smooth), 0);
    const perChannel = tf.sub(tf.log(denominator), tf.log(tf.mul(numerator, 2)));
    if (weights === undefined) return tf.mean(perChannel) as tf.Scalar;
    const total = weights.reduce((sum, weight) => sum + weight, 0);
    return tf.sum(tf.mul(perChannel, tf.tensor1d(weights.map((weight) => weight / total)))) as tf.Scalar;
  });
}

/**
 * Checks per-channel loss weights: one finite weight >= 0 per channel, not all 0.
 * @throws ArgumentError otherwise, naming `functionName`.
 */
export function checkChannelWeights(functionName: string, weights: readonly number[], channels: number): void {
  if (weights.length !== channels) throw new ArgumentError(functionName, 'channelWeights', `needs one weight per channel (${channels}), found ${weights.length}`);
  if (!weights.every((weight) => Number.isFinite(weight) && weight >= 0)) throw new ArgumentError(functionName, 'channelWeights', `must be finite numbers >= 0, found ${weights.join(', ')}`);
  if (!weights.some((weight) => weight > 0)) throw new ArgumentError(functionName, 'channelWeights', 'must not all be 0');
}

/**
 * Mean binary cross-entropy over every element, predictions clipped to [epsilon, 1 - epsilon].
 * @param truth [batch, height, width, channels] of 0/1.
 * @param prediction [batch, height, width, channels] in [0, 1].
 * @throws ShapeMismatchError when the shapes differ or are not rank 4.
 */
export function computeBinaryCrossEntropy(
  truth: tf.Tensor4D,
  prediction: tf.Tensor4D,
  options: BinaryCrossEntropyOptions = {},
): tf.Scalar {
  checkShapes('computeBinaryCrossEntropy', truth, prediction);
  const epsilon = options.epsilon ?? 1e-7;
  return tf.tidy(() => {
    const clipped = tf.clipByValue(prediction, epsilon, 1 - epsilon);
    const positive = tf.mul(truth, tf.log(clipped));
    const negative = tf.mul(tf.sub(1, truth), tf.log(tf.sub(1, clipped)));
    return tf.neg(tf.mean(tf.add(positive, negative))) as tf.Scalar;
  });
}

/**
 * The seed's training loss: diceWeight · Dice loss + crossEntropyWeight · binary cross-entropy (0.9 and 0.1).
 * @param truth [batch, height, width, channels] of 0/1.
 * @param prediction [batch, height, width, channels] in [0, 1].
 * @throws ShapeMismatchError when the shapes differ or are not rank 4.
 */
export function computeCombinedLoss(
  truth: tf.Tensor4D,
  prediction: tf.Tensor4D,
  options: CombinedLossOptions = {},
): tf.Scalar {
  const diceWeight = options.diceWeight ?? 0.9;
  const crossEntropyWeight = options.crossEntropyWeight ?? 0.1;
  return tf.tidy(() =>
    tf.add(
      tf.mul(computeDiceLoss(truth, prediction, options), diceWeight),
      tf.mul(computeBinaryCrossEntropy(truth, prediction, options), crossEntropyWeight),
    ) as tf.Scalar,
  );
}

/**
 * Soft Dice `(2I + s) / (T + P + s)` of each slice and channel (the seed's metric, s = 1).
 * @param truth [batch, height, width, channels] of 0/1.
 * @param prediction [batch, height, width, channels] in [0, 1].
 * @returns [batch, channels].
 * @throws ShapeMismatchError when the shapes differ or are not rank 4.
 */
export function computeSoftDice(truth: tf.Tensor4D, prediction: tf.Tensor4D, options: DiceOptions = {}): tf.Tensor2D {
  checkShapes('computeSoftDice', truth, prediction);
  const smooth = options.smooth ?? 1;
  return tf.tidy(() => {
    const [intersection, truthSum, predictionSum] = sumPerSlice(truth, prediction);
    return tf.div(tf.add(tf.mul(intersection, 2), smooth), tf.add(tf.add(truthSum, predictionSum), smooth)) as tf.Tensor2D;
  });
}

/**
 * Hard Dice of each slice and channel: predictions above `threshold` are foreground, then
 * `(2I + s) / (T + P + s)` with s = 0.01 by default (the seed's later metric; an empty slice predicted empty scores 1).
 * @param truth [batch, height, width, channels] of 0/1.
 * @param prediction [batch, height, width, channels] in [0, 1].
 * @returns [batch, channels].
 * @throws ShapeMismatchError when the shapes differ or are not rank 4.
 */
export function computeHardDice(truth: tf.Tensor4D, prediction: tf.Tensor4D, options: HardDiceOptions = {}): tf.Tensor2D {
  checkShapes('computeHardDice', truth, prediction);
  const threshold = options.threshold ?? 0.5;
  const smooth = options.smooth ?? 0.01;
  return tf.tidy(() => {
    const binary = tf.cast(tf.greater(prediction, threshold), 'float32') as tf.Tensor4D;
    return computeSoftDice(truth, binary, { smooth });
  });
}
