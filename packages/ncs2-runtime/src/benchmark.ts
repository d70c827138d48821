/**
 * Latency and throughput of a loaded engine, with the figures of the seed's `--stats`: mean latency per batch,
 * slices per second, and the time to segment one whole scan.
 */
import { ArgumentError } from '@brats/io';
import type { InferenceEngine } from './engine.js';
import { EngineError } from './errors.js';

/** Slices of one scan after the seed's 144-slice crop. */
export const SEED_SCAN_SLICES = 144;

/** Latency statistics in milliseconds. */
export interface LatencySummary {
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
}

/** Options of {@link benchmarkEngine}. */
export interface BenchmarkOptions {
  /** Slices per batch (default 1). */
  readonly batch?: number;
  /** Timed batches (default 20). */
  readonly iterations?: number;
  /** Untimed batches first, for allocation and kernel caches (default 2). */
  readonly warmup?: number;
  /** Slices of the scan timed end to end (default 144); 0 skips the scan. */
  readonly scanSlices?: number;
}

/** What {@link benchmarkEngine} measured. */
export interface BenchmarkResult {
  readonly engine: string;
  readonly device: string;
  readonly version: string;
  readonly batch: number;
  readonly iterations: number;
  /** Slice shape [height, width, channels]. */
  readonly input: readonly [number, number, number];
  /** Latency of one batch. */
  readonly latencyMs: LatencySummary;
  /** batch / mean latency. */
  readonly slicesPerSecond: number;
  /** Slices of the timed scan. */
  readonly scanSlices: number;
  /** Wall time to run every slice of one scan in batches of `batch`, in seconds (measured). */
  readonly scanSeconds: number;
}

/**
 * Mean, nearest-rank p50/p95, min and max of latency samples.
 * @throws {ArgumentError} for no samples.
 */
export function summarizeLatencies(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) throw new ArgumentError('summarizeLatencies', 'samples', 'must hold at least one value');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
  return {
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
    p50: rank(0.5),
    p95: rank(0.95),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

/** Deterministic values resembling normalised MRI (mean 0, unit spread), so timings do not depend on a data file. */
function syntheticSlices(length: number): Float32Array {
  const values = new Float32Array(length);
  let state = 12345;
  for (let i = 0; i < length; i += 1) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    values[i] = (state / 4294967296) * 3.4 - 1.7;
  }
  return values;
}

function checkCount(argument: string, value: number, minimum: number): void {
  if (!Number.isInteger(value) || value < minimum) throw new ArgumentError('benchmarkEngine', argument, `must be an integer >= ${minimum}, found ${value}`);
}

/**
 * Times `iterations` batches of `batch` synthetic NHWC slices on a loaded engine, then one whole scan of
 * `scanSlices` slices in batches of `batch` (the last batch smaller when needed).
 * @throws {EngineError} when the engine has no model loaded.
 * @throws {ArgumentError} for a batch, iteration, warm-up or scan count out of range.
 */
export async function benchmarkEngine(engine: InferenceEngine, options: BenchmarkOptions = {}): Promise<BenchmarkResult> {
  const layout = engine.layout;
  if (layout === undefined) throw new EngineError(engine.name, 'benchmark before load(): load a model bundle first');
  const batch = options.batch ?? 1;
  const iterations = options.iterations ?? 20;
  const warmup = options.warmup ?? 2;
  const scanSlices = options.scanSlices ?? SEED_SCAN_SLICES;
  checkCount('options.batch', batch, 1);
  checkCount('options.iterations', iterations, 1);
  checkCount('options.warmup', warmup, 0);
  checkCount('options.scanSlices', scanSlices, 0);
  const sliceSize = layout.input[0] * layout.input[1] * layout.input[2];
  const input = syntheticSlices(batch * sliceSize);
  for (let i = 0; i < warmup; i += 1) await engine.run(input, batch);
  const samples: number[] = [];
  for (let i = 0; i < iterations; i += 1) {
    const start = performance.now();
    await engine.run(input, batch);
    samples.push(performance.now() - start);
  }
  const latencyMs = summarizeLatencies(samples);
  let scanSeconds = 0;
  if (scanSlices > 0) {
    const scan = syntheticSlices(scanSlices * sliceSize);
    const start = performance.now();
    for (let first = 0; first < scanSlices; first += batch) {
      const count = Math.min(batch, scanSlices - first);
      await engine.run(scan.subarray(first * sliceSize, (first + count) * sliceSize), count);
    }
    scanSeconds = (performance.now() - start) / 1000;
  }
  return {
    engine: engine.name,
    device: engine.device,
    version: engine.version,
    batch,
    iterations,
    input: layout.input,
    latencyMs,
    slicesPerSecond: (batch * 1000) / latencyMs.mean,
    scanSlices,
    scanSeconds,
  };
}
