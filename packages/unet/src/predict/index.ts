export { predictCase, resolveInference, type PredictOptions, type CasePrediction, type ResolvedInference, type SliceRunner } from './predictor.js';
export { TfjsEngine, tfjsEngineFactory, type TfjsModelLayout } from './tfjs-engine.js';
export { keepLargestComponent, labelComponents } from './components.js';
