/** One job's work: the job's uploaded files become a case, segmented by the runtime's one segmentation path. */
import path from 'node:path';
import { writeNifti, type ModelManifest, type RegionName } from '@brats/io';
import { caseRefFromFiles, describeLabels, segmentCase, type CaseFiles, type InferenceEngine } from '@brats/ncs2-runtime';
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
  loadSeconds: number;
  inferenceSeconds: number;
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

/**
 * Segments the job in `directory`: writes `mask.nii.gz` (uint8 on the scan's grid: 0/1 for a whole-tumour model,
 * the input layout's labels for a regions model) and, for a 4D upload, `scans/<role>.nii.gz` for the viewer.
 * @throws {DatasetError} for scans that cannot be read or do not share one grid; the engine's errors.
 */
export async function segmentJob(record: JobRecord, directory: string, model: LoadedModel, options: SegmentOptions): Promise<SegmentationResult> {
  const ref = caseRefFromFiles(record.id, jobFiles(record, directory));
  const segmentation = await segmentCase(ref, model.manifest, model.engine, {
    tta: options.tta,
    largestComponent: options.largestComponent,
    load: { labels: false, maxBytes: options.maxDecompressedBytes },
  });
  const started = performance.now();
  if (record.inputKind === '4d') {
    // The viewer shows one sequence at a time; level 1 keeps this cheap next to inference.
    for (const [index, role] of SCAN_ROLES.entries()) {
      await writeNifti(path.join(directory, 'scans', `${role}.nii.gz`), segmentation.case.channels[index]!, { compressionLevel: 1 });
    }
  }
  const scansSeconds = (performance.now() - started) / 1000;
  await writeNifti(path.join(directory, MASK_FILE), segmentation.labels, { dtype: 'uint8', description: `@brats ${model.manifest.regions.join('/')}` });
  const [nx, ny, nz] = segmentation.labels.shape;
  return {
    regions: [...segmentation.regions],
    volumesMl: segmentation.volumesMl,
    shape: [nx, ny, nz],
    labels: describeLabels(segmentation.labelMapping),
    labelConvention: segmentation.labelMapping.name,
    reasons: segmentation.reasons,
    loadSeconds: segmentation.timings.load + scansSeconds,
    inferenceSeconds: segmentation.timings.inference,
  };
}
