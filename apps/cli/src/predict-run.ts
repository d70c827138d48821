/**
 * The predict pipeline as the commands run it (predict, infer, demo): inputs → cases → one cohort job per case →
 * NIfTI label maps, optional probability maps, figures, per-case metrics when a reference exists, and a report.
 * The jobs run in this process (the runtime's in-process runner) or, with `--queue`, on BullMQ workers anywhere
 * (@brats/queue, loaded only then); both run the runtime's one worker function, so their outputs are the same.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TRAINING_CURVES_FILE, caseMessage, readModelManifest, writeFileAtomic, type ModelManifest } from '@brats/io';
import { summarizeCases, type CaseEvaluation, type EvaluationSummary } from '@brats/metrics';
import {
  CohortEngineCache,
  createCohortJobs,
  resolveCaseInputs,
  resolveInference,
  runCohortInProcess,
  type CohortJob,
  type CohortJobResult,
  type ModelRequest,
  type ResolvedInference,
} from '@brats/ncs2-runtime';
import { printLine, type CliContext } from './context.js';
import { openEngine, type EngineChoice } from './engine-choice.js';
import { createProgress } from './progress.js';
import { describeQuantization } from './quantize.js';
import { caseTable, figureBlocks, summaryTable, writeReport, type ReportCase } from './report.js';

/** Options shared by `brats predict`, `brats infer` and the demo. */
export interface PredictRunOptions {
  model: string;
  inputs: readonly string[];
  out: string;
  engine: EngineChoice;
  device?: string;
  /** Test-time flips; undefined: what the bundle chose on validation, else off. */
  tta?: boolean | undefined;
  /** Largest whole-tumour component only; undefined: what the bundle chose on validation, else off. */
  largestComponent?: boolean | undefined;
  /** False: segment the model's window alone, not beyond it where the tumour reaches it. */
  extendWindow?: boolean;
  probabilities: boolean;
  figures: boolean;
  /** Set NaN or infinite image voxels to 0 (with a warning) instead of refusing the case. */
  replaceNonFinite?: boolean;
  /** Title of the report (figures only). */
  title?: string;
  /** Only the runtime engines (ONNX Runtime, OpenVINO): `brats infer`. */
  runtimeOnly?: boolean;
  /** Run the bundle's INT8 model (`--precision int8`). */
  int8?: boolean;
  /** Cases in flight at once in this process (default 1): one decodes or writes while another is in the engine. */
  jobs?: number;
  /** Predict only the cases with these ids (e.g. a held-out split). */
  onlyCases?: readonly string[];
}

/** Says what the INT8 model costs and gains, from the record `brats export --precision int8` wrote. */
function printPrecision(context: CliContext, manifest: ModelManifest): void {
  const record = manifest.quantization;
  printLine(context, `precision: INT8 (${manifest.files.onnxInt8})${record === undefined ? ', no measurement recorded' : `: ${describeQuantization(record)}`}`);
}

/** What a predict run produced. */
export interface PredictRunResult {
  cases: ReportCase[];
  evaluations: CaseEvaluation[];
  summary: EvaluationSummary | undefined;
  failures: string[];
  engine: string;
  reportPath?: string;
}

/** The jobs of a predict run: one per case, writing into `options.out`. */
async function prepareJobs(options: PredictRunOptions): Promise<{ manifest: ModelManifest; jobs: CohortJob[]; inference: ResolvedInference }> {
  const manifest: ModelManifest = await readModelManifest(options.model);
  const resolved = await resolveCaseInputs(options.inputs);
  const refs = options.onlyCases === undefined ? resolved : resolved.filter((ref) => options.onlyCases!.includes(ref.id));
  const jobs = createCohortJobs(refs, {
    bundle: options.model,
    out: options.out,
    engine: options.engine,
    ...(options.device === undefined ? {} : { device: options.device }),
    runtimeOnly: options.runtimeOnly === true,
    ...(options.int8 === true ? { int8: true } : {}),
    tta: options.tta,
    largestComponent: options.largestComponent,
    ...(options.extendWindow === false ? { extendWindow: false } : {}),
    probabilities: options.probabilities,
    figures: options.figures,
    ...(options.replaceNonFinite === true ? { replaceNonFinite: true } : {}),
  });
  return { manifest, jobs, inference: resolveInference(manifest, options) };
}

function printInference(context: CliContext, inference: ResolvedInference): void {
  const why = inference.source === 'bundle' ? 'as the bundle chose on its validation cases' : inference.source === 'caller' ? 'as asked' : 'the default';
  printLine(context, `post-processing: tta ${inference.tta ? 'on' : 'off'}, largest component ${inference.largestComponent ? 'on' : 'off'} (${why})`);
  const smallest = Object.entries(inference.minComponentVoxels);
  if (smallest.length > 0) {
    printLine(context, `post-processing: components under ${smallest.map(([region, voxels]) => `${voxels} voxels (${region})`).join(', ')} removed (as the bundle chose on its validation cases)`);
  }
}

function reportCaseOf(result: CohortJobResult): ReportCase {
  const entry: ReportCase = { id: result.caseId, volumesMl: { ...result.volumesMl }, figures: result.figures };
  if (result.evaluation !== undefined) entry.evaluation = result.evaluation;
  if (result.warnings.length > 0) entry.warnings = result.warnings;
  if (result.reasons.length > 0) entry.reasons = result.reasons;
  if (result.notices.length > 0) entry.notices = result.notices;
  return entry;
}

/** predictions.json and, with figures, report.html for the cases that ended. */
async function writeRunSummary(
  options: PredictRunOptions,
  manifest: ModelManifest,
  engine: string,
  inference: ResolvedInference,
  results: readonly CohortJobResult[],
  failures: string[],
): Promise<PredictRunResult> {
  const cases = results.map(reportCaseOf);
  const evaluations = cases.flatMap((entry) => (entry.evaluation === undefined ? [] : [entry.evaluation]));
  const labelConvention = results[0]?.labelConvention;
  const summary = evaluations.length > 0 ? summarizeCases(evaluations) : undefined;
  const result: PredictRunResult = { cases, evaluations, summary, failures, engine };
  await writeFileAtomic(
    path.join(options.out, 'predictions.json'),
    `${JSON.stringify({ model: path.resolve(options.model), engine: result.engine, regions: manifest.regions, labels: labelConvention ?? null, tta: inference.tta, largestComponent: inference.largestComponent, cases: cases.map(({ id, volumesMl, evaluation, warnings, reasons }) => ({ id, volumesMl, dice: evaluation === undefined ? null : Object.fromEntries(Object.entries(evaluation.regions).map(([r, v]) => [r, v.dice])), warnings: warnings ?? [], reasons: reasons ?? [] })), failures }, null, 2)}\n`,
  );
  if (options.figures) {
    const reportPath = path.join(options.out, 'report.html');
    // The model's training curves travel with the report, so the folder stays self-contained.
    const curves = path.join(options.model, TRAINING_CURVES_FILE);
    const curvesCopy = path.join(options.out, 'figures', TRAINING_CURVES_FILE);
    const hasCurves = await fs.copyFile(curves, curvesCopy).then(() => true, () => false);
    await writeReport(reportPath, options.title ?? 'Segmentation report', [
      { kind: 'paragraph', text: `Model ${path.resolve(options.model)} (${manifest.model.architecture}, input ${manifest.model.inputShape.join('x')}, regions ${manifest.regions.join(', ')}), engine ${result.engine}, ${cases.length} case(s).` },
      ...(hasCurves ? [{ kind: 'heading' as const, text: 'Training' }, { kind: 'figure' as const, src: path.relative(options.out, curvesCopy), caption: 'loss and validation Dice per epoch of the model' }] : []),
      ...(summary === undefined ? [] : [{ kind: 'heading' as const, text: 'Summary' }, summaryTable(summary)]),
      { kind: 'heading', text: 'Cases' },
      caseTable(cases, manifest.regions),
      ...(failures.length > 0 ? [{ kind: 'heading' as const, text: 'Failed cases' }, ...failures.map((text) => ({ kind: 'paragraph' as const, text }))] : []),
      { kind: 'heading', text: 'Figures' },
      ...figureBlocks(reportPath, cases),
    ]);
    result.reportPath = reportPath;
  }
  return result;
}

/**
 * Runs the predict pipeline over `inputs` in this process, printing progress; unreadable cases are reported and
 * skipped.
 * @throws {UsageError} for bad inputs; the engine's errors when it cannot load.
 */
export async function runPrediction(context: CliContext, options: PredictRunOptions): Promise<PredictRunResult> {
  const started = performance.now();
  const { manifest, jobs, inference } = await prepareJobs(options);
  // The CLI's opener: its engine choice says why an engine runs, and `brats infer` never loads TensorFlow.js.
  const engines = new CohortEngineCache(async (request) => {
    const opened = await openEngine(request.bundle, request.engine as EngineChoice, {
      ...(request.device === undefined ? {} : { device: request.device }),
      runtimeOnly: request.runtimeOnly === true,
      int8: request.int8 === true,
    });
    return { manifest: await readModelManifest(request.bundle), engine: opened.runner, reason: opened.reason };
  }, (request) => readModelManifest(request.bundle));
  const request: ModelRequest = { bundle: path.resolve(options.model), engine: options.engine };
  if (options.device !== undefined) request.device = options.device;
  if (options.runtimeOnly === true) request.runtimeOnly = true;
  if (options.int8 === true) request.int8 = true;
  const progress = createProgress(context, 'predict', jobs.length, 'cases');
  const results: CohortJobResult[] = [];
  const failures: string[] = [];
  let engine: string;
  try {
    // The jobs start reading their cases while the model opens; they wait for it before they segment, and these
    // lines come first because they were registered first.
    const opening = engines.get(request).then((model) => {
      printLine(context, `engine: ${model.engine.name} on ${model.engine.device} (${model.reason})`);
      printInference(context, inference);
      if (options.int8 === true) printPrecision(context, manifest);
      return model;
    });
    // Cases under way and how far each has got (slices done / all): the bar moves within a long case.
    const underWay = new Map<CohortJob, number>();
    let ended = 0;
    let failed = 0;
    const detail = (caseId: string): string => `${caseId}${failed > 0 ? ` (${failed} failed)` : ''}`;
    const partial = (): number => [...underWay.values()].reduce((sum, part) => sum + part, 0);
    const running = runCohortInProcess(jobs, {
      engines,
      concurrency: options.jobs ?? 1,
      releaseEngines: true,
      onJobProgress: (job, slices, all) => {
        underWay.set(job, slices / all);
        progress.update(ended, detail(job.case.id), partial());
      },
      onOutcome: (outcome, done) => {
        underWay.delete(outcome.job);
        ended = done;
        if (outcome.status === 'failed') failed++;
        progress.update(done, detail(outcome.job.case.id), partial());
      },
    });
    running.catch(() => undefined);
    const model = await opening;
    engine = `${model.engine.name} (${model.engine.device})`;
    const outcomes = await running;
    for (const outcome of outcomes) {
      if (outcome.status === 'completed') results.push(outcome.result);
      else failures.push(caseMessage(outcome.job.case.id, outcome.error.message));
    }
  } finally {
    await engines.dispose();
  }
  progress.finish(segmentedSummary(results.length, jobs.length, failures.length));
  if (results.length > 0) printLine(context, describeTimings(results, (performance.now() - started) / 1000));
  return writeRunSummary(options, manifest, engine, inference, results, failures);
}

/**
 * Where a run's time went: scans per second over the wall time from reading the model to the last label map, and
 * each step's mean seconds per scan (decode: reading and decoding the files; forward: the engine, flips included).
 */
export function describeTimings(results: readonly CohortJobResult[], wallSeconds: number): string {
  const mean = (pick: (result: CohortJobResult) => number): string => `${(results.reduce((sum, result) => sum + pick(result), 0) / results.length).toFixed(2)} s`;
  return (
    `timing: ${results.length} scan(s) in ${wallSeconds.toFixed(1)} s (${(results.length / wallSeconds).toFixed(2)} scans/s); per scan: ` +
    `decode ${mean((r) => r.timings.load)}, preprocess ${mean((r) => r.timings.preprocess)}, forward ${mean((r) => r.timings.inference)}, ` +
    `post-process ${mean((r) => r.timings.postprocess)}, write and score ${mean((r) => r.timings.write)}`
  );
}

/** The progress bar's last word on a run: how many cases were segmented, and how many failed. */
function segmentedSummary(segmented: number, total: number, failed: number): string {
  return `${segmented} of ${total} case(s) segmented${failed > 0 ? `, ${failed} failed` : ''}`;
}

/** Where and how `brats predict --queue` submits. */
export interface QueueRunOptions {
  /** `redis://HOST:PORT[/DB]`. */
  url: string;
  /** Wait for every case, with one progress bar, then write predictions.json (and the report). */
  wait: boolean;
  /** Queue name (default: @brats/queue's). */
  name?: string;
  /** Tries per case for failures that may pass (default 3). */
  attempts?: number;
}

/**
 * Submits the predict run to a queue, one job per case (idempotent: a case already queued for the same output
 * is not added again). With `wait`, follows every case wherever it runs and then writes what `runPrediction`
 * writes; without, returns undefined once submitted.
 * @throws {UsageError} for a bad address or inputs; {@link RedisUnavailableError} when Redis does not answer.
 */
export async function runQueuedPrediction(context: CliContext, options: PredictRunOptions, queueOptions: QueueRunOptions): Promise<PredictRunResult | undefined> {
  const { openCohortQueue } = await import('./queue-connect.js');
  const { manifest, jobs, inference } = await prepareJobs(options);
  const queue = await openCohortQueue(context, queueOptions.url, queueOptions.name);
  try {
    printInference(context, inference);
    if (options.int8 === true) printPrecision(context, manifest);
    const submitted = await queue.submit(jobs, queueOptions.attempts === undefined ? {} : { attempts: queueOptions.attempts });
    const held = Object.entries(submitted.existing).map(([state, count]) => `${count} ${state}`);
    printLine(context, `queued ${submitted.added} case(s)${held.length === 0 ? '' : `; already in the queue: ${held.join(', ')}`}`);
    if (submitted.differing.length > 0) {
      context.stderr.write(`warning: ${submitted.differing.length} case(s) were queued earlier for the same output with another model or settings; they keep those (clear the queue or use another --out to run them again)\n`);
    }
    const address = `--queue ${queueOptions.url}${queueOptions.name === undefined ? '' : ` --queue-name ${queueOptions.name}`}`;
    if (!queueOptions.wait) {
      printLine(context, `workers: brats worker ${address} (on any machine that sees ${path.resolve(options.out)} and the inputs)`);
      printLine(context, `watch: brats queue status ${address}`);
      printLine(context, `predictions.json and the report: run this command again with --wait (it adds nothing already queued)`);
      return undefined;
    }
    const progress = createProgress(context, 'predict', jobs.length, 'cases');
    let shown = -1;
    const outcomes = await queue.waitFor(submitted.ids, {
      onProgress: ({ completed, failed, active, workers }) => {
        const done = completed + failed;
        if (done === shown && !context.isTTY) return;
        shown = done;
        progress.update(done, `(${active} running, ${workers} worker(s)${failed > 0 ? `, ${failed} failed` : ''})`);
      },
      onConnection: (error) => context.stderr.write(error === undefined ? 'queue: Redis answers again\n' : `queue: Redis does not answer (${error.message}); still waiting\n`),
    });
    const results: CohortJobResult[] = [];
    const failures: string[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'completed') results.push(outcome.result);
      else failures.push(caseMessage(outcome.caseId, outcome.reason));
    }
    progress.finish(segmentedSummary(results.length, jobs.length, failures.length));
    const engines = [...new Set(results.map((result) => `${result.engine.name} (${result.engine.device})`))];
    return await writeRunSummary(options, manifest, engines.length === 0 ? 'none' : engines.join(', '), inference, results, failures);
  } finally {
    await queue.close();
  }
}
