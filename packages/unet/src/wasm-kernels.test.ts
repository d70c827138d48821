import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend.js';
import { registerWasmTrainingKernels, type FilterGradientVariant } from './wasm-kernels.js';

/** Deterministic uniform values in [-1, 1) (a small LCG, so cpu and wasm see identical inputs). */
function randomValues(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `compute` on a backend with fresh tensors made from plain arrays and returns the plain result. */
async function onBackend(
  backend: 'cpu' | 'wasm',
  inputs: Array<{ shape: number[]; values: Float32Array }>,
  compute: (...tensors: tf.Tensor[]) => tf.Tensor,
): Promise<Float32Array> {
  await tf.setBackend(backend);
  const tensors = inputs.map((input) => tf.tensor(input.values, input.shape));
  const result = compute(...tensors);
  const data = (await result.data()) as Float32Array;
  tf.dispose([...tensors, result]);
  return data;
}

/** Largest absolute difference divided by the largest magnitude of the reference (a relative max error). */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN)));
    scale = Math.max(scale, Math.abs(expected[i] ?? 0));
  }
  return diff / Math.max(scale, 1e-12);
}

interface ConvCase {
  name: string;
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number;
  pad: 'same' | 'valid';
}

const CASES: ConvCase[] = [
  { name: '3x3 same stride 1', x: [2, 12, 10, 3], filter: [3, 3, 3, 5], strides: 1, pad: 'same' },
  { name: '1x1 stride 1', x: [3, 8, 8, 6], filter: [1, 1, 6, 2], strides: 1, pad: 'valid' },
  { name: '2x2 stride 2 valid', x: [2, 8, 12, 4], filter: [2, 2, 4, 7], strides: 2, pad: 'valid' },
  { name: '3x3 valid stride 1', x: [2, 9, 9, 2], filter: [3, 3, 2, 3], strides: 1, pad: 'valid' },
  { name: '3x3 same stride 2 (odd size)', x: [2, 9, 7, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
  { name: '2x2 stride 2 valid (odd size)', x: [1, 9, 7, 2], filter: [2, 2, 2, 3], strides: 2, pad: 'valid' },
];

const VARIANTS: FilterGradientVariant[] = ['dilated-conv', 'matmul'];

describe('wasm training kernels against the cpu backend', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  describe.each(VARIANTS)('filter gradient variant %s', (variant) => {
    beforeAll(() => registerWasmTrainingKernels({ filterGradient: variant }));

    it.each(CASES)('Conv2DBackpropFilter $name', async ({ x, filter, strides, pad }) => {
      const convOut = tf.tidy(() => tf.conv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros(filter) as tf.Tensor4D, strides, pad));
      const dyShape = convOut.shape;
      convOut.dispose();
      const inputs = [
        { shape: x, values: randomValues(product(x), 1) },
        { shape: dyShape, values: randomValues(product(dyShape), 2) },
      ];
      const compute = (xs: tf.Tensor, dy: tf.Tensor): tf.Tensor =>
        // The op is not exported by tfjs, so the kernel is run directly, as the conv2d gradient does.
        tf.engine().runKernel('Conv2DBackpropFilter', { x: xs, dy }, { strides, pad, dataFormat: 'NHWC', filterShape: filter }) as tf.Tensor;
      const expected = await onBackend('cpu', inputs, compute);
      const actual = await onBackend('wasm', inputs, compute);
      expect(relativeError(actual, expected)).toBeLessThan(1e-5);
    });
  });

  it.each(CASES)('Conv2DBackpropInput $name', async ({ x, filter, strides, pad }) => {
    registerWasmTrainingKernels();
    const convOut = tf.tidy(() => tf.conv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros(filter) as tf.Tensor4D, strides, pad));
    const dyShape = convOut.shape;
    convOut.dispose();
    const inputs = [
      { shape: dyShape, values: randomValues(product(dyShape), 3) },
      { shape: filter, values: randomValues(product(filter), 4) },
    ];
    const compute = (dy: tf.Tensor, w: tf.Tensor): tf.Tensor =>
      tf.conv2dTranspose(dy as tf.Tensor4D, w as tf.Tensor4D, x, strides, pad);
    const expected = await onBackend('cpu', inputs, compute);
    const actual = await onBackend('wasm', inputs, compute);
    expect(relativeError(actual, expected)).toBeLessThan(1e-5);
  });

  it('leaves no intermediate tensors behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor(randomValues(2 * 8 * 8 * 3, 5), [2, 8, 8, 3]) as tf.Tensor4D;
    const w = tf.tensor(randomValues(3 * 3 * 3 * 4, 6), [3, 3, 3, 4]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const dataBefore = backend.numDataIds();
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum())([x, w]);
    tf.dispose([dx!, dw!]);
    expect(tf.memory().numTensors).toBe(before);
    expect(backend.numDataIds()).toBe(dataBefore);
    tf.dispose([x, w]);
  });
});

describe('wasm copy kernels (Concat, SplitV) against the cpu backend', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each([
    { name: 'channels of 4D', shapes: [[2, 3, 4, 5], [2, 3, 4, 2], [2, 3, 4, 300]], axis: 3 },
    { name: 'middle axis', shapes: [[2, 3, 4], [2, 1, 4]], axis: 1 },
    { name: 'first axis', shapes: [[2, 3], [1, 3]], axis: 0 },
  ])('Concat and its gradient (SplitV): $name', async ({ shapes, axis }) => {
    const inputs = shapes.map((shape, i) => ({ shape, values: randomValues(product(shape), 20 + i) }));
    const outputGradientShape = shapes[0]!.map((size, a) => (a === axis ? shapes.reduce((t, s) => t + s[a]!, 0) : size));
    const upstream = { shape: outputGradientShape, values: randomValues(product(outputGradientShape), 30) };
    const compute = (...tensors: tf.Tensor[]): tf.Tensor => {
      const weights = tensors.at(-1)!;
      const parts = tensors.slice(0, -1);
      const concatenated = tf.concat(parts, axis);
      const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(tf.concat(xs, axis), weights)))(parts);
      return tf.concat([concatenated.flatten(), ...grads.map((g) => g.flatten())]);
    };
    const expected = await onBackend('cpu', [...inputs, upstream], compute);
    const actual = await onBackend('wasm', [...inputs, upstream], compute);
    expect(Array.from(actual)).toEqual(Array.from(expected));
  });

  it('keeps int32 data', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    const b = tf.tensor2d([5, 6], [2, 1], 'int32');
    const joined = tf.concat([a, b], 1);
    expect(joined.dtype).toBe('int32');
    expect(joined.arraySync()).toEqual([[1, 2, 5], [3, 4, 6]]);
    const [left, right] = tf.split(joined, [2, 1], 1);
    expect(left!.arraySync()).toEqual([[1, 2], [3, 4]]);
    expect(right!.arraySync()).toEqual([[5], [6]]);
    tf.dispose([a, b, joined, left!, right!]);
  });
});

describe('wasm MaxPoolGrad against the cpu backend', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it.each([
    { name: '2x2 stride 2, random', shape: [2, 6, 8, 3], ties: false, pad: 'valid' as const, size: 2 },
    { name: '2x2 stride 2, ties and -Infinity (first maximum wins)', shape: [2, 4, 4, 2], ties: true, pad: 'valid' as const, size: 2 },
    { name: '3x3 stride 2 same (original kernel)', shape: [1, 7, 7, 2], ties: false, pad: 'same' as const, size: 3 },
  ])('$name', async ({ shape, ties, pad, size }) => {
    const values = randomValues(product(shape), 40);
    if (ties) {
      // Quantised values make equal maxima common; a few -Infinity entries too.
      values.forEach((v, i) => (values[i] = i % 7 === 0 ? -Infinity : Math.round(v * 2) / 2));
    }
    const pooledShape = [shape[0]!, Math.ceil(shape[1]! / 2), Math.ceil(shape[2]! / 2), shape[3]!];
    const upstream = { shape: pooledShape, values: randomValues(product(pooledShape), 41) };
    const compute = (x: tf.Tensor, weights: tf.Tensor): tf.Tensor =>
      tf.grad((input: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(input as tf.Tensor4D, size, 2, pad), weights)))(x);
    const expected = await onBackend('cpu', [{ shape, values }, upstream], compute);
    const actual = await onBackend('wasm', [{ shape, values }, upstream], compute);
    if (size === 2) {
      expect(Array.from(actual)).toEqual(Array.from(expected));
    } else {
      // Overlapping windows: the original kernel sums in another order than the cpu backend.
      expect(relativeError(actual, expected)).toBeLessThan(1e-6);
    }
  });
});
