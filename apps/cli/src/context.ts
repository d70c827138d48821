import type { Writable } from 'node:stream';

/** What a command may touch: its output streams and whether they are a terminal. */
export interface CliContext {
  stdout: Writable;
  stderr: Writable;
  /** True when stderr is an interactive terminal (progress bars instead of plain lines). */
  isTTY: boolean;
  verbose: boolean;
}

/** Writes one line to stdout. */
export function printLine(context: CliContext, line = ''): void {
  context.stdout.write(`${line}\n`);
}
