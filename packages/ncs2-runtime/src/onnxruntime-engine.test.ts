import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBundleError, ShapeMismatchError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPointwise, writeFixtureBundle } from '../test/bundle-fixture.js';
import { EngineError, createEngine, onnxRuntimeFactory, onnxRuntimeWebFactory, type EngineFactory } from './index.js';

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

const ENGINES: readonly [string, string, EngineFactory][] = [
  ['onnxruntime', 'onnxruntime-node', onnxRuntimeFactory],
  ['onnxruntime-web', 'onnxruntime-web', onnxRuntimeWebFactory],
];

describe.each(ENGINES)('ONNX Runtime engine %s (%s)', (name, library, factory) => {
  it('loads a bundle, reports NHWC layout and runs a batch of 3 like the hand-computed model', async () => {
    const { engine } = await createEngine(name, { threads: 1 });
    const layout = await engine.load(bundle);
    expect(layout).toEqual({ layout: 'NHWC', input: [2, 3, 2], outputChannels: 1, file: path.join(bundle, 'model.onnx'), format: 'onnx' });
    expect(engine.device).toBe('CPU');
    expect(engine.version).toMatch(name === 'onnxruntime' ? /^onnxruntime-node \d+\.\d+\.\d+$/ : /^onnxruntime-web \d+\.\d+\.\d+ \(wasm, 1 thread\)$/);
    const output = await engine.run(input, 3);
    expect(output).toHaveLength(3 * 2 * 3);
    const expected = expectedPointwise(input);
    output.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 6));
    await engine.dispose();
  });

  it('loads the INT8 model (files.onnxInt8) when asked, and never the FP32 model in its place', async () => {
    const { engine } = await createEngine(name, { int8: true });
    await expect(engine.load(bundle)).rejects.toThrow(ModelBundleError);
    await expect(engine.load(bundle)).rejects.toThrow(`has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`brats export ${bundle} --precision int8 --data DATASET\``);
    // A bundle whose INT8 entry names a copy of the model: that file is the one loaded.
    const int8 = path.join(dir, `int8-${name}`);
    await fs.cp(bundle, int8, { recursive: true });
    await fs.copyFile(path.join(int8, 'model.onnx'), path.join(int8, 'model-int8.onnx'));
    const manifest = JSON.parse(await fs.readFile(path.join(int8, 'brats-model.json'), 'utf8'));
    manifest.files.onnxInt8 = 'model-int8.onnx';
    await fs.writeFile(path.join(int8, 'brats-model.json'), JSON.stringify(manifest));
    expect((await engine.load(int8)).file).toBe(path.join(int8, 'model-int8.onnx'));
    await engine.dispose();
  });

  it('runs several batches in flight at once', async () => {
    const { engine } = await createEngine(name);
    await engine.load(bundle);
    const slices = [input.slice(0, 12), input.slice(12, 24), input.slice(24, 36)];
    const outputs = await Promise.all(slices.map((slice) => engine.run(slice, 1)));
    expect(outputs.flatMap((output) => [...output])).toEqual([...(await engine.run(input, 3))]);
    await engine.dispose();
  });

  it('has no perf counters unless asked', async () => {
    const { engine } = await createEngine(name);
    await engine.load(bundle);
    await engine.run(input, 3);
    expect(await engine.perfCounters()).toBeUndefined();
    await engine.dispose();
  });

  it('rejects a wrong input size with a ShapeMismatchError naming the NHWC shapes', async () => {
    const { engine } = await createEngine(name);
    await engine.load(bundle);
    await expect(engine.run(input, 2)).rejects.toThrow(ShapeMismatchError);
    await expect(engine.run(input, 2)).rejects.toThrow('expected shape [2, 2, 3, 2], found [3, 2, 3, 2]');
    await expect(engine.run(input.subarray(1), 3)).rejects.toThrow('found [35]');
    await engine.dispose();
  });

  it('refuses to run before load, a GPU device, and a bundle without an ONNX file', async () => {
    const { engine } = await createEngine(name);
    await expect(engine.run(input, 3)).rejects.toThrow(EngineError);
    await expect(factory.create({ device: 'GPU' })).rejects.toThrow(`device 'GPU' is not supported; ${library} runs on CPU`);
    await expect(factory.create({ threads: 0 })).rejects.toThrow(EngineError);
    const tfjsOnly = await writeFixtureBundle(path.join(dir, 'tfjs-only'), { tfjs: 'model.json' });
    await expect(engine.load(tfjsOnly)).rejects.toThrow(ModelBundleError);
    await expect(engine.load(tfjsOnly)).rejects.toThrow(/has no ONNX model/);
  });

  it('probes as installed on CPU', async () => {
    const probe = await factory.probe();
    expect(probe).toMatchObject({ name, installed: true, devices: ['CPU'] });
    expect(probe.version).toMatch(new RegExp(`^${library} \\d+\\.\\d+\\.\\d+`));
  });
});

describe('the native engine', () => {
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
});

describe('the WebAssembly engine', () => {
  it('has no per-layer timings even when asked (onnxruntime-web writes no profile to read)', async () => {
    const { engine } = await createEngine('onnxruntime-web', { perfCounters: true });
    await engine.load(bundle);
    await engine.run(input, 3);
    expect(await engine.perfCounters()).toBeUndefined();
    await engine.dispose();
  });

  it('refuses a thread count other than the one its runtime started with, instead of ignoring it', async () => {
    // The first test of this file started the wasm runtime with one thread.
    await expect(onnxRuntimeWebFactory.create({ threads: 2 })).rejects.toThrow(/threads 2 asked for, but the WebAssembly runtime of this process already runs 1/);
    const same = await onnxRuntimeWebFactory.create({ threads: 1 });
    await same.dispose();
  });

  it('gives the same probabilities as the native engine on the fixture model', async () => {
    const native = (await createEngine('onnxruntime')).engine;
    const web = (await createEngine('onnxruntime-web')).engine;
    await native.load(bundle);
    await web.load(bundle);
    const [a, b] = await Promise.all([native.run(input, 3), web.run(input, 3)]);
    [...b].forEach((value, index) => expect(value).toBeCloseTo(a[index]!, 6));
    await Promise.all([native.dispose(), web.dispose()]);
  });
});
