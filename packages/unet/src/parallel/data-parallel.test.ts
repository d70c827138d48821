import * as tf from '@tensorflow/tfjs';
import { ArgumentError } from '@brats/io';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.js';
import type { CombinedLossOptions } from '../losses.js';
import { buildUnet, type UnetOptions } from '../model.js';
import { locateGradientWorker, startDataParallel } from './data-parallel.js';
import { computeShareGradients } from './share-gradients.js';

const workerEntry = locateGradientWorker();

describe('startDataParallel', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('rejects a worker count below 1', async () => {
    await expect(startDataParallel({ model: {}, workers: 0 })).rejects.toBeInstanceOf(ArgumentError);
  });

  describe.skipIf(workerEntry === undefined)('with the built worker (skipped: dist/gradient-worker.js not built; run pnpm build)', () => {
    it.each([
      ['one region, the plain loss', 1 as const, {}],
      // The worker must weigh the regions' Dice terms as the main thread does, or its share's gradients differ.
      ['three regions, weighted Dice terms', 3 as const, { channelWeights: [1, 3, 1] }],
    ])('applies the size-weighted mean of the share gradients, as computed on one thread: %s', async (_name, outputChannels, lossOptions: CombinedLossOptions) => {
      // No dropout, so both threads compute deterministic gradients of the same weights.
      const options: UnetOptions = { filters: 2, depth: 2, inputShape: [16, 16, 4], dropout: 0, seed: 4, outputChannels };
      const model = buildUnet(options);
      const images = tf.randomNormal([5, 16, 16, 4], 0, 1, 'float32', 8) as tf.Tensor4D;
      const masks = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([5, 16, 16, outputChannels], 0, 1, 'float32', 9), 0.7), 'float32')) as tf.Tensor4D;

      // Reference: shares of 3 and 2 slices (the split of 5 into two), on this thread.
      const shares = [
        [images.slice(0, 3), masks.slice(0, 3)],
        [images.slice(3, 2), masks.slice(3, 2)],
      ] as Array<[tf.Tensor4D, tf.Tensor4D]>;
      const references = shares.map(([x, y]) => computeShareGradients(model, x, y, lossOptions));
      const expected = references[0]!.gradients.map((g, i) =>
        g.map((value, j) => (3 / 5) * value + (2 / 5) * references[1]!.gradients[i]![j]!),
      );
      const expectedLoss = (3 / 5) * references[0]!.loss + (2 / 5) * references[1]!.loss;

      const before = model.trainableWeights.map((w) => w.read().dataSync().slice());
      const trainer = await startDataParallel({ model: options, workers: 1, loss: lossOptions });
      const loss = await trainer.step(model, tf.train.sgd(1), images, masks);
      await trainer.close();
      expect(loss).toBeCloseTo(expectedLoss, 5);
      model.trainableWeights.forEach((w, i) => {
        const after = w.read().dataSync();
        // With plain SGD at rate 1 the step is exactly the applied gradient.
        const applied = before[i]!.map((value, j) => value - after[j]!);
        let diff = 0;
        let scale = 0;
        applied.forEach((value, j) => {
          diff = Math.max(diff, Math.abs(value - expected[i]![j]!));
          scale = Math.max(scale, Math.abs(expected[i]![j]!));
        });
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(scale, 1e-6));
      });
      tf.dispose([images, masks, ...shares.flat()]);
      model.dispose();
    });
  });
});
