import { openvinoFactory } from '@brats/ncs2-runtime';
import { describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

const openvino = await openvinoFactory.probe();

describe('brats engines', () => {
  it('lists the engines as JSON: both ONNX Runtimes installed on CPU, TensorFlow.js last', async () => {
    const { code, stdout } = await runCaptured(['engines', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.engines.map((engine: { name: string }) => engine.name)).toEqual(['openvino', 'onnxruntime', 'onnxruntime-web', 'tfjs']);
    expect(report.engines[2]).toMatchObject({ name: 'onnxruntime-web', installed: true, version: expect.stringMatching(/^onnxruntime-web \d+\.\d+\.\d+ \(wasm\)$/), devices: ['CPU'] });
    expect(report.engines[3]).toMatchObject({ name: 'tfjs', installed: true, version: '@tensorflow/tfjs 4.22.0' });
    expect(report.engines[1]).toMatchObject({ name: 'onnxruntime', installed: true, devices: ['CPU'] });
    expect(report.engines[0].installed).toBe(openvino.installed);
    expect(report.auto.engine).toBe(openvino.installed ? 'openvino' : 'onnxruntime');
  });

  it.skipIf(openvino.installed)('prints why OpenVINO is missing, how to install it, and what auto picks (skipped where openvino-node is installed)', async () => {
    const { code, stdout } = await runCaptured(['engines']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^openvino\s+no\s+-\s+-$/m);
    expect(stdout).toMatch(/^onnxruntime\s+yes\s+onnxruntime-node \d+\.\d+\.\d+\s+CPU$/m);
    expect(stdout).toMatch(/^onnxruntime-web\s+yes\s+onnxruntime-web \d+\.\d+\.\d+ \(wasm\)\s+CPU$/m);
    expect(stdout).toContain('pnpm add openvino-node');
    expect(stdout).toContain('auto -> onnxruntime (openvino is not installed)');
    expect(stdout).toContain('2022.3 LTS');
  });
});
