export { TFJS_ENGINE, TfjsEngine, registerTfjsEngine, tfjsEngineFactory, type TfjsModelLayout } from './tfjs-engine.js';
