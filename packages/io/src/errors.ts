/**
 * Errors of @brats/io. Every error has a stable `code` and structured fields; messages say what was
 * expected, what was found and what to do, and never interpolate whole objects.
 *
 * The base class and the errors that scoring throws too (`BratsError`, `ArgumentError`, `ShapeMismatchError`)
 * come from @brats/metrics, which depends on nothing, and are re-exported here: one class of each exists at
 * run time, so `instanceof` holds whichever package an error comes from.
 */
import { BratsError } from '@brats/metrics';

export { BratsError, ArgumentError, ShapeMismatchError } from '@brats/metrics';

/** A NIfTI file is unreadable: truncated, wrong magic, unsupported dtype, too large, …; code `NIFTI_FORMAT`. */
export class NiftiFormatError extends BratsError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: ErrorOptions) {
    super('NIFTI_FORMAT', `${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}

/** A dataset folder or one of its cases does not match any known layout or is inconsistent; code `DATASET`. */
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
