/**
 * Names inside a slice store. Image and mask datasets and the file lists carry the seed's names, so files
 * written here open in the seed's training code and files the seed wrote open here.
 */
import type { SplitName } from './split.js';

/** Value of the root attribute `format` of a store written by @brats/io. */
export const SLICE_STORE_FORMAT = 'brats-slice-store';

/** Version of the layout below; readers accept stores of this version or without one (the seed's). */
export const SLICE_STORE_FORMAT_VERSION = 1;

const LONG_NAMES: Readonly<Record<SplitName, string>> = { train: 'training', validation: 'validation', testing: 'testing' };

/** Dataset names of one split. */
export interface SplitDatasetNames {
  /** Images [N, height, width, channels], float32 (float64 in the seed's files). */
  images: string;
  /** Masks [N, height, width, K], uint8 0/1 (float64 in the seed's files). */
  masks: string;
  /** Case id of each case in the split, in store order (strings). */
  cases: string;
  /** JSON preprocessing parameters of each case (crop start, channel statistics), aligned with `cases`. */
  caseParams: string;
  /** Input image files of each case, relative to the dataset root, several joined by ';' (seed name). */
  inputFiles: string;
  /** Label file of each case, relative to the dataset root (seed name). */
  labelFiles: string;
  /** Per slice: index into `cases` (int32). */
  sliceCase: string;
  /** Per slice: its k index in the original scan (int32; negative for zero-padded slices). */
  sliceZ: string;
  /** Per slice: whole-tumour voxel count (int32). */
  sliceTumourVoxels: string;
}

/** The dataset names of `split`. */
export function splitDatasetNames(split: SplitName): SplitDatasetNames {
  const long = LONG_NAMES[split];
  return {
    images: `imgs_${split}`,
    masks: `msks_${split}`,
    cases: `cases_${split}`,
    caseParams: `case_params_${split}`,
    inputFiles: `${long}_input_files`,
    labelFiles: `${long}_label_files`,
    sliceCase: `slice_case_${split}`,
    sliceZ: `slice_z_${split}`,
    sliceTumourVoxels: `slice_tumour_voxels_${split}`,
  };
}

/** The seed's descriptive string datasets, in the order they are written. */
export const METADATA_DATASETS = ['name', 'description', 'reference', 'license', 'release', 'tensorImageSize', 'modalities'] as const;

/** One of {@link METADATA_DATASETS}. */
export type MetadataDatasetName = (typeof METADATA_DATASETS)[number];
