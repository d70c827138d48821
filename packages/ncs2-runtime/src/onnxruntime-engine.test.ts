import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBundleError, ShapeMismatchError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPointwise, writeFixtureBundle } from '../test/bundle-fixture.js';
import { EngineError, createEngine, onnxRuntimeFactory } from './index.js';

let dir: string;
let bundle: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-'));
  bundle = await writeFixtureBundle(path.join(dir, 'bundle'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const input = Float32Array.from({ length: 3 * 2 * 3 * 2 }, (_, i) => (i % 7) - 3 + i / 10);

describe('ONNX Runtime engine', () => {
  it('loads a bundle, reports NHWC layout and runs a batch of 3 like the hand-computed model', async () => {
    const { engine } = await createEngine('onnxruntime', { threads: 1 });
    const layout = await engine.load(bundle);
    expect(layout).toEqual({ layout: 'NHWC', input: [2, 3, 2], outputChannels: 1, file: path.join(bundle, 'model.onnx'), format: 'onnx' });
    expect(engine.device).toBe('CPU');
    expect(engine.version).toMatch(/^onnxruntime-node \d+\.\d+\.\d+$/);
    const output = await engine.run(input, 3);
    expect(output).toHaveLength(3 * 2 * 3);
    const expected = expectedPointwise(input);
    output.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 6));
    await engine.dispose();
  });

  it('runs several batches in flight at once', async () => {
    const { engine } = await createEngine('onnxruntime');
    await engine.load(bundle);
    const slices = [input.slice(0, 12), input.slice(12, 24), input.slice(24, 36)];
    const outputs = await Promise.all(slices.map((slice) => engine.run(slice, 1)));
    expect(outputs.flatMap((output) => [...output])).toEqual([...(await engine.run(input, 3))]);
    await engine.dispose();
  });

  // ONNX Runtime fuses the sigmoid into the convolution, so the optimised graph's nodes are timed.
  it('gives per-node timings when created with perfCounters', async () => {
    const { engine } = await createEngine('onnxruntime', { perfCounters: true, threads: 1 });
    await engine.load(bundle);
    for (let i = 0; i < 4; i += 1) await engine.run(input, 3);
    const counters = await engine.perfCounters();
    expect(counters?.map((counter) => counter.type).sort()).toEqual(expect.arrayContaining(['Conv', 'Transpose']));
    expect(counters?.every((counter) => counter.runs === 4 && counter.realTimeMs >= 0)).toBe(true);
    await engine.dispose();
  });

  it('has no perf counters unless asked', async () => {
    const { engine } = await createEngine('onnxruntime');
    await engine.load(bundle);
    await engine.run(input, 3);
    expect(await engine.perfCounters()).toBeUndefined();
    await engine.dispose();
  });

  it('rejects a wrong input size with a ShapeMismatchError naming the NHWC shapes', async () => {
    const { engine } = await createEngine('onnxruntime');
    await engine.load(bundle);
    await expect(engine.run(input, 2)).rejects.toThrow(ShapeMismatchError);
    await expect(engine.run(input, 2)).rejects.toThrow('expected shape [2, 2, 3, 2], found [3, 2, 3, 2]');
    await expect(engine.run(input.subarray(1), 3)).rejects.toThrow('found [35]');
    await engine.dispose();
  });

  it('refuses to run before load, a GPU device, and a bundle without an ONNX file', async () => {
    const { engine } = await createEngine('onnxruntime');
    await expect(engine.run(input, 3)).rejects.toThrow(EngineError);
    await expect(onnxRuntimeFactory.create({ device: 'GPU' })).rejects.toThrow(/device 'GPU' is not supported; onnxruntime-node runs on CPU/);
    await expect(onnxRuntimeFactory.create({ threads: 0 })).rejects.toThrow(EngineError);
    const tfjsOnly = await writeFixtureBundle(path.join(dir, 'tfjs-only'), { tfjs: 'model.json' });
    await expect(engine.load(tfjsOnly)).rejects.toThrow(ModelBundleError);
    await expect(engine.load(tfjsOnly)).rejects.toThrow(/has no ONNX model/);
  });

  it('probes as installed on CPU', async () => {
    const probe = await onnxRuntimeFactory.probe();
    expect(probe).toMatchObject({ name: 'onnxruntime', installed: true, devices: ['CPU'] });
  });
});
