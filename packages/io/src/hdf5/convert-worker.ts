/**
 * The decoding side of convert: read one case's NIfTI files and preprocess it. Runs in worker threads
 * (this module starts its message loop when loaded as a convert worker) or in the calling thread.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { BratsError, DatasetError, NiftiFormatError } from '../errors.js';
import { loadCase, type CaseRef } from '../layouts/dataset.js';
import { DEFAULT_MODEL_ORIENTATION, describeOrientation, reorientCase } from '../orientation.js';
import { preprocessCase, type PreprocessOptions, type PreprocessParams } from '../preprocess.js';

/** URL of the module holding the worker loop: this file from sources, the bundle once built. */
export const CONVERT_WORKER_URL = import.meta.url;

/** Marker in `workerData` that makes a loaded module start the convert worker loop. */
export const CONVERT_WORKER_ROLE = 'brats-convert-worker';

/** One decoded and preprocessed case, ready for the writer (buffers are transferable). */
export interface PreparedCase {
  id: string;
  /** [depth, height, width, channels] */
  shape: [number, number, number, number];
  image: Float32Array;
  /** [depth, height, width, K] */
  mask: Uint8Array;
  tumourVoxels: Uint32Array;
  params: PreprocessParams;
  /** Voxel size in mm (i, j, k) of the scan: the store records the spacing its cases share. */
  spacing: [number, number, number];
  /** What looked wrong with the case but did not stop it (loadCase's warnings). */
  warnings: string[];
}

/** How a case is read and preprocessed for the store. */
export interface PrepareOptions extends PreprocessOptions {
  /** NaN or infinite image voxels: refuse the case (default) or set them to 0 with a warning. */
  nonFinite?: 'error' | 'zero';
}

/** Request from the main thread to a worker. */
export interface ConvertTask {
  index: number;
  ref: CaseRef;
  options: PrepareOptions;
}

/** An error as it crosses a thread boundary: enough to rebuild the @brats error class. */
export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  stack?: string;
  path?: string;
  reason?: string;
  caseId?: string;
}

/** Reply of a worker. */
export type ConvertReply = { index: number; ok: true; prepared: PreparedCase } | { index: number; ok: false; error: SerializedError };

/**
 * Loads and preprocesses one labelled case: slices [depth, height, width, channels] float32 and masks.
 * @throws {DatasetError} when the case has no label map or a file is unreadable.
 */
export async function prepareCase(ref: CaseRef, options: PrepareOptions): Promise<PreparedCase> {
  const { nonFinite, ...preprocess } = options;
  const loaded = await loadCase(ref, nonFinite === undefined ? {} : { nonFinite });
  // The store's slices are all in one orientation, the one its model will segment in (a no-op for BraTS files).
  const { case: canonical, plan } = reorientCase(loaded, DEFAULT_MODEL_ORIENTATION);
  const turned = plan.identity
    ? []
    : [`${ref.images[0] ?? ref.id}: orientation ${describeOrientation(plan.from)} turned to ${describeOrientation(plan.to)} for the store (axes permuted and reversed, no interpolation)`];
  const preprocessed = preprocessCase(canonical, preprocess);
  if (preprocessed.mask === undefined || preprocessed.tumourVoxels === undefined) {
    throw new DatasetError(ref.images[0] ?? ref.id, 'has no label map; a slice store needs labelled cases', ref.id);
  }
  return {
    id: preprocessed.id,
    shape: [...preprocessed.shape],
    image: preprocessed.image,
    mask: preprocessed.mask,
    tumourVoxels: preprocessed.tumourVoxels,
    params: preprocessed.params,
    spacing: [...canonical.channels[0].spacing] as [number, number, number],
    warnings: [...(canonical.warnings ?? []), ...turned],
  };
}

/** Flattens an error for postMessage, keeping the structured fields of @brats errors. */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const serialized: SerializedError = { name: error.name, message: error.message };
  if (error.stack !== undefined) serialized.stack = error.stack;
  if (error instanceof BratsError) serialized.code = error.code;
  for (const field of ['path', 'reason', 'caseId'] as const) {
    const value = (error as unknown as Record<string, unknown>)[field];
    if (typeof value === 'string') serialized[field] = value;
  }
  return serialized;
}

/** Rebuilds an error serialized by {@link serializeError}, as the same @brats class where it is one. */
export function deserializeError(serialized: SerializedError): Error {
  let error: Error;
  if (serialized.name === 'DatasetError' && serialized.path !== undefined && serialized.reason !== undefined) {
    error = new DatasetError(serialized.path, serialized.reason, serialized.caseId);
  } else if (serialized.name === 'NiftiFormatError' && serialized.path !== undefined && serialized.reason !== undefined) {
    error = new NiftiFormatError(serialized.path, serialized.reason);
  } else if (serialized.code !== undefined) {
    // Other @brats errors keep their code and message (their extra fields do not cross threads).
    error = new BratsError(serialized.code, serialized.message);
  } else {
    error = new Error(serialized.message);
    error.name = serialized.name;
  }
  if (serialized.stack !== undefined) error.stack = serialized.stack;
  return error;
}

function startWorkerLoop(): void {
  const port = parentPort;
  if (port === null) return;
  port.on('message', (task: ConvertTask) => {
    prepareCase(task.ref, task.options).then(
      (prepared) => {
        const reply: ConvertReply = { index: task.index, ok: true, prepared };
        const transfer = [prepared.image.buffer, prepared.mask.buffer, prepared.tumourVoxels.buffer].filter(
          (buffer, position, all): buffer is ArrayBuffer => buffer instanceof ArrayBuffer && all.indexOf(buffer) === position,
        );
        port.postMessage(reply, transfer);
      },
      (error: unknown) => {
        const reply: ConvertReply = { index: task.index, ok: false, error: serializeError(error) };
        port.postMessage(reply);
      },
    );
  });
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === CONVERT_WORKER_ROLE) startWorkerLoop();
