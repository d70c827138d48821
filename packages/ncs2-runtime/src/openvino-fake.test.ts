// The OpenVINO engine against a stand-in addon (test/fake-openvino.mjs): its own logic runs for real, the
// OpenVINO runtime does not. The real runtime is tested in openvino-engine.test.ts where openvino-node installs.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelBundleError, readModelManifest } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPointwise, writeFixtureBundle } from '../test/bundle-fixture.js';

const fakeModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fake-openvino.mjs');
process.env.BRATS_OPENVINO_MODULE = fakeModule;
const { EngineError, convertBundleToIr, createEngine, openvinoFactory } = await import('./index.js');
const { calls } = (await import(fakeModule)) as { calls: { readModel: [string, string | undefined][]; compileModel: [string, Record<string, unknown>][]; maxInFlight: number } };

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-openvino-fake-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
  delete process.env.BRATS_OPENVINO_MODULE;
});

describe('OpenVINO engine logic (stand-in runtime)', () => {
  it('probes devices and version, and auto prefers OpenVINO when it loads', async () => {
    expect(await openvinoFactory.probe()).toEqual({ name: 'openvino', installed: true, version: 'openvino-node 2026.4.0-fake', devices: ['CPU', 'GPU.0'] });
    const selection = await createEngine('auto');
    expect(selection.engine.name).toBe('openvino');
    expect(selection.reason).toBe('auto: openvino (openvino-node 2026.4.0-fake) is the preferred engine installed');
  });

  it('compiles the ONNX file with the hint and threads, and runs batches through the request pool', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'onnx'));
    const { engine } = await createEngine('openvino', { device: 'cpu', performanceHint: 'THROUGHPUT', threads: 2 });
    const layout = await engine.load(bundle);
    expect(layout).toMatchObject({ format: 'onnx', file: path.join(bundle, 'model.onnx'), input: [2, 3, 2] });
    expect(calls.compileModel.at(-1)).toEqual(['CPU', { PERFORMANCE_HINT: 'THROUGHPUT', INFERENCE_NUM_THREADS: 2 }]);
    const input = Float32Array.from({ length: 12 }, (_, i) => i - 6);
    const outputs = await Promise.all(Array.from({ length: 5 }, () => engine.run(input, 1)));
    outputs.forEach((output) => expectedPointwise(input).forEach((value, index) => expect(output[index]).toBeCloseTo(value, 6)));
    expect(calls.maxInFlight).toBe(2);
    expect(await engine.perfCounters()).toBeUndefined();
    await engine.dispose();
  });

  it('converts ONNX to FP32 and FP16 IR, records them, and then loads the asked precision', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'ir'));
    const written = await convertBundleToIr(bundle);
    expect(written).toEqual([
      { precision: 'FP32', xml: 'openvino/FP32/model.xml', bin: 'openvino/FP32/model.bin' },
      { precision: 'FP16', xml: 'openvino/FP16/model.xml', bin: 'openvino/FP16/model.bin' },
    ]);
    expect(await fs.readFile(path.join(bundle, 'openvino/FP16/model.xml'), 'utf8')).toContain('precision="FP16"');
    expect(await fs.readFile(path.join(bundle, 'openvino/FP32/model.xml'), 'utf8')).toContain('precision="FP32"');
    expect(await fs.readdir(path.join(bundle, 'openvino'))).toEqual(['FP16', 'FP32']);
    expect((await readModelManifest(bundle)).files.openvino).toEqual({
      FP32: { xml: 'openvino/FP32/model.xml', bin: 'openvino/FP32/model.bin' },
      FP16: { xml: 'openvino/FP16/model.xml', bin: 'openvino/FP16/model.bin' },
    });
    const { engine } = await createEngine('openvino', { precision: 'FP16' });
    const layout = await engine.load(bundle);
    expect(layout.format).toBe('openvino-ir');
    expect(calls.readModel.at(-1)).toEqual([path.join(bundle, 'openvino/FP16/model.xml'), path.join(bundle, 'openvino/FP16/model.bin')]);
  });

  it('refuses a precision the bundle has no IR for instead of loading the FP32 model under its name', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'fp32-only'));
    await convertBundleToIr(bundle, ['FP32']);
    const readsBefore = calls.readModel.length;
    const { engine } = await createEngine('openvino', { precision: 'FP16' });
    const failure = await engine.load(bundle).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(ModelBundleError);
    const error = failure as ModelBundleError;
    expect(error.path).toBe(bundle);
    // The bundle, the missing file and the command that writes it.
    expect(error.message).toBe(
      `${bundle}: has no FP16 OpenVINO IR (openvino/FP16/model.xml); write it with \`brats export ${bundle} --format openvino --fp16\` (convertBundleToIr), or leave the precision unset to load its FP32 IR`,
    );
    // Nothing was read: neither the FP32 IR nor model.onnx stood in for FP16.
    expect(calls.readModel.length).toBe(readsBefore);
    await engine.dispose();

    // An ONNX-only bundle asked for FP32 IR is refused the same way, with the FP32 export command.
    const onnxOnly = await writeFixtureBundle(path.join(dir, 'onnx-only'));
    const { engine: fp32 } = await createEngine('openvino', { precision: 'FP32' });
    await expect(fp32.load(onnxOnly)).rejects.toThrow(
      `${onnxOnly}: has no FP32 OpenVINO IR (openvino/FP32/model.xml); write it with \`brats export ${onnxOnly} --format openvino\` (convertBundleToIr), or leave the precision unset to load its model.onnx`,
    );
    // With no precision asked, model.onnx is still the documented choice.
    const { engine: plain } = await createEngine('openvino');
    expect((await plain.load(onnxOnly)).format).toBe('onnx');
    await plain.dispose();
  });

  it('loads the INT8 model as an ONNX graph, even where the bundle has IR, and refuses INT8 together with an IR precision', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'int8'));
    await convertBundleToIr(bundle, ['FP32']);
    const { engine: missing } = await createEngine('openvino', { int8: true });
    await expect(missing.load(bundle)).rejects.toThrow(`${bundle}: has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`brats export ${bundle} --precision int8 --data DATASET\``);
    await fs.copyFile(path.join(bundle, 'model.onnx'), path.join(bundle, 'model-int8.onnx'));
    const manifest = await readModelManifest(bundle);
    await fs.writeFile(path.join(bundle, 'brats-model.json'), JSON.stringify({ ...manifest, files: { ...manifest.files, onnxInt8: 'model-int8.onnx' } }));
    const { engine } = await createEngine('openvino', { int8: true });
    expect(await engine.load(bundle)).toMatchObject({ format: 'onnx', file: path.join(bundle, 'model-int8.onnx') });
    expect(calls.readModel.at(-1)).toEqual([path.join(bundle, 'model-int8.onnx'), undefined]);
    await engine.dispose();
    const { engine: both } = await createEngine('openvino', { int8: true, precision: 'FP16' });
    await expect(both.load(bundle)).rejects.toThrow(`${bundle}: INT8 and the FP16 IR are two different models; ask for one of them`);
    await missing.dispose();
    await both.dispose();
  });

  it('refuses an IR that the manifest lists but the folder lost', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'lost-ir'));
    await convertBundleToIr(bundle, ['FP32', 'FP16']);
    await fs.rm(path.join(bundle, 'openvino', 'FP16', 'model.bin'));
    const { engine } = await createEngine('openvino', { precision: 'FP16' });
    await expect(engine.load(bundle)).rejects.toThrow(ModelBundleError);
    await expect(engine.load(bundle)).rejects.toThrow(`lists the FP16 IR file openvino/FP16/model.bin, which is missing; write it again with \`brats export ${bundle} --format openvino --fp16\``);
  });

  it.each([
    ['VPU', /not an OpenVINO device name/],
    ['NPU', /device NPU is not available here; available: CPU, GPU\.0/],
  ])('rejects device %s', async (device, message) => {
    await expect(createEngine('openvino', { device })).rejects.toThrow(EngineError);
    await expect(createEngine('openvino', { device })).rejects.toThrow(message);
  });

  it('needs an ONNX model to convert', async () => {
    const bundle = await writeFixtureBundle(path.join(dir, 'tfjs-only'), { tfjs: 'model.json' });
    await expect(convertBundleToIr(bundle)).rejects.toThrow(ModelBundleError);
  });
});
