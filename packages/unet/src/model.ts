/**
 * The seed 2D U-Net (Intel's Decathlon BraTS recipe) built with tf.layers, with the options the toolkit adds.
 */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError } from '@brats/io';
import { SpatialDropout2D } from './spatial-dropout.js';

/** How the decoder doubles the resolution: bilinear UpSampling2D (seed default) or a 2x2 stride-2 Conv2DTranspose. */
export type UpsamplingMode = 'bilinear' | 'transpose';

/** Options of buildUnet; every field has the seed's value as default. */
export interface UnetOptions {
  /** Input [height, width, channels], channels last; height and width divisible by 2^depth. Default [144, 144, 4]. */
  readonly inputShape?: readonly [number, number, number];
  /** Filters of the first level, doubled at each pooling. Default 16. */
  readonly filters?: number;
  /** Number of 2x2 max-poolings (levels minus one). Default 4. */
  readonly depth?: number;
  /** Decoder upsampling. Default `bilinear`. */
  readonly upsampling?: UpsamplingMode;
  /** Batch normalisation between each 3x3 convolution and its ReLU (not in the seed). Default false. */
  readonly batchNorm?: boolean;
  /** SpatialDropout2D rate between the two convolutions of the two deepest encoder levels; 0 disables. Default 0.2. */
  readonly dropout?: number;
  /** Sigmoid output channels: 1 (whole tumour, the seed) or 3 (WT, TC, ET). Default 1. */
  readonly outputChannels?: 1 | 3;
  /** Seed of the he_uniform initialisers and dropout draws, for reproducible models; unseeded when absent. */
  readonly seed?: number;
}

/** The seed's values of every UnetOptions field. */
export const UNET_DEFAULTS = {
  inputShape: [144, 144, 4] as const,
  filters: 16,
  depth: 4,
  upsampling: 'bilinear',
  batchNorm: false,
  dropout: 0.2,
  outputChannels: 1,
} as const satisfies Required<Omit<UnetOptions, 'seed'>>;

/** Name of the model's input layer (the seed's). */
export const UNET_INPUT_NAME = 'MRImages';
/** Name of the model's output layer (the seed's). */
export const UNET_OUTPUT_NAME = 'PredictionMask';

function checkPositiveInteger(argument: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new ArgumentError('buildUnet', argument, `must be a positive integer, found ${value}`);
  }
}

/** Letters name the levels as in the seed (encodeAa, encodeAb, poolA, …). */
function levelName(level: number): string {
  return String.fromCharCode('A'.charCodeAt(0) + level);
}

/**
 * Builds the U-Net: input [height, width, channels] (channels last), `depth` 2x2 max-poolings, two 3x3 same-padded
 * ReLU convolutions (he_uniform) per level with filters f·2^level, SpatialDropout2D between the two convolutions of
 * the two deepest encoder levels above the bottleneck, upsampling then concatenation with the skip, and a 1x1
 * sigmoid output [height, width, outputChannels]. With the defaults it has 1,962,769 parameters, as the seed.
 * @throws ArgumentError when a size, filter count, depth, rate or channel count is invalid.
 */
export function buildUnet(options: UnetOptions = {}): tf.LayersModel {
  const inputShape = options.inputShape ?? UNET_DEFAULTS.inputShape;
  const filters = options.filters ?? UNET_DEFAULTS.filters;
  const depth = options.depth ?? UNET_DEFAULTS.depth;
  const upsampling = options.upsampling ?? UNET_DEFAULTS.upsampling;
  const batchNorm = options.batchNorm ?? UNET_DEFAULTS.batchNorm;
  const dropout = options.dropout ?? UNET_DEFAULTS.dropout;
  const outputChannels = options.outputChannels ?? UNET_DEFAULTS.outputChannels;
  const seed = options.seed;

  checkPositiveInteger('filters', filters);
  checkPositiveInteger('depth', depth);
  if (depth > 10) throw new ArgumentError('buildUnet', 'depth', `must be at most 10, found ${depth}`);
  if (inputShape.length !== 3) {
    throw new ArgumentError('buildUnet', 'inputShape', `must be [height, width, channels], found ${inputShape.length} values`);
  }
  const [height, width, channels] = inputShape;
  checkPositiveInteger('inputShape[2] (channels)', channels);
  const factor = 2 ** depth;
  for (const [name, size] of [
    ['inputShape[0] (height)', height],
    ['inputShape[1] (width)', width],
  ] as const) {
    checkPositiveInteger(name, size);
    if (size % factor !== 0) {
      throw new ArgumentError('buildUnet', name, `must be divisible by 2^depth = ${factor}, found ${size}`);
    }
  }
  if (upsampling !== 'bilinear' && upsampling !== 'transpose') {
    throw new ArgumentError('buildUnet', 'upsampling', `must be 'bilinear' or 'transpose', found '${String(upsampling)}'`);
  }
  if (!(dropout >= 0 && dropout < 1)) {
    throw new ArgumentError('buildUnet', 'dropout', `must be in [0, 1), found ${dropout}`);
  }
  if (outputChannels !== 1 && outputChannels !== 3) {
    throw new ArgumentError('buildUnet', 'outputChannels', `must be 1 or 3, found ${String(outputChannels)}`);
  }

  let seedOffset = 0;
  const nextSeed = (): number | undefined => (seed === undefined ? undefined : seed + seedOffset++);
  const initializer = (): ReturnType<typeof tf.initializers.heUniform> => {
    const layerSeed = nextSeed();
    return tf.initializers.heUniform(layerSeed === undefined ? {} : { seed: layerSeed });
  };

  const convolve = (x: tf.SymbolicTensor, count: number, name: string): tf.SymbolicTensor => {
    if (!batchNorm) {
      return tf.layers
        .conv2d({ name, filters: count, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: initializer() })
        .apply(x) as tf.SymbolicTensor;
    }
    // The bias is redundant before batch normalisation, which has its own offset.
    const linear = tf.layers
      .conv2d({ name, filters: count, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: initializer() })
      .apply(x) as tf.SymbolicTensor;
    const normalised = tf.layers.batchNormalization({ name: `${name}_bn`, axis: -1 }).apply(linear) as tf.SymbolicTensor;
    return tf.layers.activation({ name: `${name}_relu`, activation: 'relu' }).apply(normalised) as tf.SymbolicTensor;
  };

  const input = tf.input({ shape: [height, width, channels], name: UNET_INPUT_NAME });
  const skips: tf.SymbolicTensor[] = [];
  let x: tf.SymbolicTensor = input;
  for (let level = 0; level <= depth; level++) {
    const count = filters * 2 ** level;
    const letter = levelName(level);
    x = convolve(x, count, `encode${letter}a`);
    // The seed's third and fourth of five levels: the two deepest above the bottleneck.
    if (dropout > 0 && level >= depth - 2 && level < depth) {
      const dropoutSeed = nextSeed();
      x = new SpatialDropout2D({
        rate: dropout,
        name: `dropout${letter}`,
        ...(dropoutSeed === undefined ? {} : { seed: dropoutSeed }),
      }).apply(x) as tf.SymbolicTensor;
    }
    x = convolve(x, count, `encode${letter}b`);
    if (level < depth) {
      skips.push(x);
      x = tf.layers.maxPooling2d({ name: `pool${letter}`, poolSize: 2, strides: 2 }).apply(x) as tf.SymbolicTensor;
    }
  }
  for (let level = depth - 1; level >= 0; level--) {
    const count = filters * 2 ** level;
    const letter = levelName(level);
    const up =
      upsampling === 'bilinear'
        ? tf.layers.upSampling2d({ name: `up${letter}`, size: [2, 2], interpolation: 'bilinear' }).apply(x)
        : tf.layers
            .conv2dTranspose({
              name: `transconv${letter}`,
              filters: count,
              kernelSize: 2,
              strides: 2,
              padding: 'same',
              kernelInitializer: initializer(),
            })
            .apply(x);
    const skip = skips[level]!;
    x = tf.layers.concatenate({ name: `concat${letter}`, axis: -1 }).apply([up as tf.SymbolicTensor, skip]) as tf.SymbolicTensor;
    x = convolve(x, count, `decode${letter}a`);
    x = convolve(x, count, `decode${letter}b`);
  }
  const output = tf.layers
    .conv2d({
      name: UNET_OUTPUT_NAME,
      filters: outputChannels,
      kernelSize: 1,
      activation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform(seed === undefined ? {} : { seed: seed + 997 }),
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'unet2d' });
}
