import * as tf from '@tensorflow/tfjs';
import { ArgumentError, ShapeMismatchError } from '@brats/io';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import {
  computeBinaryCrossEntropy,
  computeCombinedLoss,
  computeDiceLoss,
  computeHardDice,
  computeSoftDice,
} from './losses.js';

/** Builds [batch, 2, 2, channels] from per-slice, per-channel lists of the 4 pixels (row-major). */
function slices(values: number[][][]): tf.Tensor4D {
  const batch = values.length;
  const channels = values[0]!.length;
  const data = new Float32Array(batch * 4 * channels);
  values.forEach((slice, b) =>
    slice.forEach((pixels, c) => pixels.forEach((value, p) => (data[(b * 4 + p) * channels + c] = value))),
  );
  return tf.tensor4d(data, [batch, 2, 2, channels]);
}

// Two slices, one channel. Slice 0: I = 1.5, T = 2, P = 2. Slice 1 (empty truth): I = 0, T = 0, P = 0.2.
const truthA = [[[1, 1, 0, 0]], [[0, 0, 0, 0]]];
const predictionA = [[[0.5, 1, 0, 0.5]], [[0, 0, 0, 0.2]]];
// Three channels, one slice: channel 0 perfect, channel 1 all wrong, channel 2 empty and predicted empty.
const truthB = [[[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]]];
const predictionB = [[[1, 0, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]]];

describe('losses and Dice metrics (hand-computed)', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it.each([
    // -log(2·mean(I+1)) + log(mean(T+P+1)): means over the batch of 2.
    ['one channel, smooth 1', truthA, predictionA, 1, -Math.log(2 * ((2.5 + 1) / 2)) + Math.log((5 + 1.2) / 2)],
    ['one channel, smooth 0.5', truthA, predictionA, 0.5, -Math.log(2 * ((2 + 0.5) / 2)) + Math.log((4.5 + 0.7) / 2)],
    // per channel: c0 -log(2·3)+log(5) ; c1 -log(2)+log(5) ; c2 -log(2)+log(1); then the mean over channels
    [
      'three channels',
      truthB,
      predictionB,
      1,
      (-Math.log(6) + Math.log(5) + (-Math.log(2) + Math.log(5)) + (-Math.log(2) + Math.log(1))) / 3,
    ],
  ])('Dice loss: %s', (_name, truth, prediction, smooth, expected) => {
    const value = tf.tidy(() => computeDiceLoss(slices(truth), slices(prediction), { smooth }).dataSync()[0]);
    expect(value).toBeCloseTo(expected, 5);
  });

  it('Dice loss with channel weights: Σ w_k L_k / Σ w_k of the per-channel losses above', () => {
    const perChannel = [-Math.log(6) + Math.log(5), -Math.log(2) + Math.log(5), -Math.log(2) + Math.log(1)];
    const weighted = (weights: number[]): number =>
      tf.tidy(() => computeDiceLoss(slices(truthB), slices(predictionB), { channelWeights: weights }).dataSync()[0]!);
    expect(weighted([1, 2, 1])).toBeCloseTo((perChannel[0]! + 2 * perChannel[1]! + perChannel[2]!) / 4, 5);
    expect(weighted([0, 1, 0])).toBeCloseTo(perChannel[1]!, 5);
    expect(weighted([3, 3, 3])).toBeCloseTo(perChannel.reduce((a, b) => a + b) / 3, 5);
    // The combined loss passes them on to its Dice term.
    const combined = tf.tidy(() => computeCombinedLoss(slices(truthB), slices(predictionB), { channelWeights: [0, 1, 0] }).dataSync()[0]!);
    const crossEntropy = tf.tidy(() => computeBinaryCrossEntropy(slices(truthB), slices(predictionB)).dataSync()[0]!);
    expect(combined).toBeCloseTo(0.9 * perChannel[1]! + 0.1 * crossEntropy, 5);
    expect(() => weighted([1, 2])).toThrow(new ArgumentError('computeDiceLoss', 'channelWeights', 'needs one weight per channel (3), found 2'));
    expect(() => weighted([1, -1, 1])).toThrow(ArgumentError);
    expect(() => weighted([0, 0, 0])).toThrow(new ArgumentError('computeDiceLoss', 'channelWeights', 'must not all be 0'));
  });

  it('binary cross-entropy averages every element, clipping certain predictions', () => {
    const clip = -Math.log(1 - 1e-7);
    // slice 0: two pixels at 0.5 (-log 0.5 each), two certain and right (clipped); slice 1: -log(0.8) once.
    const expected = (2 * Math.log(2) + 2 * clip + 3 * clip - Math.log(0.8)) / 8;
    const value = tf.tidy(() => computeBinaryCrossEntropy(slices(truthA), slices(predictionA)).dataSync()[0]);
    expect(value).toBeCloseTo(expected, 5);
  });

  it('combined loss is 0.9 Dice loss + 0.1 cross-entropy', () => {
    const dice = -Math.log(3.5) + Math.log(3.1);
    const bce = (2 * Math.log(2) - Math.log(0.8) + 5 * -Math.log(1 - 1e-7)) / 8;
    const value = tf.tidy(() => computeCombinedLoss(slices(truthA), slices(predictionA)).dataSync()[0]);
    expect(value).toBeCloseTo(0.9 * dice + 0.1 * bce, 5);
    const weighted = tf.tidy(
      () => computeCombinedLoss(slices(truthA), slices(predictionA), { diceWeight: 0, crossEntropyWeight: 1 }).dataSync()[0],
    );
    expect(weighted).toBeCloseTo(bce, 5);
  });

  it.each([
    ['soft, one channel', truthA, predictionA, [[(3 + 1) / (4 + 1)], [1 / 1.2]]],
    ['soft, three channels', truthB, predictionB, [[5 / 5, 1 / 5, 1 / 1]]],
  ])('soft Dice per slice and channel: %s', (_name, truth, prediction, expected) => {
    const value = tf.tidy(() => computeSoftDice(slices(truth), slices(prediction)).arraySync());
    expect(value.length).toBe(expected.length);
    value.forEach((row, b) => row.forEach((v, c) => expect(v).toBeCloseTo(expected[b]![c]!, 5)));
  });

  it('hard Dice thresholds at 0.5 (strictly above) with smooth 0.01', () => {
    // slice 0: prediction > 0.5 only at pixel 1 → I = 1, T = 2, P = 1; slice 1: nothing above 0.5 → 0.01 / 0.01
    const value = tf.tidy(() => computeHardDice(slices(truthA), slices(predictionA)).arraySync());
    expect(value[0]![0]).toBeCloseTo((2 + 0.01) / (3 + 0.01), 6);
    expect(value[1]![0]).toBeCloseTo(1, 6);
    const lowered = tf.tidy(() => computeHardDice(slices(truthA), slices(predictionA), { threshold: 0.4 }).arraySync());
    expect(lowered[0]![0]).toBeCloseTo((4 + 0.01) / (5 + 0.01), 6);
  });

  it('rejects mismatched shapes with ShapeMismatchError', () => {
    const truth = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const prediction = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
    expect(() => computeDiceLoss(truth, prediction)).toThrow(ShapeMismatchError);
    expect(() => computeSoftDice(truth, prediction)).toThrow(ShapeMismatchError);
    expect(() => computeBinaryCrossEntropy(truth, prediction)).toThrow(ShapeMismatchError);
    tf.dispose([truth, prediction]);
  });

  it('has a gradient that moves predictions towards the truth', () => {
    const truth = slices(truthA);
    const prediction = slices(predictionA);
    const gradient = tf.grad((p: tf.Tensor) => computeCombinedLoss(truth, p as tf.Tensor4D))(prediction);
    const g = gradient.dataSync();
    // pixel 0 of slice 0 is tumour predicted 0.5: the loss falls as it rises; pixel 3 is background at 0.5.
    expect(g[0]).toBeLessThan(0);
    expect(g[3]).toBeGreaterThan(0);
    tf.dispose([truth, prediction, gradient]);
  });
});
