export * from './errors.js';
export * from './download.js';
export * from './archive.js';
export * from './decathlon.js';
