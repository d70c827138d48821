/**
 * Errors of @brats/unet. Each extends BratsError from @brats/io with a stable `code` and structured fields.
 */
import { BratsError } from '@brats/io';

/** A TensorFlow.js backend that was asked for by name could not be loaded or initialised. */
export class BackendError extends BratsError {
  /** The backend that failed: `tensorflow`, `wasm` or `cpu`. */
  readonly backend: string;
  /** Why it failed, one line. */
  readonly reason: string;

  constructor(backend: string, reason: string, options?: ErrorOptions) {
    super('BACKEND_UNAVAILABLE', `backend '${backend}' cannot be used: ${reason}`, options);
    this.backend = backend;
    this.reason = reason;
  }
}

/** A kernel was called with a configuration that this package's kernels do not implement. */
export class UnsupportedKernelError extends BratsError {
  /** The TensorFlow.js kernel name, e.g. `Conv2DBackpropFilter`. */
  readonly kernel: string;
  /** What about the call is unsupported. */
  readonly reason: string;

  constructor(kernel: string, reason: string) {
    super('UNSUPPORTED_KERNEL', `${kernel} on the wasm backend: ${reason}`);
    this.kernel = kernel;
    this.reason = reason;
  }
}

/** Training failed for a reason the user can fix (no validation data, a bundle in the way, …). */
export class TrainingError extends BratsError {
  constructor(message: string) {
    super('TRAINING', message);
  }
}
