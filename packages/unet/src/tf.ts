/**
 * @brats/unet/tf: the TensorFlow.js building blocks of the trainer — the U-Net and its SpatialDropout2D layer, the
 * seed's losses and Dice, layer-model files, ONNX export of a model, the data-parallel trainer, bundles written
 * from a changed model — with everything of `@brats/unet`. Their types are TensorFlow.js's own: a consumer that
 * type-checks them needs `skipLibCheck` (TensorFlow.js's declarations do not pass a strict check of their own).
 */
export * from './index.js';
export * from './spatial-dropout.js';
export * from './model.js';
export * from './losses.js';
export * from './model-files.js';
export { exportOnnx } from './export/index.js';
export * from './parallel/index.js';
export { createUnetManifest, writePreparedBundle, type PreparedBundleOptions } from './bundle.js';
