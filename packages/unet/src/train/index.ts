export { trainUnet, TRAINING_LOG_FILE, TRAINING_CURVES_FILE } from './trainer.js';
export type { TrainOptions, TrainCallbacks, TrainResult, TrainMonitor } from './trainer.js';
export type { EpochRecord, TrainingState } from './checkpoint.js';
export { CHECKPOINT_POINTER } from './checkpoint.js';
export { planEpoch, type EpochPlanOptions } from './sampler.js';
export { augmentBatch, DEFAULT_AUGMENTATION, type AugmentOptions, type AugmentSettings } from './augment.js';
export { learningRateAt, describeSchedule, scheduleConflict, CONSTANT_SCHEDULE, type LearningRateSchedule, type EpochRate } from './schedule.js';
