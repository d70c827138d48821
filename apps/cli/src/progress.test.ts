import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CliContext } from './context.js';
import { createProgress } from './progress.js';

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
});
