/** How a cohort job's failure is treated: retried, or the case fails alone with its reason. */
import { BratsError, ModelBundleError } from '@brats/io';
import { EngineError, EngineUnavailableError, UnknownEngineError } from '../errors.js';

/** A job stopped before writing anything because its worker is shutting down; code `JOB_ABORTED`. */
export class JobAbortedError extends BratsError {
  /** The job's id. */
  readonly jobId: string;

  constructor(jobId: string, reason: string) {
    super('JOB_ABORTED', `job ${jobId} stopped before writing its outputs: ${reason}`);
    this.jobId = jobId;
  }
}

/**
 * Why a job failed, which says whether trying again can help:
 * - `input`: the case itself cannot be segmented as given (unreadable or truncated NIfTI, files that do not share
 *   a grid, a missing file): every retry would fail the same way;
 * - `environment`: the model bundle or the engine on the machine that ran it (missing bundle, engine not
 *   installed, a native failure): another worker, or a later try, may succeed;
 * - `aborted`: the worker stopped the job before it wrote anything (shutdown); it can run again anywhere;
 * - `unexpected`: anything else (a full disk, a lost connection): possibly transient.
 */
export type CohortErrorKind = 'input' | 'environment' | 'aborted' | 'unexpected';

/** Sorts a job's error into a {@link CohortErrorKind}. */
export function classifyCohortError(error: unknown): CohortErrorKind {
  if (error instanceof JobAbortedError) return 'aborted';
  if (error instanceof ModelBundleError || error instanceof EngineUnavailableError || error instanceof EngineError || error instanceof UnknownEngineError) {
    return 'environment';
  }
  if (error instanceof BratsError) return 'input';
  return 'unexpected';
}
