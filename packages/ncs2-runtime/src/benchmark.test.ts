import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArgumentError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFixtureBundle } from '../test/bundle-fixture.js';
import type { InferenceEngine } from './engine.js';
import { EngineError, benchmarkEngine, createEngine, summarizeLatencies } from './index.js';

describe('summarizeLatencies', () => {
  it.each([
    // mean, nearest-rank p50 = sorted[ceil(0.5 n) - 1], p95 = sorted[ceil(0.95 n) - 1]
    [[5], { mean: 5, p50: 5, p95: 5, min: 5, max: 5 }],
    [[4, 1, 3, 2], { mean: 2.5, p50: 2, p95: 4, min: 1, max: 4 }],
    [Array.from({ length: 20 }, (_, i) => 20 - i), { mean: 10.5, p50: 10, p95: 19, min: 1, max: 20 }],
    [Array.from({ length: 21 }, (_, i) => i), { mean: 10, p50: 10, p95: 19, min: 0, max: 20 }],
  ])('%j', (samples, expected) => {
    expect(summarizeLatencies(samples)).toEqual(expected);
  });

  it('rejects no samples', () => {
    expect(() => summarizeLatencies([])).toThrow(ArgumentError);
  });
});

/** An engine that records the batch sizes it was given. */
function recordingEngine(): InferenceEngine & { batches: number[] } {
  const batches: number[] = [];
  return {
    name: 'recording',
    device: 'CPU',
    version: 'recording 1',
    layout: { layout: 'NHWC', input: [2, 2, 1], outputChannels: 1, file: 'none', format: 'onnx' },
    batches,
    load: async () => {
      throw new Error('not used');
    },
    run: async (input, batch) => {
      expect(input.length).toBe(batch * 4);
      batches.push(batch);
      return new Float32Array(batch * 4);
    },
    perfCounters: async () => undefined,
    dispose: async () => undefined,
  };
}

describe('benchmarkEngine', () => {
  it('runs warm-up, timed batches, then the scan in batches with a smaller last one', async () => {
    const engine = recordingEngine();
    const result = await benchmarkEngine(engine, { batch: 4, iterations: 3, warmup: 1, scanSlices: 10 });
    expect(engine.batches).toEqual([4, 4, 4, 4, 4, 4, 2]);
    expect(result).toMatchObject({ engine: 'recording', device: 'CPU', batch: 4, iterations: 3, input: [2, 2, 1], scanSlices: 10 });
    expect(result.slicesPerSecond).toBeCloseTo((4 * 1000) / result.latencyMs.mean, 9);
  });

  it('defaults to the seed: batch 1, 144-slice scan', async () => {
    const engine = recordingEngine();
    const result = await benchmarkEngine(engine, { iterations: 1, warmup: 0 });
    expect(engine.batches).toEqual(Array.from({ length: 145 }, () => 1));
    expect(result.scanSlices).toBe(144);
  });

  it.each([
    [{ batch: 0 }],
    [{ iterations: 0 }],
    [{ warmup: -1 }],
    [{ scanSlices: 1.5 }],
  ])('rejects %j', async (options) => {
    await expect(benchmarkEngine(recordingEngine(), options)).rejects.toThrow(ArgumentError);
  });

  it('refuses an engine without a model', async () => {
    const engine = { ...recordingEngine(), layout: undefined };
    await expect(benchmarkEngine(engine)).rejects.toThrow(EngineError);
  });
});

describe('benchmarkEngine with ONNX Runtime', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-bench-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('measures a real engine', async () => {
    const { engine } = await createEngine('onnxruntime', { threads: 1 });
    await engine.load(await writeFixtureBundle(path.join(dir, 'bundle')));
    const result = await benchmarkEngine(engine, { batch: 8, iterations: 5 });
    expect(result.engine).toBe('onnxruntime');
    expect(result.latencyMs.min).toBeLessThanOrEqual(result.latencyMs.p50);
    expect(result.latencyMs.p50).toBeLessThanOrEqual(result.latencyMs.p95);
    expect(result.latencyMs.p95).toBeLessThanOrEqual(result.latencyMs.max);
    expect(result.scanSeconds).toBeGreaterThan(0);
    await engine.dispose();
  });
});
