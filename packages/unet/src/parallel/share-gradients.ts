/** One share of a data-parallel step: the loss and weight gradients of part of a batch (internal). */
import * as tf from '@tensorflow/tfjs';
import { computeCombinedLoss, type CombinedLossOptions } from '../losses.js';

/**
 * Loss and trainable-weight gradients (in `trainableWeights` order) of one share of the batch, as plain arrays.
 * @param images [share, height, width, channels]; @param masks [share, height, width, outputChannels].
 */
export function computeShareGradients(
  network: tf.LayersModel,
  images: tf.Tensor4D,
  masks: tf.Tensor4D,
  options: CombinedLossOptions,
): { loss: number; gradients: Float32Array[] } {
  const variables = network.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => computeCombinedLoss(masks, network.apply(images, { training: true }) as tf.Tensor4D, options),
    variables,
  );
  const gradients = variables.map((variable) => grads[variable.name]!.dataSync() as Float32Array);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, gradients };
}

