/**
 * `@brats/ncs2-runtime/browser`: whole-scan segmentation of a case already read, with no Node.js module reachable
 * (a page runs it on ONNX Runtime Web): the same preprocessing, batching, flips, thresholds, nesting, largest
 * component, inverse crop and label conventions as `segmentCase` in the CLI and the server.
 */
export * from './segment/portable.js';
