export { predictCase, type PredictOptions, type CasePrediction, type SliceRunner } from './predictor.js';
export { TfjsEngine, tfjsEngineFactory, type TfjsModelLayout } from './tfjs-engine.js';
export { keepLargestComponent, labelComponents } from './components.js';
