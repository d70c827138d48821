/**
 * The learning-rate schedule: constant (the seed), or held until an epoch and then annealed along a half cosine to
 * zero at the last epoch (the "flat, then cosine" schedule). The rate is constant within an epoch and recorded in
 * each epoch's line of `metrics.jsonl`, so a resume can tell whether a new schedule would rewrite epochs already run.
 */
import * as tf from '@tensorflow/tfjs';

/** How the learning rate moves over the epochs. */
export type LearningRateSchedule = { kind: 'constant' } | { kind: 'cosine'; /** Last epoch at the full rate (0: decay from epoch 1). */ decayStart: number };

export const CONSTANT_SCHEDULE: LearningRateSchedule = { kind: 'constant' };

/**
 * The learning rate of epoch `epoch` (from 1) of a run of `epochs` epochs. With `cosine`, epochs up to `decayStart`
 * run at `base`; epoch e after it runs at base · ½(1 + cos(π · (e − decayStart − ½) / (epochs − decayStart))), the
 * cosine taken at the middle of the epoch, so the first decayed epoch is just below `base` and the last just above 0.
 */
export function learningRateAt(base: number, schedule: LearningRateSchedule, epoch: number, epochs: number): number {
  if (schedule.kind === 'constant' || epoch <= schedule.decayStart) return base;
  const progress = (epoch - schedule.decayStart - 0.5) / (epochs - schedule.decayStart);
  return base * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** The rate epochs ran with, as `metrics.jsonl` records them (absent in constant runs: the run's base rate). */
export interface EpochRate {
  epoch: number;
  learningRate?: number;
}

/**
 * The first epoch already run whose rate `schedule` over `epochs` epochs would change, or undefined when the
 * schedule keeps every one: a resume may extend a run or start a decay, never rewrite what ran.
 */
export function scheduleConflict(history: readonly EpochRate[], base: number, schedule: LearningRateSchedule, epochs: number): EpochRate | undefined {
  return history.find((record) => Math.abs(learningRateAt(base, schedule, record.epoch, epochs) - (record.learningRate ?? base)) > 1e-9 * base);
}

/** One line, e.g. `constant to epoch 50, then cosine to 0 at epoch 90`, or `constant`. */
export function describeSchedule(schedule: LearningRateSchedule, epochs: number): string {
  if (schedule.kind === 'constant') return 'constant';
  return schedule.decayStart === 0 ? `cosine from the first epoch to 0 at epoch ${epochs}` : `constant to epoch ${schedule.decayStart}, then cosine to 0 at epoch ${epochs}`;
}

/**
 * Adam whose learning rate can change between steps. TensorFlow.js has no scheduler and keeps the rate in a
 * protected field that `applyGradients` reads at every step, so a subclass that sets it is all a schedule needs.
 */
export class ScheduledAdam extends tf.AdamOptimizer {
  constructor(learningRate: number) {
    // tf.train.adam's defaults.
    super(learningRate, 0.9, 0.999);
  }

  setRate(learningRate: number): void {
    this.learningRate = learningRate;
  }
}
