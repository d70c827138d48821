import type { CliContext } from './context.js';

/** Progress reporting for long work: a bar with rate and ETA on a terminal, plain lines otherwise. */
export interface ProgressReporter {
  /** `done` of `total` units finished; `detail` names the last one. */
  update(done: number, detail?: string): void;
  /** Final line with the total time. */
  finish(summary?: string): void;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
}

/**
 * A progress reporter for `total` units called `unit` (e.g. "cases"). On a TTY it redraws one line on
 * stderr; elsewhere (CI, pipes) it prints a plain line about every 10% and at the end.
 */
export function createProgress(context: CliContext, label: string, total: number, unit: string): ProgressReporter {
  const started = performance.now();
  let lastPlainStep = -1;
  const line = (done: number, detail?: string): string => {
    const elapsed = (performance.now() - started) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = done > 0 ? (total - done) / rate : Number.NaN;
    const fraction = total > 0 ? done / total : 1;
    const rateText = `${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} ${unit}/s`;
    const suffix = detail === undefined ? '' : ` ${detail}`;
    if (!context.isTTY) return `${label}: ${done}/${total} ${unit} (${rateText}, ETA ${formatSeconds(eta)})${suffix}`;
    const width = 24;
    const filled = Math.round(fraction * width);
    return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${rateText} ETA ${formatSeconds(eta)}${suffix}`;
  };
  return {
    update(done, detail) {
      if (context.isTTY) {
        context.stderr.write(`\r\x1b[2K${line(done, detail)}`);
        return;
      }
      const step = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (step !== lastPlainStep || done === total) {
        lastPlainStep = step;
        context.stderr.write(`${line(done, detail)}\n`);
      }
    },
    finish(summary) {
      const elapsed = (performance.now() - started) / 1000;
      if (context.isTTY) context.stderr.write('\r\x1b[2K');
      context.stderr.write(`${label}: done in ${formatSeconds(elapsed)}${summary === undefined ? '' : `, ${summary}`}\n`);
    },
  };
}
