import { ModelBundleError } from '@brats/io';
import { UnknownEngineError, benchmarkEngine, createEngine, probeEngines, type BenchmarkResult, type EngineOptions, type IrPrecision, type PerformanceHint } from '@brats/ncs2-runtime';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
// Registers the TensorFlow.js engine, so that --engine tfjs can be timed too.
import '../engine-choice.js';
import { resolveModelArgument } from '../default-model.js';
import { UsageError } from '../errors.js';
import { parseChoice, parseInteger } from '../parse.js';

interface BenchFlags {
  model: string;
  engine: string;
  device?: string;
  batch: string;
  iterations: string;
  warmup: string;
  threads?: string;
  hint?: string;
  precision?: string;
  perfCounters?: boolean;
  json?: boolean;
}

function milliseconds(value: number): string {
  return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

/**
 * `brats bench --engine all`: every installed engine that reads the bundle, timed one after the other with the
 * same options, then one table of slices/s and scan time with each engine's speed relative to the fastest.
 */
async function benchAllEngines(context: CliContext, bundle: string, options: EngineOptions, run: { batch: number; iterations: number; warmup: number }, json: boolean): Promise<void> {
  const results: BenchmarkResult[] = [];
  const skipped: { engine: string; reason: string }[] = [];
  for (const probe of await probeEngines()) {
    if (!probe.installed) {
      skipped.push({ engine: probe.name, reason: probe.reason ?? 'not installed' });
      continue;
    }
    const { engine } = await createEngine(probe.name, options);
    try {
      await engine.load(bundle);
      context.stderr.write(`timing ${engine.name} (${engine.version}) on ${engine.device}\n`);
      results.push(await benchmarkEngine(engine, run));
    } catch (error) {
      if (!(error instanceof ModelBundleError)) throw error;
      skipped.push({ engine: probe.name, reason: error.reason });
    } finally {
      await engine.dispose();
    }
  }
  const fastest = Math.max(...results.map((result) => result.slicesPerSecond));
  if (json) {
    printLine(context, JSON.stringify({ results: results.map((result) => ({ ...result, relativeToFastest: result.slicesPerSecond / fastest })), skipped }, null, 2));
    return;
  }
  printLine(context, `batch ${run.batch} slice(s), ${run.iterations} timed batches after ${run.warmup} warm-up, every engine in turn`);
  printLine(context, `${'engine'.padEnd(18)}${'version'.padEnd(40)}${'slices/s'.padStart(10)}${'scan'.padStart(10)}  vs fastest`);
  for (const result of results) {
    printLine(
      context,
      `${result.engine.padEnd(18)}${result.version.padEnd(40)}${result.slicesPerSecond.toFixed(1).padStart(10)}${`${result.scanSeconds.toFixed(2)} s`.padStart(10)}  ${(result.slicesPerSecond / fastest).toFixed(2)}x`,
    );
  }
  for (const skip of skipped) printLine(context, `${skip.engine}: not timed, ${skip.reason}`);
}

/**
 * `brats bench --model BUNDLE [--engine NAME] [--device D] [--batch N] [--iterations N] [--json]`: the seed's
 * `--stats` figures (latency per batch, slices per second, per-layer counters) plus whole-scan latency.
 */
export function registerBenchCommand(program: Command, context: CliContext): void {
  program
    .command('bench')
    .description("time a model bundle on an inference engine: latency per batch, slices/s, a 144-slice scan (the seed's --stats)")
    .requiredOption('--model <bundle>', 'model bundle folder (with model.onnx or an OpenVINO IR) or an installed model package')
    .option('--engine <name>', 'auto, openvino, onnxruntime, onnxruntime-web, or all (every installed engine in turn)', 'auto')
    .option('--device <device>', 'CPU, GPU, NPU, AUTO (OpenVINO); CPU (ONNX Runtime)')
    .option('--batch <n>', 'slices per batch', '1')
    .option('--iterations <n>', 'timed batches', '20')
    .option('--warmup <n>', 'untimed batches first', '2')
    .option('--threads <n>', 'threads per inference (engine default when absent)')
    .option('--hint <hint>', 'OpenVINO performance hint: LATENCY or THROUGHPUT')
    .option('--precision <p>', 'OpenVINO IR to load: FP32 or FP16')
    .option('--perf-counters', 'print per-layer timings')
    .option('--json', 'print one JSON object instead of text')
    .action(async (flags: BenchFlags) => {
      const batch = parseInteger('--batch', flags.batch, 1);
      const iterations = parseInteger('--iterations', flags.iterations, 1);
      const warmup = parseInteger('--warmup', flags.warmup, 0);
      const options: EngineOptions = {
        ...(flags.device === undefined ? {} : { device: flags.device }),
        ...(flags.threads === undefined ? {} : { threads: parseInteger('--threads', flags.threads, 1) }),
        ...(flags.hint === undefined ? {} : { performanceHint: parseChoice<PerformanceHint>('--hint', flags.hint, ['LATENCY', 'THROUGHPUT'], { ignoreCase: true }) }),
        ...(flags.precision === undefined ? {} : { precision: parseChoice<IrPrecision>('--precision', flags.precision, ['FP32', 'FP16'], { ignoreCase: true }) }),
        ...(flags.perfCounters === true ? { perfCounters: true } : {}),
      };
      if (flags.engine === 'all') {
        await benchAllEngines(context, await resolveModelArgument(flags.model), options, { batch, iterations, warmup }, flags.json === true);
        return;
      }
      const { engine, reason } = await createEngine(flags.engine, options).catch((error: unknown) => {
        // A misspelt --engine is a usage error (exit 1), not bad input data.
        throw error instanceof UnknownEngineError ? new UsageError(`--engine: ${error.message}`) : error;
      });
      // Which engine runs and why, said once; on stderr so --json output stays one object.
      context.stderr.write(`engine: ${engine.name} (${engine.version}) on ${engine.device}: ${reason}\n`);
      try {
        const layout = await engine.load(await resolveModelArgument(flags.model));
        const result = await benchmarkEngine(engine, { batch, iterations, warmup });
        const counters = flags.perfCounters === true ? await engine.perfCounters() : undefined;
        if (flags.json === true) {
          printLine(context, JSON.stringify({ ...result, reason, model: layout.file, format: layout.format, ...(counters === undefined ? {} : { perfCounters: counters }) }, null, 2));
          return;
        }
        const [height, width, channels] = layout.input;
        printLine(context, `model       ${layout.file} (${layout.format}), input NHWC [batch, ${height}, ${width}, ${channels}], ${layout.outputChannels} output channel(s)`);
        printLine(context, `engine      ${result.engine} (${result.version}) on ${result.device}`);
        printLine(context, `batch       ${batch} slice(s), ${iterations} timed batches after ${warmup} warm-up`);
        printLine(
          context,
          `latency     mean ${milliseconds(result.latencyMs.mean)}, p50 ${milliseconds(result.latencyMs.p50)}, p95 ${milliseconds(result.latencyMs.p95)} per batch`,
        );
        printLine(context, `throughput  ${result.slicesPerSecond.toFixed(1)} slices/s`);
        printLine(context, `scan        ${result.scanSlices} slices in ${result.scanSeconds.toFixed(2)} s`);
        if (flags.perfCounters === true) {
          if (counters === undefined) {
            printLine(context, `per-layer   ${engine.name} gave no per-layer counters`);
          } else {
            printLine(context, 'per-layer   (slowest first, mean per batch)');
            for (const counter of [...counters].sort((a, b) => b.realTimeMs - a.realTimeMs).slice(0, 20)) {
              printLine(context, `  ${milliseconds(counter.realTimeMs).padStart(10)}  ${counter.type.padEnd(16)} ${counter.name}`);
            }
          }
        }
      } finally {
        await engine.dispose();
      }
    });
}
