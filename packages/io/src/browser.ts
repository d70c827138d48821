/**
 * `@brats/io/browser`: the parts of @brats/io that run without Node.js (no `node:` module is reachable from here),
 * for a page that segments in the browser with the same code as the CLI: volumes, NIfTI decoding and encoding,
 * the canonical case and its checks, the label conventions, the model manifest and the preprocessing.
 */
export * from './errors.js';
export * from './volume.js';
export * from './regions.js';
export * from './orientation.js';
export * from './layouts/channels.js';
export * from './layouts/case.js';
export * from './preprocess.js';
export * from './manifest.js';
export { DEFAULT_MAX_NIFTI_BYTES, decodeNifti, parseNiftiWith, type Gunzip, type NiftiHeaderSummary, type NiftiVolume, type ReadNiftiOptions } from './nifti/decode.js';
export { encodeNifti, type WriteNiftiOptions } from './nifti/encode.js';
export { quaternionToAffine, affineToQuaternion } from './nifti/geometry.js';
export { NIFTI_DATATYPE_CODES } from './nifti/dtypes.js';
export { gunzipWeb, gzipWeb, parseNiftiBytes } from './web-gzip.js';
