export * from './portable.js';
export { segmentCase, type SegmentCaseOptions } from './segment-case.js';
export { resolveCaseInputs } from './case-inputs.js';
export { INFERENCE_OPTIONS, datasetReference, tuneInference, type InferenceOption, type TuneInferenceOptions } from './tune.js';
