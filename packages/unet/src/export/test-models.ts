/**
 * Test-only U-Net builders with the layer types of the seed model, so the exporter is tested independently of
 * the production model code (and against options the production model may not combine).
 */
import * as tf from '@tensorflow/tfjs';

/** Identity at inference, like the model's spatial dropout: only its class name matters to the exporter. */
class SpatialDropoutStandIn extends tf.layers.Layer {
  static className = 'SpatialDropout2D';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return Array.isArray(inputs) ? inputs[0]! : inputs;
  }
}
tf.serialization.registerClass(SpatialDropoutStandIn);

/** Options of {@link buildTestUnet}. */
export interface TestUnetOptions {
  inputShape: [number, number, number];
  filters: number;
  depth: number;
  upsampling: 'bilinear' | 'transpose';
  /** `folded`: conv (linear) → BN → ReLU; `standalone`: conv (ReLU) → BN, which cannot fold. */
  batchNorm: 'none' | 'folded' | 'standalone';
  outputChannels?: number;
  seed: number;
}

/** A small seeded U-Net: depth poolings, two 3x3 convs per level, spatial dropout at the deepest level. */
export function buildTestUnet(options: TestUnetOptions): tf.LayersModel {
  let seed = options.seed;
  const initializer = (): tf.initializers.Initializer => tf.initializers.heUniform({ seed: (seed += 1) });
  const convBlock = (input: tf.SymbolicTensor, filters: number, name: string): tf.SymbolicTensor => {
    let x = input;
    for (const suffix of ['a', 'b']) {
      const linear = options.batchNorm === 'folded';
      x = tf.layers
        .conv2d({ name: `${name}${suffix}`, filters, kernelSize: 3, padding: 'same', activation: linear ? 'linear' : 'relu', kernelInitializer: initializer(), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: (seed += 1) }) })
        .apply(x) as tf.SymbolicTensor;
      if (options.batchNorm !== 'none') x = tf.layers.batchNormalization({ name: `${name}${suffix}_bn` }).apply(x) as tf.SymbolicTensor;
      if (linear) x = tf.layers.activation({ activation: 'relu', name: `${name}${suffix}_relu` }).apply(x) as tf.SymbolicTensor;
      if (suffix === 'a' && name === `down${options.depth}`) x = new SpatialDropoutStandIn({ name: `${name}_dropout` }).apply(x) as tf.SymbolicTensor;
    }
    return x;
  };
  const input = tf.input({ shape: options.inputShape, name: 'mri' });
  const skips: tf.SymbolicTensor[] = [];
  let x: tf.SymbolicTensor = input;
  for (let level = 0; level < options.depth; level += 1) {
    x = convBlock(x, options.filters * 2 ** level, `down${level}`);
    skips.push(x);
    x = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, name: `pool${level}` }).apply(x) as tf.SymbolicTensor;
  }
  x = convBlock(x, options.filters * 2 ** options.depth, `down${options.depth}`);
  for (let level = options.depth - 1; level >= 0; level -= 1) {
    const filters = options.filters * 2 ** level;
    x =
      options.upsampling === 'bilinear'
        ? (tf.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear', name: `up${level}` }).apply(x) as tf.SymbolicTensor)
        : (tf.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2, padding: 'same', name: `up${level}`, kernelInitializer: initializer() }).apply(x) as tf.SymbolicTensor);
    x = tf.layers.concatenate({ axis: -1, name: `concat${level}` }).apply([x, skips[level]!]) as tf.SymbolicTensor;
    x = convBlock(x, filters, `up${level}_conv`);
  }
  const output = tf.layers
    .conv2d({ filters: options.outputChannels ?? 1, kernelSize: 1, activation: 'sigmoid', name: 'prediction', kernelInitializer: initializer() })
    .apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: output, name: 'unet' });
  randomiseBatchNorm(model, seed);
  return model;
}

/** Gives every batch-norm layer non-trivial statistics, so folding errors show. */
export function randomiseBatchNorm(model: tf.LayersModel, seed: number): void {
  let state = seed;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    layer.setWeights(
      layer.weights.map((variable) => {
        const size = variable.shape[0]!;
        const values = Float32Array.from({ length: size }, () => {
          const u = next();
          if (variable.originalName.endsWith('gamma')) return 0.5 + u;
          if (variable.originalName.endsWith('moving_variance')) return 0.2 + 2 * u;
          return u - 0.5;
        });
        return tf.tensor1d(values);
      }),
    );
  }
}

/** Seeded uniform values in [-2, 2), for inputs. */
export function randomInput(length: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return (state / 2147483648) * 4 - 2;
  });
}
