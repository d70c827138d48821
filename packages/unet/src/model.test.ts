import * as tf from '@tensorflow/tfjs';
import { ArgumentError } from '@brats/io';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { buildUnet, UNET_INPUT_NAME, UNET_OUTPUT_NAME } from './model.js';
import { SpatialDropout2D } from './spatial-dropout.js';

/** Parameters of a 3x3 (or k x k) convolution with bias. */
const conv = (k: number, inputs: number, outputs: number): number => k * k * inputs * outputs + outputs;

describe('buildUnet', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  it('has the seed figure of 1,962,769 parameters at f=16, depth 4, bilinear, 144x144x4', () => {
    const model = buildUnet();
    expect(model.countParams()).toBe(1_962_769);
    expect(model.inputs[0]!.shape).toEqual([null, 144, 144, 4]);
    expect(model.outputs[0]!.shape).toEqual([null, 144, 144, 1]);
    expect(model.inputLayers[0]!.name).toBe(UNET_INPUT_NAME);
    expect(model.outputLayers[0]!.name).toBe(UNET_OUTPUT_NAME);
    model.dispose();
  });

  it('puts the layers in the seed order, dropout between the convolutions of the third and fourth levels', () => {
    const model = buildUnet();
    const names = model.layers.map((layer) => layer.name);
    expect(names.slice(0, 12)).toEqual([
      'MRImages', 'encodeAa', 'encodeAb', 'poolA', 'encodeBa', 'encodeBb', 'poolB',
      'encodeCa', 'dropoutC', 'encodeCb', 'poolC', 'encodeDa',
    ]);
    expect(names.filter((name) => name.startsWith('dropout'))).toEqual(['dropoutC', 'dropoutD']);
    expect(model.getLayer('dropoutC')).toBeInstanceOf(SpatialDropout2D);
    expect(model.getLayer('upD').getConfig()['interpolation']).toBe('bilinear');
    expect(model.getLayer('concatD').outputShape).toEqual([null, 18, 18, 256 + 128]);
    expect(model.getLayer('encodeAa').getConfig()['kernelInitializer']).toMatchObject({ className: 'VarianceScaling' });
    expect(names.at(-1)).toBe('PredictionMask');
    model.dispose();
  });

  it.each([
    // Hand-counted: encoder, bottleneck, decoder (concat of upsampled + skip channels), 1x1 output.
    {
      name: 'f=4 depth 2 bilinear 32x32x4',
      options: { filters: 4, depth: 2, inputShape: [32, 32, 4] as const },
      expected:
        conv(3, 4, 4) + conv(3, 4, 4) + conv(3, 4, 8) + conv(3, 8, 8) + conv(3, 8, 16) + conv(3, 16, 16) +
        conv(3, 24, 8) + conv(3, 8, 8) + conv(3, 12, 4) + conv(3, 4, 4) + conv(1, 4, 1),
    },
    {
      name: 'f=4 depth 2 transpose, 3 outputs',
      options: { filters: 4, depth: 2, inputShape: [32, 32, 4] as const, upsampling: 'transpose' as const, outputChannels: 3 as const },
      expected:
        conv(3, 4, 4) + conv(3, 4, 4) + conv(3, 4, 8) + conv(3, 8, 8) + conv(3, 8, 16) + conv(3, 16, 16) +
        conv(2, 16, 8) + conv(3, 16, 8) + conv(3, 8, 8) + conv(2, 8, 4) + conv(3, 8, 4) + conv(3, 4, 4) + conv(1, 4, 3),
    },
    {
      name: 'f=2 depth 1 batch norm',
      options: { filters: 2, depth: 1, inputShape: [8, 8, 1] as const, batchNorm: true },
      // conv without bias + 4 BN parameters per channel (gamma, beta, moving mean, moving variance)
      expected:
        9 * 1 * 2 + 8 + 9 * 2 * 2 + 8 + 9 * 2 * 4 + 16 + 9 * 4 * 4 + 16 + 9 * 6 * 2 + 8 + 9 * 2 * 2 + 8 + conv(1, 2, 1),
    },
  ])('counts parameters for $name', ({ options, expected }) => {
    const model = buildUnet(options);
    expect(model.countParams()).toBe(expected);
    model.dispose();
  });

  it('maps [batch, height, width, channels] to sigmoid probabilities of the same height and width', () => {
    const model = buildUnet({ filters: 2, depth: 2, inputShape: [16, 24, 4], outputChannels: 3, seed: 3 });
    const output = tf.tidy(() => model.predict(tf.randomNormal([2, 16, 24, 4], 0, 1, 'float32', 1)) as tf.Tensor);
    expect(output.shape).toEqual([2, 16, 24, 3]);
    const values = output.dataSync();
    expect(Math.min(...values)).toBeGreaterThan(0);
    expect(Math.max(...values)).toBeLessThan(1);
    output.dispose();
    model.dispose();
  });

  it.each([
    [{ inputShape: [100, 144, 4] as const }, 'inputShape[0] (height)'],
    [{ filters: 0 }, 'filters'],
    [{ depth: 1.5 }, 'depth'],
    [{ dropout: 1 }, 'dropout'],
    [{ outputChannels: 2 as unknown as 1 }, 'outputChannels'],
    [{ upsampling: 'nearest' as unknown as 'bilinear' }, 'upsampling'],
  ])('rejects %o naming the argument', (options, argument) => {
    const call = (): unknown => buildUnet(options);
    expect(call).toThrow(ArgumentError);
    try {
      call();
    } catch (error) {
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });
});

describe('SpatialDropout2D', () => {
  it('drops whole channels while training and scales the rest by 1 / (1 - rate)', () => {
    const layer = new SpatialDropout2D({ rate: 0.5, seed: 7 });
    const input = tf.ones([4, 3, 3, 16]);
    const output = layer.apply(input, { training: true }) as tf.Tensor;
    const values = output.arraySync() as number[][][][];
    let dropped = 0;
    for (const sample of values) {
      for (let channel = 0; channel < 16; channel++) {
        const plane = sample.flatMap((row) => row.map((pixel) => pixel[channel]!));
        // Every pixel of a channel shares one fate: all 0 or all 2.
        expect(new Set(plane).size).toBe(1);
        expect([0, 2]).toContain(plane[0]);
        if (plane[0] === 0) dropped++;
      }
    }
    // 64 independent channel draws at rate 0.5: both outcomes occur (probability of failure ~1e-19).
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(64);
    tf.dispose([input, output]);
  });

  it('is the identity at inference', () => {
    const layer = new SpatialDropout2D({ rate: 0.5 });
    const input = tf.randomNormal([2, 4, 4, 3]);
    const output = layer.apply(input) as tf.Tensor;
    expect(Array.from(output.dataSync())).toEqual(Array.from(input.dataSync()));
    tf.dispose([input, output]);
  });

  it('rejects a rate outside [0, 1)', () => {
    expect(() => new SpatialDropout2D({ rate: 1 })).toThrow(ArgumentError);
  });
});
