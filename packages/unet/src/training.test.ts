import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { computeCombinedLoss } from './losses.js';
import { buildUnet, type UnetOptions } from './model.js';

/** Synthetic slices: a bright disc of random centre and radius on noise, in every channel; the mask is the disc. */
function makeBlobs(count: number, size: number, seed: number): { images: tf.Tensor4D; masks: tf.Tensor4D } {
  let state = seed >>> 0;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const images = new Float32Array(count * size * size * 4);
  const masks = new Float32Array(count * size * size);
  for (let n = 0; n < count; n++) {
    const cy = size * (0.25 + 0.5 * random());
    const cx = size * (0.25 + 0.5 * random());
    const radius = size * (0.1 + 0.15 * random());
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = (y - cy) ** 2 + (x - cx) ** 2 < radius ** 2 ? 1 : 0;
        const pixel = (n * size + y) * size + x;
        masks[pixel] = inside;
        for (let c = 0; c < 4; c++) images[pixel * 4 + c] = inside * (1 + 0.2 * c) + 0.3 * (random() - 0.5);
      }
    }
  }
  return {
    images: tf.tensor4d(images, [count, size, size, 4]),
    masks: tf.tensor4d(masks, [count, size, size, 1]),
  };
}

/** Loss and every weight gradient of one batch, as plain arrays, on the active backend. */
function lossAndGradients(options: UnetOptions, images: tf.Tensor4D, masks: tf.Tensor4D): { loss: number; grads: Float32Array[] } {
  const model = buildUnet(options);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => computeCombinedLoss(masks, model.apply(images, { training: true }) as tf.Tensor4D),
    variables,
  );
  const result = {
    loss: value.dataSync()[0]!,
    grads: variables.map((v) => grads[v.name]!.dataSync() as Float32Array),
  };
  tf.dispose([value, ...Object.values(grads)]);
  model.dispose();
  return result;
}

describe('training on the wasm backend', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each([
    ['bilinear', { upsampling: 'bilinear' }],
    ['transpose', { upsampling: 'transpose' }],
    ['batch norm', { batchNorm: true }],
  ] as const)('weight gradients of a small U-Net (%s) match the cpu backend', async (_name, variant) => {
    const options: UnetOptions = { filters: 4, depth: 2, inputShape: [16, 16, 4], dropout: 0, seed: 11, ...variant };
    const { images, masks } = makeBlobs(3, 16, 5);
    await tf.setBackend('cpu');
    const expected = lossAndGradients(options, images, masks);
    await tf.setBackend('wasm');
    const actual = lossAndGradients(options, images, masks);
    expect(actual.loss).toBeCloseTo(expected.loss, 4);
    expect(actual.grads.length).toBe(expected.grads.length);
    actual.grads.forEach((grad, i) => {
      const reference = expected.grads[i]!;
      let diff = 0;
      let scale = 0;
      reference.forEach((value, j) => {
        diff = Math.max(diff, Math.abs(value - grad[j]!));
        scale = Math.max(scale, Math.abs(value));
      });
      expect(scale).toBeGreaterThan(0);
      expect(diff / scale).toBeLessThan(1e-3);
    });
    tf.dispose([images, masks]);
  });

  it('a tiny U-Net learns synthetic blobs with Adam: the loss falls', async () => {
    await tf.setBackend('wasm');
    const model = buildUnet({ filters: 4, depth: 2, inputShape: [32, 32, 4], seed: 1 });
    const { images, masks } = makeBlobs(8, 32, 9);
    const optimizer = tf.train.adam(3e-3);
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = optimizer.minimize(
        () => computeCombinedLoss(masks, model.apply(images, { training: true }) as tf.Tensor4D),
        true,
      )!;
      losses.push(loss.dataSync()[0]!);
      loss.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    const first = (losses[0]! + losses[1]!) / 2;
    const last = (losses[10]! + losses[11]!) / 2;
    expect(last).toBeLessThan(first - 0.05);
    optimizer.dispose();
    model.dispose();
    tf.dispose([images, masks]);
  });
});
