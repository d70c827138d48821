import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
let bundle: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-bench-cli-'));
  bundle = path.join(dir, 'bundle');
  await writeUntrainedBundle(bundle, { crop: [16, 16, 16], filters: 2, depth: 2, seed: 4 });
  await exportBundleToOnnx(bundle);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats bench', () => {
  it('prints one JSON object with the seed --stats figures on ONNX Runtime', async () => {
    const { code, stdout, stderr } = await runCaptured(['bench', '--model', bundle, '--engine', 'onnxruntime', '--batch', '4', '--iterations', '3', '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({ engine: 'onnxruntime', device: 'CPU', batch: 4, iterations: 3, input: [16, 16, 4], scanSlices: 144, format: 'onnx', model: path.join(bundle, 'model.onnx') });
    for (const key of ['mean', 'p50', 'p95']) expect(result.latencyMs[key]).toBeGreaterThan(0);
    expect(result.slicesPerSecond).toBeCloseTo((4 * 1000) / result.latencyMs.mean, 6);
    expect(result.scanSeconds).toBeGreaterThan(0);
    expect(stderr).toMatch(/^engine: onnxruntime \(onnxruntime-node [\d.]+\) on CPU: engine 'onnxruntime' was asked for\n$/);
  });

  it('prints text with per-layer counters', async () => {
    const { code, stdout } = await runCaptured(['bench', '--model', bundle, '--engine', 'onnxruntime', '--iterations', '2', '--perf-counters']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^latency {5}mean [\d.]+ ms, p50 [\d.]+ ms, p95 [\d.]+ ms per batch$/m);
    expect(stdout).toMatch(/^throughput {2}[\d.]+ slices\/s$/m);
    expect(stdout).toMatch(/^scan {8}144 slices in [\d.]+ s$/m);
    expect(stdout).toMatch(/^ +[\d.]+ ms {2}Conv/m);
  });

  it('times every installed engine in turn with --engine all, each beside the fastest', async () => {
    const { code, stdout } = await runCaptured(['bench', '--model', bundle, '--engine', 'all', '--batch', '4', '--iterations', '3', '--json']);
    expect(code).toBe(0);
    const { results, skipped } = JSON.parse(stdout) as { results: { engine: string; slicesPerSecond: number; relativeToFastest: number }[]; skipped: { engine: string; reason: string }[] };
    // Both ONNX Runtimes read model.onnx; TensorFlow.js reads the bundle's model.json; OpenVINO only where installed.
    expect(results.map((result) => result.engine)).toEqual(expect.arrayContaining(['onnxruntime', 'onnxruntime-web', 'tfjs']));
    const fastest = Math.max(...results.map((result) => result.slicesPerSecond));
    for (const result of results) expect(result.relativeToFastest).toBeCloseTo(result.slicesPerSecond / fastest, 9);
    expect(results.some((result) => result.relativeToFastest === 1)).toBe(true);
    expect(skipped.map((skip) => skip.engine)).toEqual(results.some((result) => result.engine === 'openvino') ? [] : ['openvino']);
    const text = await runCaptured(['bench', '--model', bundle, '--engine', 'all', '--iterations', '2']);
    expect(text.stdout).toMatch(/^onnxruntime-web +onnxruntime-web [\d.]+ \(wasm, \d+ threads?\) +[\d.]+ +[\d.]+ s {2}[\d.]+x$/m);
  });

  it.each([
    [['--batch', '0'], 1, /--batch must be an integer in \[1, 9007199254740991\], got '0'/],
    [['--engine', 'tensorrt'], 1, /unknown inference engine 'tensorrt'; known engines: auto, openvino, onnxruntime, onnxruntime-web/],
    [['--engine', 'onnxruntime', '--device', 'GPU'], 2, /device 'GPU' is not supported/],
    [['--engine', 'openvino', '--device', 'MYRIAD'], 2, /2022\.3 LTS is the last runtime/],
  ])('exits with one line for %j', async (extra, exitCode, message) => {
    const { code, stderr } = await runCaptured(['bench', '--model', bundle, ...extra]);
    expect(code).toBe(exitCode);
    expect(stderr).toMatch(message);
  });

  it('exits 2 for a folder that is not a bundle', async () => {
    const { code, stderr } = await runCaptured(['bench', '--model', path.join(dir, 'nothing'), '--engine', 'onnxruntime']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/brats-model\.json: no model manifest here/);
  });
});
