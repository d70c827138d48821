/**
 * One job's work: the job's uploaded files become a cohort job of the runtime, run by its one worker function
 * (`runCohortJob`), here on the server's loaded model or, with a shared queue, by any `brats worker`.
 */
import path from 'node:path';
import type { ModelManifest, RegionName } from '@brats/io';
import {
  CohortEngineCache,
  caseRefFromFiles,
  runCohortJob,
  type CaseFiles,
  type CohortJob,
  type CohortJobResult,
  type InferenceEngine,
} from '@brats/ncs2-runtime';
import { SCAN_ROLES, type JobRecord, type MaskLabel } from './job-store.js';
/** The model every job shares: loaded once at start-up. */
export interface LoadedModel {
  bundle: string;
  manifest: ModelManifest;
  engine: InferenceEngine;
  /** Why this engine was chosen (the registry's reason). */
  reason: string;
}

/** What a finished segmentation adds to its job record. */
export interface SegmentationResult {
  regions: RegionName[];
  volumesMl: Partial<Record<RegionName, number>>;
  shape: [number, number, number];
  labels: MaskLabel[];
  /** The label convention of the mask (e.g. `wt`, `brats2017`, `msd`). */
  labelConvention: string;
  /** One line per choice the segmentation made. */
  reasons: string[];
  /** The reasons to show beside the result (a scan resampled to the model's spacing, a tumour segmented beyond the model's window). */
  notices: string[];
  /** What the user must know about the input (constant images, extra frames), one line each. */
  warnings: string[];
  loadSeconds: number;
  inferenceSeconds: number;
}

/**
 * The fields a finished job's record gets from its segmentation, wherever it ran (here or on a queue worker).
 * @param started epoch ms the job started; `finished` when it ended.
 */
export function succeededFields(record: JobRecord, result: SegmentationResult, started: number, finished: number): Partial<JobRecord> {
  return {
    status: 'succeeded',
    timings: {
      queuedSeconds: (started - Date.parse(record.createdAt)) / 1000,
      loadSeconds: result.loadSeconds,
      inferenceSeconds: result.inferenceSeconds,
      totalSeconds: (finished - started) / 1000,
    },
    regions: result.regions,
    volumesMl: result.volumesMl,
    shape: result.shape,
    labels: result.labels,
    labelConvention: result.labelConvention,
    reasons: result.reasons,
    notices: result.notices,
    warnings: result.warnings,
  };
}

/** Settings of {@link segmentJob}. */
export interface SegmentOptions {
  maxDecompressedBytes: number;
  /** Undefined: what the bundle chose on validation. */
  tta: boolean | undefined;
  /** Undefined: what the bundle chose on validation. */
  largestComponent: boolean | undefined;
}

/** The name of the mask file in a job folder. */
export const MASK_FILE = 'mask.nii.gz';

/** The files a job's upload made, under its `inputs/` folder. */
function jobFiles(record: JobRecord, directory: string): CaseFiles {
  const input = (name: string): string => path.join(directory, 'inputs', name);
  if (record.inputKind === '4d') return { scan: input(record.inputFiles.scan!) };
  return Object.fromEntries(SCAN_ROLES.map((role) => [role, input(record.inputFiles[role]!)])) as Record<(typeof SCAN_ROLES)[number], string>;
}

/** The server's settings that go into each job's description. */
export interface JobDescriptionOptions extends SegmentOptions {
  /** Engine name a queue worker opens the bundle with (the server's `--engine`). */
  engine: string;
}

/**
 * The cohort job of the upload in `directory`: its files as a case, the model bundle, the settings, and the
 * outputs `mask.nii.gz` (uint8 on the scan's grid: 0/1 for a whole-tumour model, the input layout's labels for a
 * regions model) and, for a 4D upload, `scans/<role>.nii.gz` for the viewer.
 */
export function describeJob(record: JobRecord, directory: string, bundle: string, options: JobDescriptionOptions): CohortJob {
  const job: CohortJob = {
    case: caseRefFromFiles(record.id, jobFiles(record, path.resolve(directory))),
    bundle: path.resolve(bundle),
    engine: options.engine,
    readReference: false,
    maxDecompressedBytes: options.maxDecompressedBytes,
    outputs: { labels: path.resolve(directory, MASK_FILE) },
  };
  if (options.tta !== undefined) job.tta = options.tta;
  if (options.largestComponent !== undefined) job.largestComponent = options.largestComponent;
  if (record.inputKind === '4d') job.outputs.channels = path.resolve(directory, 'scans');
  return job;
}

/** What a finished cohort job adds to its job record. */
export function segmentationResultOf(result: CohortJobResult): SegmentationResult {
  return {
    regions: [...result.regions],
    volumesMl: result.volumesMl,
    shape: result.shape,
    labels: result.labels.map(({ value, region, meaning }) => ({ value, region, meaning })),
    labelConvention: result.labelConvention,
    reasons: result.reasons,
    notices: result.notices,
    warnings: result.warnings,
    loadSeconds: result.timings.load + result.timings.write,
    inferenceSeconds: result.timings.inference,
  };
}

/**
 * Segments the job in `directory` on the server's loaded model, with the runtime's one worker function: writes
 * `mask.nii.gz` and, for a 4D upload, `scans/<role>.nii.gz`.
 * @throws {DatasetError} for scans that cannot be read or do not share one grid; the engine's errors.
 */
export async function segmentJob(record: JobRecord, directory: string, model: LoadedModel, options: SegmentOptions): Promise<SegmentationResult> {
  const job = describeJob(record, directory, model.bundle, { ...options, engine: model.engine.name });
  // Every job runs on the model loaded at start-up; the server, not this cache, frees its engine.
  const engines = new CohortEngineCache(
    async () => ({ manifest: model.manifest, engine: model.engine, reason: model.reason }),
    async () => model.manifest,
  );
  return segmentationResultOf(await runCohortJob(job, { engines }));
}
