export * from './errors.js';
export type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine, IrPrecision, LayerPerfCounter, ModelLayout, PerformanceHint } from './engine.js';
export { AUTO_ENGINE, createEngine, lazyEngineFactory, openBundleEngine, listEngines, probeEngines, registerEngine, unregisterEngine, type EngineFallback, type EngineSelection } from './registry.js';
export { ONNXRUNTIME_ENGINE, onnxRuntimeFactory, readOnnxLayout } from './onnxruntime-engine.js';
export { MYRIAD_EXPLANATION, OPENVINO_ENGINE, OPENVINO_REMEDY, convertBundleToIr, loadOpenvino, openvinoFactory, type IrFiles } from './openvino-engine.js';
export type { OpenvinoAddon } from './openvino-api.js';
export { RequestPool } from './request-pool.js';
export { SEED_SCAN_SLICES, benchmarkEngine, summarizeLatencies, type BenchmarkOptions, type BenchmarkResult, type LatencySummary } from './benchmark.js';
export * from './segment/index.js';
