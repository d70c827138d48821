import { BratsError } from '../errors.js';

/** An HDF5 slice store cannot be written or read: missing file, missing dataset, wrong shape or dtype. */
export class SliceStoreError extends BratsError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string, options?: ErrorOptions) {
    super('SLICE_STORE', `${path}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
  }
}
