/**
 * Test-only helpers of the ONNX export tests: seeded inputs and non-trivial batch-norm statistics.
 */
import * as tf from '@tensorflow/tfjs';

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
