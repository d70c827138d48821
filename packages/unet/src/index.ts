/**
 * @brats/unet: train the seed's U-Net on a slice store, export it to ONNX, and run it with TensorFlow.js. This entry's
 * types are the package's own: a consumer type-checks it under `--strict` without `skipLibCheck`. The TensorFlow.js
 * building blocks (the model, the losses, layer files, the parallel trainer) are in `@brats/unet/tf`, whose types
 * are TensorFlow.js's (which need `skipLibCheck`).
 */
export * from './errors.js';
export * from './backend.js';
export * from './wasm-kernels.js';
export { UNET_DEFAULTS, UNET_INPUT_NAME, UNET_OUTPUT_NAME, type UnetOptions, type UpsamplingMode } from './model.js';
export { TFJS_MODEL_FILE, TFJS_WEIGHTS_FILE } from './model-files.js';
export { exportBundleToOnnx, ONNX_MODEL_FILE, OnnxExportError, type BundleOnnxExport, type ExportOnnxOptions, type OnnxOpset } from './export/index.js';
export { ActivationRanges, quantizableActivations, quantizeQdq, uint8Parameters, withActivationOutputs, type ActivationRange, type QdqSummary } from './export/index.js';
export * from './train/index.js';
export { GradientWorkerError, locateGradientWorker, type DataParallelOptions } from './parallel/index.js';
export * from './predict/index.js';
export { writeUntrainedBundle, type UntrainedBundleOptions } from './bundle.js';
