// From @brats/metrics, which has no dependencies: the same classes @brats/io re-exports, without loading it.
import { ArgumentError, BratsError } from '@brats/metrics';

/** Exit codes of the `brats` command. */
export const EXIT = { ok: 0, usage: 1, badInput: 2, internal: 3 } as const;

/** A wrong or missing command-line argument: exit code 1. */
export class UsageError extends BratsError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Maps an error to the exit code and the one line a user sees. */
export function describeError(error: unknown): { exitCode: number; line: string } {
  // A case input that does not exist or is incomplete is a usage error, as for any other argument.
  if (error instanceof UsageError || error instanceof ArgumentError || (error instanceof BratsError && error.code === 'CASE_INPUT')) {
    return { exitCode: EXIT.usage, line: `error: ${error.message}` };
  }
  if (error instanceof BratsError) return { exitCode: EXIT.badInput, line: `error: ${error.message}` };
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: EXIT.internal, line: `internal error: ${message} (run with --verbose for details)` };
}
