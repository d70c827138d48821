import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CliContext } from './context.js';
import { createProgress, formatSeconds, trainingEta } from './progress.js';

function capture(isTTY: boolean): { context: CliContext; text: () => string } {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { context: { stdout: sink, stderr: sink, isTTY, verbose: false, exitCode: 0 }, text: () => text };
}

describe('progress', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('claims no rate and no ETA before a second of work, then the measured ones', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { context, text } = capture(false);
    const progress = createProgress(context, 'predict', 4, 'cases');
    vi.advanceTimersByTime(5);
    progress.update(1, 'A');
    expect(text()).toBe('predict: 1/4 cases (-- cases/s, ETA --) A\n');
    vi.advanceTimersByTime(1995);
    progress.update(2, 'B');
    // 2 cases in 2 s: 1 case/s, 2 cases to go.
    expect(text().split('\n')[1]).toBe('predict: 2/4 cases (1.00 cases/s, ETA 2.0s) B');
  });

  it('moves the bar within a case as its slices are done', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { context, text } = capture(true);
    const progress = createProgress(context, 'predict', 2, 'cases');
    vi.advanceTimersByTime(2000);
    progress.update(0, 'A', 0.5);
    // Half a case of two, a quarter of the work: 6 of 24 marks; 0.5 case in 2 s, 1.5 to go.
    expect(text()).toBe(`\r\x1b[2Kpredict [${'#'.repeat(6)}${'-'.repeat(18)}] 0/2 0.25 cases/s ETA 6.0s A`);
  });

  it('ends with the summary it is given', () => {
    const { context, text } = capture(false);
    createProgress(context, 'predict', 1, 'cases').finish('0 of 1 case(s) segmented, 1 failed');
    expect(text()).toMatch(/^predict: done in \d+\.\ds, 0 of 1 case\(s\) segmented, 1 failed\n$/);
  });

  it('writes durations in seconds, minutes and seconds, or hours and minutes', () => {
    expect(formatSeconds(4.24)).toBe('4.2s');
    expect(formatSeconds(37.4)).toBe('37s');
    expect(formatSeconds(206)).toBe('3m26s');
    // 59 min 59.6 s rounds to a whole hour, not to "59m60s".
    expect(formatSeconds(3599.6)).toBe('1h00m');
    expect(formatSeconds(3600 * 5 + 40 * 60 + 10)).toBe('5h40m');
    expect(formatSeconds(Number.NaN)).toBe('--');
  });

  it('gives a training run\'s time left from the mean pace of the epochs this process ran', () => {
    const eta = trainingEta();
    // A resumed run: epoch 41 of 100 is the first this process runs, 200 s; 59 left at 200 s each.
    expect(eta(41, 100, 200)).toBe('59 epochs left, about 3h17m');
    // Then 220 s: a mean of 210 s, 58 left.
    expect(eta(42, 100, 220)).toBe('58 epochs left, about 3h23m');
    expect(eta(99, 100, 210)).toBe('1 epoch left, about 3m30s');
    expect(eta(100, 100, 210)).toBe('last epoch');
  });
});
