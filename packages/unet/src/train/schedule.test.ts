import { describe, expect, it } from 'vitest';
import { describeSchedule, learningRateAt, scheduleConflict } from './schedule.js';

describe('learningRateAt', () => {
  it('is the base rate at every epoch of a constant schedule', () => {
    for (const epoch of [1, 7, 30]) expect(learningRateAt(5e-4, { kind: 'constant' }, epoch, 30)).toBe(5e-4);
  });

  it('holds the rate to the decay start, then follows a half cosine taken mid-epoch', () => {
    const schedule = { kind: 'cosine', decayStart: 2 } as const;
    // 4 epochs after epoch 2: the cosine at progress 0.125, 0.375, 0.625, 0.875 of half a turn.
    expect(learningRateAt(1, schedule, 1, 6)).toBe(1);
    expect(learningRateAt(1, schedule, 2, 6)).toBe(1);
    // cos(π/8) = √(2 + √2) / 2 and cos(3π/8) = √(2 − √2) / 2.
    const cos8 = Math.sqrt(2 + Math.SQRT2) / 2;
    const cos38 = Math.sqrt(2 - Math.SQRT2) / 2;
    expect(learningRateAt(1, schedule, 3, 6)).toBeCloseTo((1 + cos8) / 2, 12);
    expect(learningRateAt(1, schedule, 4, 6)).toBeCloseTo((1 + cos38) / 2, 12);
    expect(learningRateAt(1, schedule, 5, 6)).toBeCloseTo((1 - cos38) / 2, 12);
    expect(learningRateAt(1, schedule, 6, 6)).toBeCloseTo((1 - cos8) / 2, 12);
    // Symmetric about the middle of the decay: rate(e) + rate(mirror of e) = base.
    expect(learningRateAt(2e-3, schedule, 3, 6) + learningRateAt(2e-3, schedule, 6, 6)).toBeCloseTo(2e-3, 15);
  });

  it('decays from epoch 1 with decay start 0', () => {
    expect(learningRateAt(1, { kind: 'cosine', decayStart: 0 }, 1, 2)).toBeCloseTo((1 + Math.cos(Math.PI / 4)) / 2, 12);
  });
});

describe('scheduleConflict', () => {
  const constantRun = [{ epoch: 1 }, { epoch: 2 }, { epoch: 3 }];

  it('lets a constant run be extended with a decay that starts at or after its last epoch', () => {
    expect(scheduleConflict(constantRun, 1e-3, { kind: 'cosine', decayStart: 3 }, 10)).toBeUndefined();
    expect(scheduleConflict(constantRun, 1e-3, { kind: 'constant' }, 10)).toBeUndefined();
  });

  it('names the first epoch whose rate a schedule would change', () => {
    expect(scheduleConflict(constantRun, 1e-3, { kind: 'cosine', decayStart: 1 }, 10)).toEqual({ epoch: 2 });
  });

  it('refuses to stretch a decay already under way, and accepts the same schedule again', () => {
    const schedule = { kind: 'cosine', decayStart: 1 } as const;
    const run = [1, 2, 3].map((epoch) => ({ epoch, learningRate: learningRateAt(1e-3, schedule, epoch, 5) }));
    expect(scheduleConflict(run, 1e-3, schedule, 5)).toBeUndefined();
    expect(scheduleConflict(run, 1e-3, schedule, 8)?.epoch).toBe(2);
    expect(scheduleConflict(run, 1e-3, { kind: 'constant' }, 8)?.epoch).toBe(2);
  });
});

describe('describeSchedule', () => {
  it('says where the decay starts and ends', () => {
    expect(describeSchedule({ kind: 'cosine', decayStart: 50 }, 90)).toBe('constant to epoch 50, then cosine to 0 at epoch 90');
    expect(describeSchedule({ kind: 'constant' }, 90)).toBe('constant');
    expect(describeSchedule({ kind: 'cosine', decayStart: 0 }, 40)).toBe('cosine from the first epoch to 0 at epoch 40');
  });
});
