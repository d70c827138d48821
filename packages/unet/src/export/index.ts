export { exportOnnx, type ExportOnnxOptions, type OnnxOpset } from './export-onnx.js';
export { exportBundleToOnnx, ONNX_MODEL_FILE, type BundleOnnxExport } from './export-bundle.js';
export { OnnxExportError } from './errors.js';
export { ActivationRanges, quantizableActivations, quantizeQdq, uint8Parameters, withActivationOutputs, type ActivationRange, type QdqSummary } from './quantize-qdq.js';
