export { SliceStoreError } from './errors.js';
export {
  SPLIT_NAMES,
  DEFAULT_SPLIT_FRACTIONS,
  DEFAULT_SPLIT_SEED,
  assignNamedSplits,
  assignSplits,
  createNumpyUniform,
  resolveSplitFractions,
} from './split.js';
export type { SplitName, SplitFractions, AssignSplitsOptions, NamedSplits } from './split.js';
export { SLICE_STORE_FORMAT, SLICE_STORE_FORMAT_VERSION, METADATA_DATASETS, splitDatasetNames } from './format.js';
export type { SplitDatasetNames, MetadataDatasetName } from './format.js';
export { writeSliceStore, SliceStoreWriter, DEFAULT_COMPRESSION_LEVEL } from './writer.js';
export type { SliceStoreGeometry, SliceStoreAttribute, WriteSliceStoreOptions, SliceStoreCase, SliceStoreCounts } from './writer.js';
export { openSliceStore, SliceStoreReader } from './reader.js';
export type { SliceStoreSplitInfo, SliceBatch, SliceIndex, SliceStoreAttributeValue } from './reader.js';
export { inspectSliceStore } from './inspect.js';
export type { SliceStoreSummary, SliceStoreSplitSummary } from './inspect.js';
export { convertDataset, defaultConvertWorkers, NAMED_SPLIT_METHOD, SPLIT_METHOD } from './convert.js';
export type { ConvertDatasetOptions, ConvertProgress, ConvertSummary } from './convert.js';
