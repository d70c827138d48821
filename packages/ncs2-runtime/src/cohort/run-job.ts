/**
 * The one worker function of a cohort: a job description in, its outputs on disk and a small JSON-able result
 * out. The in-process runner and every queue worker call it, so a case segmented on another machine gives the
 * same files as `brats predict` here. Every file is written atomically (temporary sibling, then rename), so a
 * worker killed mid-case never leaves a half-written output under its final name.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { createVolume, loadCase, regionMask, writeFileAtomic, writeNifti, type CanonicalCase, type ModelManifest, type RegionName } from '@brats/io';
import { evaluateCase, type CaseEvaluation } from '@brats/metrics';
import { MODALITY_ROLES, describeLabels, segmentLoadedCase, type LabelLegendEntry, type SegmentationTimings } from '../segment/index.js';
import type { CohortEngineCache, ModelRequest } from './engines.js';
import { JobAbortedError } from './errors.js';
import { writeCaseFigures } from './figures.js';
import { cohortJobFingerprint, cohortJobId, type CohortJob } from './job.js';

/** What one job produced: plain JSON (a queue stores it as the job's return value). */
export interface CohortJobResult {
  jobId: string;
  caseId: string;
  /** Every file written, absolute paths, the label map first. */
  files: string[];
  /** The figures among `files`. */
  figures: string[];
  regions: RegionName[];
  /** Scan grid `[i, j, k]` of the label map. */
  shape: [number, number, number];
  /** Label convention of the label map: `wt` (0/1), `brats2017` (1/2/4), `brats2023` or `msd` (1/2/3). */
  labelConvention: string;
  /** Each value of the label map and the region it shows. */
  labels: LabelLegendEntry[];
  /** Tumour volume per region in mL. */
  volumesMl: Partial<Record<RegionName, number>>;
  /** Overlap and distance metrics against the case's reference label map, when it has one and it was read. */
  evaluation?: CaseEvaluation;
  tta: boolean;
  largestComponent: boolean;
  /** One line per choice the segmentation made. */
  reasons: string[];
  /** The reasons to show beside the case: a resampled scan, a tumour segmented beyond the model's window. */
  notices: string[];
  /** What looked wrong with the case but did not stop it (a constant channel, a resampled grid, …). */
  warnings: string[];
  engine: { name: string; device: string; reason: string };
  /** Seconds: the segmentation's steps, writing the outputs, and the whole job. */
  timings: SegmentationTimings & { write: number; total: number };
  /** True when an earlier run of this same job had written every output, and its record was returned instead. */
  reused: boolean;
}

/** What a worker lends the jobs it runs. */
export interface CohortJobContext {
  /** Opened models, shared by every job of this worker. */
  engines: CohortEngineCache;
  /** Run on this engine instead of the one the job names (a worker's own `--engine`). */
  engine?: { name: string; device?: string };
  /** Threads for one inference on this machine (several workers on one machine share its cores); absent: the engine's default. */
  threads?: number;
  /**
   * Keep a completion record beside the label map (`.brats-jobs/<job id>.json`) and, when a record of this same
   * job exists with every output it lists, return it without running again. Queue workers set it: a job
   * re-delivered after its worker died between writing and acknowledging is then not written twice.
   */
  completionRecords?: boolean;
  /** Aborts the job between engine batches, before anything is written ({@link JobAbortedError}). */
  signal?: AbortSignal;
  /** Slices segmented so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Called when the job is done with its engine (its case segmented), before it writes. */
  onSegmented?: () => void;
}

/** The completion record of job `jobId` whose label map is `labels`. */
export function completionRecordPath(labels: string, jobId: string): string {
  return path.join(path.dirname(labels), '.brats-jobs', `${jobId}.json`);
}

const NON_FINITE: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/**
 * The result as plain JSON data: the non-finite metrics of an evaluation (NaN for an empty reference, Infinity
 * for an empty prediction's distances) become the strings `NaN`, `Infinity`, `-Infinity`, which JSON keeps.
 */
export function encodeCohortResult(result: CohortJobResult): Record<string, unknown> {
  if (result.evaluation === undefined) return { ...result };
  const regions = Object.fromEntries(
    Object.entries(result.evaluation.regions).map(([region, values]) => [
      region,
      Object.fromEntries(Object.entries(values).map(([name, value]) => [name, typeof value === 'number' && !Number.isFinite(value) ? String(value) : value])),
    ]),
  );
  return { ...result, evaluation: { ...result.evaluation, regions } };
}

/** The inverse of {@link encodeCohortResult}. */
export function decodeCohortResult(data: unknown): CohortJobResult {
  const decoded = data as CohortJobResult;
  // A record written before results carried notices has none to show.
  const result = Array.isArray(decoded.notices) ? decoded : { ...decoded, notices: [] };
  if (result.evaluation === undefined) return result;
  const regions = Object.fromEntries(
    Object.entries(result.evaluation.regions).map(([region, values]) => [
      region,
      Object.fromEntries(Object.entries(values as unknown as Record<string, unknown>).map(([name, value]) => [name, typeof value === 'string' && value in NON_FINITE ? NON_FINITE[value] : value])),
    ]),
  );
  return { ...result, evaluation: { ...result.evaluation, regions } as CaseEvaluation };
}

async function readCompletionRecord(file: string, fingerprint: string): Promise<CohortJobResult | undefined> {
  let record: { fingerprint?: unknown; result?: unknown };
  try {
    record = JSON.parse(await fs.readFile(file, 'utf8')) as typeof record;
  } catch {
    // No record, or one cut short by a crash before its rename (it is written atomically, so this means none).
    return undefined;
  }
  if (record.fingerprint !== fingerprint || record.result === null || typeof record.result !== 'object') return undefined;
  const result = decodeCohortResult(record.result);
  if (!Array.isArray(result.files) || !result.files.every((file) => typeof file === 'string' && existsSync(file))) return undefined;
  return { ...result, reused: true };
}

function throwIfAborted(signal: AbortSignal | undefined, jobId: string): void {
  if (signal?.aborted === true) throw new JobAbortedError(jobId, signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted'));
}

/**
 * Runs one cohort job: opens (or reuses) its model, segments the case with `segmentCase`, writes the label map
 * (uint8 NIfTI on the scan's grid), and, as the job asks, probability maps, the case's channels and figures; scores
 * the prediction against the case's reference label map when it has one.
 * @throws {DatasetError} or {@link NiftiFormatError} for a case that cannot be read (bad input: see
 *   {@link classifyCohortError}); {@link ModelBundleError} or the engine's errors for the model; {@link JobAbortedError}
 *   when `context.signal` aborts it before it writes.
 * @example const result = await runCohortJob(job, { engines: new CohortEngineCache() });
 */
export async function runCohortJob(job: CohortJob, context: CohortJobContext): Promise<CohortJobResult> {
  const started = performance.now();
  const jobId = cohortJobId(job);
  const fingerprint = cohortJobFingerprint(job);
  const recordFile = completionRecordPath(job.outputs.labels, jobId);
  if (context.completionRecords === true) {
    const earlier = await readCompletionRecord(recordFile, fingerprint);
    if (earlier !== undefined) return earlier;
  }
  throwIfAborted(context.signal, jobId);
  const request: ModelRequest = { bundle: job.bundle, engine: context.engine?.name ?? job.engine };
  const device = context.engine === undefined ? job.device : context.engine.device;
  if (device !== undefined) request.device = device;
  if (job.runtimeOnly === true) request.runtimeOnly = true;
  if (job.int8 === true) request.int8 = true;
  if (context.threads !== undefined) request.threads = context.threads;
  // The case is read and preprocessed while the model opens (the engine loads it on a thread of its own where it
  // can): a cold start pays for the longer of the two, not their sum. A model that fails to open still fails the
  // job first.
  const opening = context.engines.get(request);
  opening.catch(() => undefined);
  const earlyManifest = context.engines.manifest(request);
  earlyManifest?.catch(() => undefined);
  const loadStarted = performance.now();
  const loading = loadCase(job.case, {
    // A reference that cannot be read costs the score, not the prediction: it is left out with a warning.
    labels: job.readReference === false ? false : 'if-readable',
    ...(job.maxDecompressedBytes === undefined ? {} : { maxBytes: job.maxDecompressedBytes }),
    ...(job.replaceNonFinite === true ? { nonFinite: 'zero' as const } : {}),
  }).then((loaded) => ({ loaded, seconds: (performance.now() - loadStarted) / 1000 }));
  loading.catch(() => undefined);
  let manifest: ModelManifest;
  let loaded: CanonicalCase;
  let loadSeconds: number;
  try {
    ({ loaded, seconds: loadSeconds } = await loading);
    manifest = earlyManifest === undefined ? (await opening).manifest : await earlyManifest;
  } catch (error) {
    await opening;
    throw error;
  }

  const engine = opening.then((opened) => opened.engine);
  engine.catch(() => undefined);
  const segmentation = await segmentLoadedCase(loaded, manifest, engine, {
    tta: job.tta,
    largestComponent: job.largestComponent,
    ...(job.extendWindow === false ? { extendWindow: false } : {}),
    // Probability maps need every flipped pass; a label map alone does not (the labels are the same).
    labelsOnly: job.outputs.probabilities === undefined,
    onSlices: (done, total) => {
      throwIfAborted(context.signal, jobId);
      context.onProgress?.(done, total);
    },
  }, loadSeconds);
  throwIfAborted(context.signal, jobId);
  const model = await opening;
  context.onSegmented?.();

  const writeStarted = performance.now();
  const caseData = segmentation.case;
  const labels = segmentation.labels;
  const files: string[] = [];
  // The label map is compressed on libuv's thread pool while this thread scores the case below, at gzip level 1 as
  // nibabel writes .nii.gz: 8 ms instead of 33 ms at level 6 for a BraTS label map, 65 KB instead of 21 KB.
  const labelsWritten = writeNifti(job.outputs.labels, labels, { dtype: 'uint8', description: `@brats prediction ${manifest.regions.join('/')}`, compressionLevel: 1 });
  labelsWritten.catch(() => undefined);
  files.push(job.outputs.labels);
  if (job.outputs.probabilities !== undefined) {
    for (const [r, region] of segmentation.regions.entries()) {
      const volume = createVolume('float32', segmentation.probabilities[r]!, labels.shape, { spacing: labels.spacing, affine: labels.affine });
      const file = path.join(job.outputs.probabilities, `${caseData.id}_prob_${region}.nii.gz`);
      await writeNifti(file, volume);
      files.push(file);
    }
  }
  if (job.outputs.channels !== undefined) {
    // The viewer shows one sequence at a time; level 1 keeps this cheap next to inference.
    for (const [index, role] of MODALITY_ROLES.entries()) {
      const file = path.join(job.outputs.channels, `${role}.nii.gz`);
      await writeNifti(file, caseData.channels[index]!, { compressionLevel: 1 });
      files.push(file);
    }
  }
  let evaluation: CaseEvaluation | undefined;
  let truthWt: Uint8Array | undefined;
  if (caseData.labels !== undefined) {
    truthWt = regionMask(caseData.labels.data, caseData.labelMapping, 'WT');
    const [nx, ny, nz] = caseData.labels.shape;
    evaluation = evaluateCase(
      {
        caseId: caseData.id,
        prediction: labels.data,
        predictionMapping: segmentation.labelMapping,
        reference: caseData.labels.data,
        referenceMapping: caseData.labelMapping,
        shape: [nx, ny, nz],
        spacing: caseData.labels.spacing,
      },
      { regions: manifest.regions },
    );
  }
  await labelsWritten;
  const figures = job.outputs.figures === undefined ? [] : await writeCaseFigures(job.outputs.figures, segmentation, truthWt);
  files.push(...figures);
  const finished = performance.now();

  const [nx, ny, nz] = labels.shape;
  const result: CohortJobResult = {
    jobId,
    caseId: caseData.id,
    files,
    figures,
    regions: [...segmentation.regions],
    shape: [nx, ny, nz],
    labelConvention: segmentation.labelMapping.name,
    labels: describeLabels(segmentation.labelMapping),
    volumesMl: segmentation.volumesMl,
    tta: segmentation.inference.tta,
    largestComponent: segmentation.inference.largestComponent,
    reasons: segmentation.reasons,
    notices: segmentation.notices,
    warnings: segmentation.warnings,
    engine: { name: model.engine.name, device: model.engine.device, reason: model.reason },
    timings: { ...segmentation.timings, write: (finished - writeStarted) / 1000, total: (finished - started) / 1000 },
    reused: false,
  };
  if (evaluation !== undefined) result.evaluation = evaluation;
  if (context.completionRecords === true) {
    await writeFileAtomic(recordFile, `${JSON.stringify({ jobId, fingerprint, result: encodeCohortResult(result) }, null, 2)}\n`);
  }
  return result;
}
