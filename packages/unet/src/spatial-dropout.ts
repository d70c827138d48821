/**
 * SpatialDropout2D for TensorFlow.js layers. tfjs-layers ships only SpatialDropout1D, and plain Dropout drops
 * single pixels, which hardly regularises a convolutional network because neighbouring activations are strongly
 * correlated; the seed model (Keras SpatialDropout2D) drops whole feature maps instead, so this small layer does.
 */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError } from '@brats/io';

/** Constructor arguments of SpatialDropout2D. */
export interface SpatialDropout2DArgs {
  /** Fraction of channels to drop while training, in [0, 1). */
  readonly rate: number;
  /** Seed of the channel draws (for reproducible tests); unseeded when absent. */
  readonly seed?: number;
  readonly name?: string;
}

/**
 * Drops whole channels of a [batch, height, width, channels] tensor while training (each channel of each sample
 * independently with probability `rate`) and scales the kept ones by 1 / (1 - rate); identity at inference.
 * @throws ArgumentError when `rate` is outside [0, 1).
 */
export class SpatialDropout2D extends tf.layers.Layer {
  /** Class name under which the layer is serialised (same as Keras). */
  static readonly className = 'SpatialDropout2D';
  readonly rate: number;
  readonly seed: number | undefined;
  private draws = 0;

  constructor(args: SpatialDropout2DArgs) {
    super(args.name === undefined ? {} : { name: args.name });
    if (!(args.rate >= 0 && args.rate < 1)) {
      throw new ArgumentError('SpatialDropout2D', 'rate', `must be in [0, 1), found ${args.rate}`);
    }
    this.rate = args.rate;
    this.seed = args.seed;
    this.supportsMasking = true;
  }

  /**
   * Sets how many masks the layer has drawn, so that a run resumed after `count` training steps draws the
   * masks an uninterrupted run would (each draw's seed is `seed + count`).
   */
  setDrawCount(count: number): void {
    this.draws = count;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      if (kwargs['training'] !== true || this.rate === 0) return x.clone();
      const [batch, , , channels] = x.shape;
      const keep = 1 - this.rate;
      const seed = this.seed === undefined ? undefined : this.seed + this.draws++;
      // floor(keep + U[0,1)) is 1 with probability `keep`: the usual inverted-dropout mask, one value per channel.
      const mask = tf.floor(tf.randomUniform([batch ?? 1, 1, 1, channels ?? 1], keep, 1 + keep, 'float32', seed));
      return tf.mul(x, tf.div(mask, keep));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { rate: this.rate };
    if (this.seed !== undefined) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}

tf.serialization.registerClass(SpatialDropout2D);
