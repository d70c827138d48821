export { startDataParallel, locateGradientWorker, GradientWorkerError } from './data-parallel.js';
export type { DataParallelOptions, DataParallelTrainer } from './data-parallel.js';
