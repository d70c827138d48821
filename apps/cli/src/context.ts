import type { Writable } from 'node:stream';

/** What a command may touch: its output streams and whether they are a terminal. */
export interface CliContext {
  stdout: Writable;
  stderr: Writable;
  /** True when stderr is an interactive terminal (progress bars instead of plain lines). */
  isTTY: boolean;
  verbose: boolean;
  /** Exit code a command sets when it finishes without throwing but found bad input (default 0). */
  exitCode: number;
}

/** Writes one line to stdout. */
export function printLine(context: CliContext, line = ''): void {
  context.stdout.write(`${line}\n`);
}
