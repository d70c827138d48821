export { segmentCase, type SegmentCaseOptions } from './segment-case.js';
export { DEFAULT_MODEL_SPACING, segmentLoadedCase, type SegmentOptions, type Segmentation, type SegmentationTimings, type SliceRunner } from './segment-core.js';
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
export { MODALITY_ROLES, caseRefFromFiles, resolveCaseInputs, type CaseFiles, type ModalityRole } from './case-inputs.js';
export { keepLargestComponent, labelComponents } from './components.js';
export { INFERENCE_OPTIONS, datasetReference, tuneInference, type InferenceOption, type TuneInferenceOptions } from './tune.js';
