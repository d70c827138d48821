/**
 * `@brats/ncs2-runtime/browser`: whole-scan segmentation of a case already read, with no Node.js module reachable
 * (a page runs it on ONNX Runtime Web): the same preprocessing, batching, flips, thresholds, nesting, largest
 * component, inverse crop and label conventions as `segmentCase` in the CLI and the server.
 */
export { DEFAULT_MODEL_SPACING, segmentLoadedCase, type SegmentOptions, type Segmentation, type SegmentationTimings, type SliceRunner } from './segment/segment-core.js';
export { resolveInference, type InferenceRequest, type ResolvedInference, type SettingSource } from './segment/inference-settings.js';
export {
  chooseOutputConvention,
  describeConvention,
  describeLabels,
  nestedLabelValues,
  regionVolumesMl,
  type LabelLegendEntry,
  type NestedLabelValues,
  type OutputConvention,
} from './segment/labels.js';
export { keepLargestComponent, labelComponents } from './segment/components.js';
