import type { CliContext } from './context.js';

/** Progress reporting for long work: a bar with rate and ETA on a terminal, plain lines otherwise. */
export interface ProgressReporter {
  /**
   * `done` of `total` units finished; `detail` names the last one; `partial` (0 to 1) is how far the units under
   * way have got, in units (a case half segmented is 0.5), so the bar moves within a long unit.
   */
  update(done: number, detail?: string, partial?: number): void;
  /** Final line with the total time. */
  finish(summary?: string): void;
}

/** Seconds of work before a rate (and an ETA) is shown. */
const MIN_RATE_SECONDS = 1;

/** `4.2s`, `37s`, `3m26s`, `5h40m`: a duration as a person reads it. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/**
 * The time a training run has left, from the pace of the epochs this process ran (a resumed run's earlier epochs
 * ran elsewhere, perhaps on a busier machine): call it once per finished epoch with that epoch's seconds.
 * @returns `99 epochs left, about 5h40m`, or `last epoch` after the last.
 */
export function trainingEta(): (epoch: number, epochs: number, seconds: number) => string {
  let ran = 0;
  let spent = 0;
  return (epoch, epochs, seconds) => {
    ran++;
    spent += seconds;
    const left = epochs - epoch;
    if (left <= 0) return 'last epoch';
    return `${left} epoch${left === 1 ? '' : 's'} left, about ${formatSeconds((left * spent) / ran)}`;
  };
}

/**
 * A progress reporter for `total` units called `unit` (e.g. "cases"). On a TTY it redraws one line on
 * stderr; elsewhere (CI, pipes) it prints a plain line about every 10% and at the end.
 */
export function createProgress(context: CliContext, label: string, total: number, unit: string): ProgressReporter {
  const started = performance.now();
  let lastPlainStep = -1;
  const line = (done: number, detail: string | undefined, partial: number): string => {
    const elapsed = (performance.now() - started) / 1000;
    const progressed = Math.min(total, done + partial);
    // A rate needs time to mean anything: the first case finished after 5 ms is not "200 cases/s".
    const measured = elapsed >= MIN_RATE_SECONDS && progressed > 0;
    const rate = progressed / Math.max(elapsed, 1e-9);
    const eta = measured ? (total - progressed) / rate : Number.NaN;
    const fraction = total > 0 ? progressed / total : 1;
    const rateText = measured ? `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} ${unit}/s` : `-- ${unit}/s`;
    const suffix = detail === undefined ? '' : ` ${detail}`;
    if (!context.isTTY) return `${label}: ${done}/${total} ${unit} (${rateText}, ETA ${formatSeconds(eta)})${suffix}`;
    const width = 24;
    const filled = Math.round(fraction * width);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${rateText} ETA ${formatSeconds(eta)}${suffix}`;
  };
  return {
    update(done, detail, partial = 0) {
      if (context.isTTY) {
        context.stderr.write(`\r\x1b[2K${line(done, detail, partial)}`);
        return;
      }
      const step = total > 0 ? Math.floor(((done + partial) / total) * 10) : 10;
      if (step !== lastPlainStep || (done === total && partial === 0)) {
        lastPlainStep = step;
        context.stderr.write(`${line(done, detail, partial)}\n`);
      }
    },
    finish(summary) {
      const elapsed = (performance.now() - started) / 1000;
      if (context.isTTY) context.stderr.write('\r\x1b[2K');
      context.stderr.write(`${label}: done in ${formatSeconds(elapsed)}${summary === undefined ? '' : `, ${summary}`}\n`);
    },
  };
}
