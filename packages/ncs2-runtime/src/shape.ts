import { ShapeMismatchError } from '@brats/io/browser';
import { EngineError } from './errors.js';
import type { ModelLayout } from './engine.js';

/**
 * Checks a batch against a loaded layout and returns the NHWC input shape [batch, height, width, channels].
 * @throws {EngineError} before load or for a batch that is not a positive integer.
 * @throws {ShapeMismatchError} when `input` holds another number of values.
 */
export function checkBatch(engine: string, layout: ModelLayout | undefined, input: Float32Array, batch: number): [number, number, number, number] {
  if (layout === undefined) throw new EngineError(engine, 'run() before load(): load a model bundle first');
  if (!Number.isInteger(batch) || batch < 1) throw new EngineError(engine, `batch must be a positive integer, found ${batch}`);
  const [height, width, channels] = layout.input;
  const shape: [number, number, number, number] = [batch, height, width, channels];
  if (input.length !== batch * height * width * channels) {
    const found = input.length % (height * width * channels) === 0 ? [input.length / (height * width * channels), height, width, channels] : [input.length];
    throw new ShapeMismatchError(`${engine} run() input (NHWC)`, shape, found);
  }
  return shape;
}
