export { exportOnnx, type ExportOnnxOptions, type OnnxOpset } from './export-onnx.js';
export { OnnxExportError } from './errors.js';
