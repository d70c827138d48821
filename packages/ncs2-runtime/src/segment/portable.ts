/** The segmentation path without Node.js: what `@brats/ncs2-runtime/browser` serves and the package index re-exports. */
export { DEFAULT_BATCH_SIZE, DEFAULT_MODEL_SPACING, postprocessRegions, segmentLoadedCase, type PostprocessSettings, type SegmentOptions, type Segmentation, type SegmentationTimings, type SliceRunner } from './segment-core.js';
export { resolveInference, type InferenceRequest, type ResolvedInference, type SettingSource } from './inference-settings.js';
export {
  chooseOutputConvention,
  describeConvention,
  describeLabels,
  nestedLabelValues,
  regionVolumesMl,
  type LabelLegendEntry,
  type NestedLabelValues,
  type OutputConvention,
} from './labels.js';
export { keepLargestComponent, labelComponents } from '@brats/metrics';
export { MODALITY_ROLES, brats2023SuffixOf, caseIdOfFiles, caseRefFromFiles, type CaseFiles, type ModalityRole } from './case-files.js';
export { openWebEngine, type OrtWebModule, type WebBackend, type WebEngine, type WebEngineOptions } from '../web-engine.js';
