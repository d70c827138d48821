/**
 * Errors of @brats/ncs2-runtime. Each extends BratsError from @brats/io with a stable `code` and structured fields.
 */
import { BratsError } from '@brats/io/browser';

/** An engine was asked for by a name that no one registered. */
export class UnknownEngineError extends BratsError {
  /** The name asked for. */
  readonly engine: string;
  /** Every registered name (plus `auto`). */
  readonly known: readonly string[];

  constructor(engine: string, known: readonly string[]) {
    super('UNKNOWN_ENGINE', `unknown inference engine '${engine}'; known engines: ${known.join(', ')}`);
    this.engine = engine;
    this.known = known;
  }
}

/** An engine cannot run here: its package is not installed, its native binding did not load, or a device is gone. */
export class EngineUnavailableError extends BratsError {
  /** The engine's registered name. */
  readonly engine: string;
  /** Why it cannot run, one line. */
  readonly reason: string;
  /** What to do about it (how to install), one line. */
  readonly remedy: string;

  constructor(engine: string, reason: string, remedy: string, options?: ErrorOptions) {
    super('ENGINE_UNAVAILABLE', `engine '${engine}' is not available: ${reason}. ${remedy}`, options);
    this.engine = engine;
    this.reason = reason;
    this.remedy = remedy;
  }
}

/** An engine was used wrongly or failed: an unsupported device, run before load, a failed native call. */
export class EngineError extends BratsError {
  /** The engine's registered name. */
  readonly engine: string;
  /** What went wrong, one line. */
  readonly reason: string;

  constructor(engine: string, reason: string, options?: ErrorOptions) {
    super('ENGINE', `engine '${engine}': ${reason}`, options);
    this.engine = engine;
    this.reason = reason;
  }
}

export { firstLine } from './first-line.js';

/** Inputs that do not make a case: a missing file, a modality role given twice or missing, nothing given at all. */
export class CaseInputError extends BratsError {
  /** The input at fault (a path or a `role=` argument), or '' when the whole set is at fault. */
  readonly input: string;
  /** What is wrong, one line. */
  readonly reason: string;

  constructor(input: string, reason: string) {
    super('CASE_INPUT', input === '' ? reason : `${input}: ${reason}`);
    this.input = input;
    this.reason = reason;
  }
}
