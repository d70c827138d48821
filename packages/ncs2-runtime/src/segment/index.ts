export * from './portable.js';
export { segmentCase, type SegmentCaseOptions } from './segment-case.js';
export { MODALITY_ROLES, caseRefFromFiles, resolveCaseInputs, type CaseFiles, type ModalityRole } from './case-inputs.js';
export { INFERENCE_OPTIONS, datasetReference, tuneInference, type InferenceOption, type TuneInferenceOptions } from './tune.js';
