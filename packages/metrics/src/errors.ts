/**
 * The error classes every @brats package shares. They live here, in the package with no dependencies, so that
 * one class exists at run time and `instanceof` holds across packages (@brats/io re-exports them). Every error
 * has a stable `code` and structured fields; messages say what was expected, what was found and what to do,
 * and never interpolate whole objects.
 */

/**
 * Base class of every error the @brats packages throw on purpose.
 * @example if (error instanceof BratsError) console.error(error.code, error.message);
 */
export class BratsError extends Error {
  /** Stable machine-readable identifier, e.g. `NIFTI_FORMAT`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A function was called with an argument it cannot accept (a programming or usage error); code `ARGUMENT`. */
export class ArgumentError extends BratsError {
  /** The function that rejected the argument, e.g. `computeDice`. */
  readonly functionName: string;
  /** The rejected argument, e.g. `options.threshold`. */
  readonly argument: string;

  constructor(functionName: string, argument: string, reason: string) {
    super('ARGUMENT', `${functionName}(): argument '${argument}' ${reason}`);
    this.functionName = functionName;
    this.argument = argument;
  }
}

/** Two arrays or volumes that must agree in shape do not; code `SHAPE_MISMATCH`. */
export class ShapeMismatchError extends BratsError {
  /** The shape that was required. */
  readonly expected: readonly number[];
  /** The shape that was found. */
  readonly actual: readonly number[];

  constructor(what: string, expected: readonly number[], actual: readonly number[]) {
    super('SHAPE_MISMATCH', `${what}: expected shape [${expected.join(', ')}], found [${actual.join(', ')}]`);
    this.expected = expected;
    this.actual = actual;
  }
}
