export * from './errors.js';
export * from './backend.js';
export * from './wasm-kernels.js';
