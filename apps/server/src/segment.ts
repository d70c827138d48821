/** One job's work: read the uploaded scans, segment them with the loaded engine, write the mask and volumes. */
import path from 'node:path';
import {
  LAYOUT_LABELS,
  REGION_NAMES,
  WHOLE_TUMOUR_LABELS,
  loadCase,
  writeNifti,
  type CaseRef,
  type LabelRegionMapping,
  type ModelManifest,
  type RegionName,
} from '@brats/io';
import type { InferenceEngine } from '@brats/ncs2-runtime';
import { predictCase } from '@brats/unet';
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

/** Each label value of `mapping` with the innermost region it belongs to, for the viewer's colours. */
export function describeLabels(mapping: LabelRegionMapping): MaskLabel[] {
  return Object.entries(mapping.labels)
    .map(([value, meaning]) => {
      const number = Number(value);
      const regions = REGION_NAMES.filter((region) => mapping.regions[region].includes(number));
      return { value: number, region: regions[regions.length - 1] ?? 'WT', meaning };
    })
    .sort((a, b) => a.value - b.value);
}

/** The case a job's uploaded files make. */
export function caseRefFor(record: JobRecord, directory: string): CaseRef {
  const input = (name: string): string => path.join(directory, 'inputs', name);
  if (record.inputKind === '4d') {
    return { id: record.id, layout: 'msd', images: [input(record.inputFiles.scan!)], frames: [0, 1, 2, 3] };
  }
  return { id: record.id, layout: 'brats2017', images: SCAN_ROLES.map((role) => input(record.inputFiles[role]!)) };
}

/**
 * Segments the job in `directory`: writes `mask.nii.gz` (uint8 on the scan's grid: 0/1 for a whole-tumour model,
 * the input layout's labels for a regions model) and, for a 4D upload, `scans/<role>.nii.gz` for the viewer.
 * @throws {DatasetError} for scans that cannot be read or do not share one grid; the engine's errors.
 */
export async function segmentJob(record: JobRecord, directory: string, model: LoadedModel, options: SegmentOptions): Promise<SegmentationResult> {
  const started = performance.now();
  const ref = caseRefFor(record, directory);
  const caseData = await loadCase(ref, { labels: false, maxBytes: options.maxDecompressedBytes });
  if (record.inputKind === '4d') {
    // The viewer shows one sequence at a time; level 1 keeps this cheap next to inference.
    for (const [index, role] of SCAN_ROLES.entries()) {
      await writeNifti(path.join(directory, 'scans', `${role}.nii.gz`), caseData.channels[index]!, { compressionLevel: 1 });
    }
  }
  const loadSeconds = (performance.now() - started) / 1000;
  const labelMapping = model.manifest.regions.length === 1 ? WHOLE_TUMOUR_LABELS : LAYOUT_LABELS[ref.layout];
  const prediction = await predictCase(caseData, model.manifest, model.engine, {
    tta: options.tta,
    largestComponent: options.largestComponent,
    labelMapping,
  });
  await writeNifti(path.join(directory, MASK_FILE), prediction.labels, { dtype: 'uint8', description: `@brats ${model.manifest.regions.join('/')}` });
  const [sx, sy, sz] = prediction.labels.spacing;
  const voxelMl = (sx * sy * sz) / 1000;
  const volumesMl: Partial<Record<RegionName, number>> = {};
  prediction.regions.forEach((region, r) => {
    let count = 0;
    for (const value of prediction.masks[r]!) count += value;
    volumesMl[region] = count * voxelMl;
  });
  const [nx, ny, nz] = prediction.labels.shape;
  return {
    regions: [...prediction.regions],
    volumesMl,
    shape: [nx, ny, nz],
    labels: describeLabels(labelMapping),
    loadSeconds,
    inferenceSeconds: prediction.inferenceSeconds,
  };
}
