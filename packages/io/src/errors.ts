/**
 * Errors of @brats/io. Every error has a stable `code` and structured fields; messages say what was
 * expected, what was found and what to do, and never interpolate whole objects.
 */

/** Base class of every error the @brats packages throw on purpose. */
export class BratsError extends Error {
  /** Stable machine-readable identifier, e.g. `NIFTI_FORMAT`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A function was called with an argument it cannot accept (a programming or usage error). */
export class ArgumentError extends BratsError {
  readonly functionName: string;
  readonly argument: string;

  constructor(functionName: string, argument: string, reason: string) {
    super('ARGUMENT', `${functionName}(): argument '${argument}' ${reason}`);
    this.functionName = functionName;
    this.argument = argument;
  }
}

/** A NIfTI file is unreadable: truncated, wrong magic, unsupported dtype, too large, … */
export class NiftiFormatError extends BratsError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: ErrorOptions) {
    super('NIFTI_FORMAT', `${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** A dataset folder or one of its cases does not match any known layout or is inconsistent. */
export class DatasetError extends BratsError {
  readonly path: string;
  readonly caseId: string | undefined;
  readonly reason: string;

  constructor(path: string, reason: string, caseId?: string) {
    super('DATASET', caseId === undefined ? `${path}: ${reason}` : `case ${caseId}: ${path}: ${reason}`);
    this.path = path;
    this.caseId = caseId;
    this.reason = reason;
  }
}

/** Two arrays or volumes that must agree in shape do not. */
export class ShapeMismatchError extends BratsError {
  readonly expected: readonly number[];
  readonly actual: readonly number[];

  constructor(what: string, expected: readonly number[], actual: readonly number[]) {
    super('SHAPE_MISMATCH', `${what}: expected shape [${expected.join(', ')}], found [${actual.join(', ')}]`);
    this.expected = expected;
    this.actual = actual;
  }
}
