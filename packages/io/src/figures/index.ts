export * from './canvas.js';
export * from './slices.js';
export * from './curves.js';
export * from './report.js';
