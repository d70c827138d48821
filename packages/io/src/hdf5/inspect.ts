/** A JSON-able summary of a slice store, for `brats inspect FILE.h5`. */
import { METADATA_DATASETS, splitDatasetNames } from './format.js';
import { openSliceStore, type SliceStoreAttributeValue } from './reader.js';
import type { SplitName } from './split.js';

/** One split of {@link SliceStoreSummary}. */
export interface SliceStoreSplitSummary {
  slices: number;
  /** Cases in the split: from the case list, else from the seed's input file list; null when neither exists. */
  cases: number | null;
  /** [N, height, width, channels] */
  imageShape: readonly number[];
  /** [N, height, width, K] */
  maskShape: readonly number[];
  imageDtype: string;
  maskDtype: string;
  /** Slices with at least one tumour voxel. */
  tumourSlices: number;
  /** tumourSlices / slices (0 for an empty split). */
  tumourSliceFraction: number;
  /** Whether the file has the per-slice index (case, z, tumour voxels); the seed's files do not. */
  hasSliceIndex: boolean;
}

/** What {@link inspectSliceStore} returns; every field is JSON-able. */
export interface SliceStoreSummary {
  kind: 'slice-store';
  path: string;
  /** `brats-slice-store` for stores written by @brats/io, null for others (the seed's). */
  format: string | null;
  formatVersion: number | null;
  datasets: { name: string; shape: number[]; dtype: string }[];
  splits: Partial<Record<SplitName, SliceStoreSplitSummary>>;
  /** The seed's descriptive strings that the file has (name, description, …). */
  metadata: Record<string, string>;
  /** Root attributes: every preprocessing parameter, the split seed and fractions. */
  parameters: Record<string, SliceStoreAttributeValue>;
}

/**
 * Summarises a slice store: datasets with shapes and dtypes, per split slice and case counts and tumour-slice
 * fractions (computed from the masks when the file has no per-slice index), preprocessing parameters and metadata.
 * @throws {SliceStoreError} when the file is missing or not a slice store.
 */
export async function inspectSliceStore(filePath: string): Promise<SliceStoreSummary> {
  const store = await openSliceStore(filePath);
  try {
    const datasets = store.datasetNames().map((name) => ({ name, ...store.describeDataset(name)! }));
    const metadataLists = store.metadata();
    const splits: Partial<Record<SplitName, SliceStoreSplitSummary>> = {};
    for (const split of store.splits) {
      const info = store.info(split);
      const index = store.sliceIndex(split);
      const names = splitDatasetNames(split);
      const cases = index?.caseIds.length ?? metadataLists[names.inputFiles]?.length ?? null;
      const tumourSlices = store.tumourSlices(split).length;
      splits[split] = {
        slices: info.slices,
        cases,
        imageShape: info.imageShape,
        maskShape: info.maskShape,
        imageDtype: info.imageDtype,
        maskDtype: info.maskDtype,
        tumourSlices,
        tumourSliceFraction: info.slices === 0 ? 0 : tumourSlices / info.slices,
        hasSliceIndex: index !== undefined,
      };
    }
    const metadata: Record<string, string> = {};
    for (const name of METADATA_DATASETS) {
      const value = metadataLists[name];
      if (value !== undefined) metadata[name] = value.join(', ');
    }
    const parameters = store.attributes();
    const format = typeof parameters.format === 'string' ? parameters.format : null;
    const formatVersion = typeof parameters.format_version === 'number' ? parameters.format_version : null;
    delete parameters.format;
    delete parameters.format_version;
    return { kind: 'slice-store', path: filePath, format, formatVersion, datasets, splits, metadata, parameters };
  } finally {
    store.close();
  }
}
