import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPointwise, writeFixtureBundle } from '../test/bundle-fixture.js';
import { EngineUnavailableError, createEngine, openvinoFactory } from './index.js';

const probe = await openvinoFactory.probe();
const NOT_INSTALLED = `skipped: openvino-node is not installed here (${probe.reason ?? ''}); it needs Node.js >= 21 and downloads its runtime at install`;

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-openvino-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('OpenVINO engine: NCS2 (MYRIAD)', () => {
  it('explains that MYRIAD ended with OpenVINO 2022.3 and names the FP16 IR to use', async () => {
    const error = await createEngine('openvino', { device: 'MYRIAD' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as Error).message).toMatch(/removed in OpenVINO 2023\.0; 2022\.3 LTS is the last runtime/);
    expect((error as Error).message).toMatch(/openvino\/FP16\/model\.xml/);
  });
});

describe.skipIf(probe.installed)('OpenVINO engine when openvino-node is absent', () => {
  it('probes as not installed and says how to install it', () => {
    expect(probe.installed).toBe(false);
    expect(probe.devices).toEqual([]);
    expect(probe.remedy).toMatch(/pnpm add openvino-node/);
  });

  it('refuses to create, with the install hint', async () => {
    await expect(createEngine('openvino')).rejects.toThrow(EngineUnavailableError);
    await expect(createEngine('openvino')).rejects.toThrow(/Node\.js >= 21/);
  });

  it('auto falls back to ONNX Runtime and says why', async () => {
    const selection = await createEngine('auto');
    expect(selection.engine.name).toBe('onnxruntime');
    expect(selection.fallbacks.map((fallback) => fallback.name)).toEqual(['openvino']);
    expect(selection.reason).toMatch(/^auto: onnxruntime \(onnxruntime-node [\d.]+\) because openvino is unavailable: openvino-node (is not installed|did not load)/);
    await selection.engine.dispose();
  });
});

describe.skipIf(!probe.installed)(`OpenVINO engine, real runtime${probe.installed ? '' : ` (${NOT_INSTALLED})`}`, () => {
  it('runs the ONNX fixture on CPU like the hand-computed model', async () => {
    const { engine } = await createEngine('openvino', { device: 'CPU', performanceHint: 'LATENCY' });
    const bundle = await writeFixtureBundle(path.join(dir, 'real'));
    const layout = await engine.load(bundle);
    expect(layout.format).toBe('onnx');
    const input = Float32Array.from({ length: 24 }, (_, i) => i / 5 - 2);
    const output = await engine.run(input, 2);
    expectedPointwise(input).forEach((value, index) => expect(output[index]).toBeCloseTo(value, 5));
    await engine.dispose();
  });
});
