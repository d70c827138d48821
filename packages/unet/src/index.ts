export * from './errors.js';
export * from './backend.js';
export * from './wasm-kernels.js';
export * from './spatial-dropout.js';
export * from './model.js';
export * from './losses.js';
export * from './model-files.js';
export * from './export/index.js';
