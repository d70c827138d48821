import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { ArgumentError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from './index.js';
import { ActivationRanges, quantizableActivations, quantizeQdq, uint8Parameters, withActivationOutputs } from './quantize-qdq.js';
import { buildUnet } from '../model.js';
import { randomInput } from './test-helpers.js';

const { onnx } = onnxProto;
/** A decoded graph: protobufjs fills every repeated field, which its interface types leave optional. */
type Graph = { node: InstanceType<typeof onnx.NodeProto>[]; initializer: InstanceType<typeof onnx.TensorProto>[] };
const graphOf = (bytes: Uint8Array): Graph => onnx.ModelProto.decode(bytes).graph as unknown as Graph;
const SHAPE = [4, 32, 32, 4] as const;

let dir: string;
let fp32: Uint8Array;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-qdq-'));
  fp32 = exportOnnx(buildUnet({ inputShape: [32, 32, 4], filters: 4, depth: 2, seed: 5 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function run(model: Uint8Array, input: Float32Array, optimizedModelFilePath?: string): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, ...(optimizedModelFilePath === undefined ? {} : { optimizedModelFilePath }) });
  try {
    const results = await session.run({ input: new ort.Tensor('float32', input, [...SHAPE]) });
    return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  } finally {
    await session.release();
  }
}

async function calibrated(batches: number): Promise<ActivationRanges> {
  const names = quantizableActivations(fp32);
  const calibration = withActivationOutputs(fp32, names);
  const ranges = new ActivationRanges();
  for (let seed = 1; seed <= batches; seed++) {
    const outputs = await run(calibration, randomInput(SHAPE.reduce((a, b) => a * b, 1), seed));
    for (const name of names) ranges.observe(name, outputs[name]!);
  }
  return ranges;
}

describe('static QDQ INT8 quantisation of an exported U-Net', () => {
  it('quantises the input of every convolution and the output of every ReLU', () => {
    const graph = graphOf(fp32);
    const convs = graph.node.filter((node) => node.opType === 'Conv');
    const relus = graph.node.filter((node) => node.opType === 'Relu');
    const names = quantizableActivations(fp32);
    expect(names).toEqual(expect.arrayContaining([...convs.map((node) => node.input[0]!), ...relus.map((node) => node.output[0]!)]));
    // A ReLU's output that a convolution reads is one tensor, listed once.
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain('input');
  });

  it('uint8 parameters: the range widened to hold zero, 256 levels, zero exact', () => {
    expect(uint8Parameters({ min: 0, max: 2.55 })).toEqual({ scale: Math.fround(0.01), zeroPoint: 0 });
    // [-1, 3]: scale 4 / 255, zero at round(1 / scale) = round(63.75) = 64.
    expect(uint8Parameters({ min: -1, max: 3 })).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 });
    // All positive: the range still starts at 0, so ReLU's zero is a level.
    expect(uint8Parameters({ min: 0.5, max: 5.1 })).toEqual({ scale: Math.fround(0.02), zeroPoint: 0 });
    expect(uint8Parameters({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('stores int8 weights per output channel that dequantise to the float weights within half a step', async () => {
    const { model, summary } = quantizeQdq(fp32, await calibrated(2));
    const original = graphOf(fp32);
    const quantized = graphOf(model);
    expect(summary.convolutions).toBe(original.node.filter((node) => node.opType === 'Conv').length);
    const tensor = (name: string) => quantized.initializer.find((t) => t.name === name)!;
    const floats = (bytes: Uint8Array) => new Float32Array(new Uint8Array(bytes).buffer);
    for (const conv of original.node.filter((node) => node.opType === 'Conv')) {
      const weight = original.initializer.find((t) => t.name === conv.input[1])!;
      const values = floats(weight.rawData);
      const int8 = tensor(`${conv.input[1]}/int8`);
      expect(int8.dataType).toBe(onnx.TensorProto.DataType.INT8);
      const q = new Int8Array(new Uint8Array(int8.rawData).buffer);
      const scales = floats(tensor(`${conv.input[1]}/scale`).rawData);
      const outputs = Number(weight.dims[0]);
      expect(scales.length).toBe(outputs);
      const perChannel = values.length / outputs;
      for (let o = 0; o < outputs; o++) {
        let largest = 0;
        for (let k = 0; k < perChannel; k++) {
          const v = values[o * perChannel + k]!;
          largest = Math.max(largest, Math.abs(v));
          expect(Math.abs(q[o * perChannel + k]! * scales[o]! - v)).toBeLessThanOrEqual(scales[o]! / 2 + 1e-7);
        }
        // Symmetric over 7 bits (no int16 saturation on CPUs without VNNI): the largest weight is ±63 steps.
        expect(scales[o]).toBeCloseTo(largest / 63, 7);
        expect(Math.max(...Array.from(q.subarray(o * perChannel, (o + 1) * perChannel), Math.abs))).toBe(largest > 0 ? 63 : 0);
      }
      // The float weight is gone from the graph.
      expect(quantized.initializer.some((t) => t.name === conv.input[1])).toBe(false);
    }
  });

  it('runs in ONNX Runtime as integer convolutions, close to the float model', async () => {
    const ranges = await calibrated(3);
    const { model } = quantizeQdq(fp32, ranges);
    const input = randomInput(SHAPE.reduce((a, b) => a * b, 1), 99);
    const optimized = path.join(dir, 'optimized.onnx');
    const [expected, actual] = [(await run(fp32, input)).probabilities!, (await run(model, input, optimized)).probabilities!];
    let largest = 0;
    for (let index = 0; index < expected.length; index++) largest = Math.max(largest, Math.abs(expected[index]! - actual[index]!));
    // Each layer adds at most half a step of its ranges; through this small net the sigmoid moves by a few
    // hundredths at most (0.027 measured). A wrong scale, zero point or bias scale moves it by tenths, and so did
    // 8-bit weights (0.13), whose products saturate the int16 sums of CPUs without VNNI.
    expect(largest).toBeLessThan(0.05);
    expect(largest).toBeGreaterThan(0); // it did quantise
    // ONNX Runtime fused the DequantizeLinear → Conv → ReLU → QuantizeLinear chains into integer convolutions.
    const ops = graphOf(await fs.readFile(optimized)).node.map((node) => node.opType);
    const convs = graphOf(fp32).node.filter((node) => node.opType === 'Conv').length;
    // Every convolution but the last (sigmoid, no QuantizeLinear after it) runs as QLinearConv.
    expect(ops.filter((op) => op === 'QLinearConv').length).toBe(convs - 1);
  });

  it('refuses a tensor without a calibrated range, naming it', () => {
    const names = quantizableActivations(fp32);
    const partial = new ActivationRanges();
    partial.observe(names[0]!, Float32Array.of(0, 1));
    expect(() => quantizeQdq(fp32, partial)).toThrow(ArgumentError);
    expect(() => quantizeQdq(fp32, partial)).toThrow(`has no calibrated range for activation ${names[1]}`);
  });
});
