import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ArgumentError } from '@brats/io';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxExportError, exportOnnx } from './index.js';
import { buildUnet, type UnetOptions } from '../model.js';
import { randomInput, randomiseBatchNorm } from './test-helpers.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-onnx-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs the exported graph in ONNX Runtime on NHWC input and returns the NHWC output. */
async function runOnnx(bytes: Uint8Array, input: Float32Array, shape: readonly number[]): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
  try {
    const result = await session.run({ input: new ort.Tensor('float32', input, shape) });
    const output = result.probabilities!;
    return { data: output.data as Float32Array, dims: output.dims };
  } finally {
    await session.release();
  }
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i += 1) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

async function expectParity(model: tf.LayersModel, batch: number, seed: number, opset: 13 | 17 = 17): Promise<number> {
  const [, height, width, channels] = model.inputs[0]!.shape as number[];
  const shape = [batch, height!, width!, channels!];
  const input = randomInput(shape.reduce((a, b) => a * b, 1), seed);
  const expected = tf.tidy(() => (model.predict(tf.tensor4d(input, shape as [number, number, number, number])) as tf.Tensor).dataSync());
  const { data, dims } = await runOnnx(exportOnnx(model, { opset }), input, shape);
  expect(dims).toEqual(model.outputs[0]!.shape.map((size, axis) => (axis === 0 ? batch : size)));
  const difference = maxAbsDifference(data, expected);
  expect(difference).toBeLessThan(1e-4);
  return difference;
}

const small = { inputShape: [32, 32, 4], filters: 4, depth: 2, seed: 3 } as const satisfies UnetOptions;

/** conv (ReLU) → batch norm → max pool → conv (sigmoid): a batch norm that cannot fold into its convolution. */
function buildStandaloneBatchNormModel(): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heUniform({ seed: 1 }) }).apply(input);
  x = tf.layers.batchNormalization({ epsilon: 0.01 }).apply(x);
  x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x);
  x = tf.layers.conv2d({ filters: 2, kernelSize: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.heUniform({ seed: 2 }) }).apply(x);
  const model = tf.model({ inputs: input, outputs: x as tf.SymbolicTensor });
  randomiseBatchNorm(model, 5);
  return model;
}

describe('exportOnnx parity with tfjs (ONNX Runtime)', () => {
  it.each([
    ['bilinear', false, 1, 17],
    ['transpose', false, 3, 17],
    ['bilinear', true, 3, 17],
    ['transpose', true, 1, 13],
  ] as const)('buildUnet %s upsampling, batch norm %s, %i outputs, opset %i: max abs diff < 1e-4 on a batch of 2', async (upsampling, batchNorm, outputChannels, opset) => {
    const model = buildUnet({ ...small, upsampling, batchNorm, outputChannels });
    randomiseBatchNorm(model, 17);
    await expectParity(model, 2, 11, opset);
    model.dispose();
  });

  it('keeps a batch norm after a ReLU as a BatchNormalization node', async () => {
    const model = buildStandaloneBatchNormModel();
    await expectParity(model, 2, 12, 13);
    model.dispose();
  });

  it('matches the seed-size U-Net (144x144x4, f=16, depth 4, bilinear) on one slice', async () => {
    const model = buildUnet({ seed: 7 });
    expect(model.countParams()).toBe(1_962_769);
    await expectParity(model, 1, 5);
    model.dispose();
  });
});

describe('exportOnnx single layers against hand-computed values', () => {
  it('bilinear 2x upsampling uses the asymmetric convention (source x = out / 2, last pixel repeated)', async () => {
    const input = tf.input({ shape: [1, 3, 1] });
    const output = tf.layers.upSampling2d({ size: [1, 2], interpolation: 'bilinear' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    const { data } = await runOnnx(exportOnnx(model), Float32Array.from([0, 4, 10]), [1, 1, 3, 1]);
    // Output x samples the source at 0, 0.5, 1, 1.5, 2, 2.5 (clamped to 2).
    expect(Array.from(data)).toEqual([0, 2, 4, 7, 10, 10]);
    expect(Array.from(tf.tidy(() => (model.predict(tf.tensor4d([0, 4, 10], [1, 1, 3, 1])) as tf.Tensor).dataSync()))).toEqual([0, 2, 4, 7, 10, 10]);
  });

  it.each([
    [2, 2, 'same'],
    [3, 2, 'same'],
    [3, 2, 'valid'],
    [1, 2, 'same'],
  ] as const)('Conv2DTranspose kernel %i stride %i %s matches tfjs', async (kernelSize, strides, padding) => {
    const input = tf.input({ shape: [5, 4, 3] });
    const output = tf.layers
      .conv2dTranspose({ filters: 2, kernelSize, strides, padding, kernelInitializer: tf.initializers.randomNormal({ seed: 1 }), biasInitializer: 'ones' })
      .apply(input) as tf.SymbolicTensor;
    await expectParity(tf.model({ inputs: input, outputs: output }), 2, 4);
  });

  it.each([
    [3, 2, 'same'],
    [3, 1, 'valid'],
    [4, 3, 'same'],
  ] as const)('Conv2D kernel %i stride %i %s and max pooling same padding match tfjs', async (kernelSize, strides, padding) => {
    const input = tf.input({ shape: [7, 6, 2] });
    const conv = tf.layers.conv2d({ filters: 3, kernelSize, strides, padding, activation: 'tanh', kernelInitializer: tf.initializers.randomNormal({ seed: 2 }) }).apply(input);
    const pooled = tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }).apply(conv) as tf.SymbolicTensor;
    await expectParity(tf.model({ inputs: input, outputs: pooled }), 2, 9);
  });
});

describe('exportOnnx errors', () => {
  it('names an unsupported layer', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const output = tf.layers.averagePooling2d({ poolSize: 2, name: 'avg' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    expect(() => exportOnnx(model)).toThrow(OnnxExportError);
    expect(() => exportOnnx(model)).toThrow(/layer 'avg': layer class AveragePooling2D has no ONNX mapping/);
  });

  it('rejects an opset other than 13 or 17', () => {
    const input = tf.input({ shape: [4, 4, 1] });
    const model = tf.model({ inputs: input, outputs: tf.layers.activation({ activation: 'sigmoid' }).apply(input) as tf.SymbolicTensor });
    expect(() => exportOnnx(model, { opset: 11 as 17 })).toThrow(ArgumentError);
  });
});

const python = referencePython(['onnx']);
describe.skipIf(python === undefined)(`Debian python3-onnx reads the export${python === undefined ? ' (skipped: /usr/bin/python3 with onnx is not installed)' : ''}`, () => {
  it('passes onnx.checker with full shape inference and declares the NHWC layout', async () => {
    const model = buildUnet({ ...small, upsampling: 'transpose', batchNorm: true });
    const file = path.join(dir, 'checked.onnx');
    await fs.writeFile(file, exportOnnx(model));
    const report = runPythonJson<{ opset: number; ir: number; input: (number | string)[]; output: (number | string)[]; ops: string[]; inferred: (number | string)[] }>(
      python!,
      `
import json, sys, onnx
model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
print(json.dumps({
  "opset": model.opset_import[0].version, "ir": model.ir_version,
  "input": dims(model.graph.input[0]), "output": dims(model.graph.output[0]),
  "inferred": dims(inferred.graph.output[0]),
  "names": [model.graph.input[0].name, model.graph.output[0].name],
  "ops": sorted(set(n.op_type for n in model.graph.node)),
}))
`,
      [file],
    );
    expect(report).toEqual({
      opset: 17,
      ir: 8,
      input: ['batch', 32, 32, 4],
      names: ['input', 'probabilities'],
      output: ['batch', 32, 32, 1],
      inferred: ['batch', 32, 32, 1],
      ops: ['Concat', 'Conv', 'ConvTranspose', 'MaxPool', 'Relu', 'Sigmoid', 'Transpose'],
    });
  });
});
