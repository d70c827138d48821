/**
 * Data-parallel training steps over worker threads. The wasm backend runs on one core in Node, so a step is
 * split into shares: the main thread and each worker (its own U-Net on its own wasm backend) compute the loss
 * gradients of one share of the batch with the same weights, and the main thread applies their average weighted
 * by share size. For the cross-entropy term this is exactly the full-batch gradient; the seed's Dice loss is a
 * ratio of batch means, so each share's Dice term is computed over its own slices (as with the seed's
 * multi-device Keras training, where each device had its own part of the batch). With batch normalisation only
 * the main thread's share updates the moving statistics.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { ArgumentError, BratsError } from '@brats/io';
import type { CombinedLossOptions } from '../losses.js';
import type { UnetOptions } from '../model.js';
import type { WorkerReply, WorkerRequest } from './messages.js';
import { computeShareGradients } from './share-gradients.js';

/** A gradient worker failed to start or to compute its share. */
export class GradientWorkerError extends BratsError {
  readonly reason: string;

  constructor(reason: string, options?: ErrorOptions) {
    super('GRADIENT_WORKER', `data-parallel gradient worker: ${reason}`, options);
    this.reason = reason;
  }
}

/** Options of startDataParallel. */
export interface DataParallelOptions {
  /** The options the trained model was built with (workers build the same architecture). */
  readonly model: UnetOptions;
  /** Worker threads besides the main thread. Default 1 (two shares, for two cores). */
  readonly workers?: number;
  /** Options of the combined loss. */
  readonly loss?: CombinedLossOptions;
  /** Backend of the workers. Default `wasm`. */
  readonly backend?: 'wasm' | 'cpu';
}

/** A pool of gradient workers; `step` runs one data-parallel optimisation step. */
export interface DataParallelTrainer {
  /** Number of shares a batch is split into (workers + 1). */
  readonly shares: number;
  /**
   * One optimisation step on `images` [batch, height, width, channels] and `masks` [batch, height, width,
   * outputChannels]: share gradients in parallel, their size-weighted average applied by `optimizer` to `model`.
   * Resolves to the size-weighted mean of the share losses. `drawCount` (default 0) is the number of dropout masks
   * drawn before this step (the optimizer step): each worker sets its SpatialDropout2D layers to it, as the trainer
   * does on the main thread, so that a resumed run draws the masks of an uninterrupted one.
   * @throws GradientWorkerError when a worker fails.
   */
  step(model: tf.LayersModel, optimizer: tf.Optimizer, images: tf.Tensor4D, masks: tf.Tensor4D, drawCount?: number): Promise<number>;
  /** Stops the workers. */
  close(): Promise<void>;
}

/** Path of the built worker entry: beside this module in dist/, or in dist/ when running from the sources. */
export function locateGradientWorker(): string | undefined {
  const candidates = [new URL('./gradient-worker.js', import.meta.url), new URL('../../dist/gradient-worker.js', import.meta.url)];
  for (const candidate of candidates) {
    const file = fileURLToPath(candidate);
    if (existsSync(file)) return file;
  }
  return undefined;
}

class WorkerHandle {
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;

  constructor(readonly worker: Worker) {
    worker.on('message', (reply: WorkerReply) => {
      const pending = this.pending;
      this.pending = undefined;
      if (pending === undefined) return;
      if (reply.type === 'error') pending.reject(new GradientWorkerError(reply.message));
      else pending.resolve(reply);
    });
    worker.on('error', (error) => {
      const pending = this.pending;
      this.pending = undefined;
      pending?.reject(new GradientWorkerError(error.message, { cause: error }));
    });
  }

  request(message: WorkerRequest): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(message);
    });
  }
}

/** Splits `total` into `parts` near-equal sizes, larger first. */
function splitSizes(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/**
 * Starts `workers` gradient workers (each initialises its backend and builds the model) for data-parallel steps.
 * @throws ArgumentError for a worker count below 1; GradientWorkerError when the worker entry is not built or a
 *   worker fails to start.
 */
export async function startDataParallel(options: DataParallelOptions): Promise<DataParallelTrainer> {
  const count = options.workers ?? 1;
  if (!Number.isInteger(count) || count < 1) {
    throw new ArgumentError('startDataParallel', 'workers', `must be a positive integer, found ${count}`);
  }
  const entry = locateGradientWorker();
  if (entry === undefined) {
    throw new GradientWorkerError('dist/gradient-worker.js is missing: build @brats/unet first');
  }
  const loss = options.loss ?? {};
  const handles = Array.from({ length: count }, () => new WorkerHandle(new Worker(entry)));
  try {
    await Promise.all(
      handles.map((handle, index) => {
        const seed = options.model.seed;
        // Distinct dropout draws per share; the initial weights are overwritten at every step anyway.
        const model = seed === undefined ? options.model : { ...options.model, seed: seed + 7919 * (index + 1) };
        return handle.request({ type: 'init', backend: options.backend ?? 'wasm', model, loss });
      }),
    );
  } catch (error) {
    await Promise.all(handles.map((handle) => handle.worker.terminate()));
    throw error;
  }

  return {
    shares: count + 1,
    async step(model, optimizer, images, masks, drawCount = 0) {
      const batch = images.shape[0];
      const sizes = splitSizes(batch, count + 1);
      const weights = model.getWeights();
      const weightValues = weights.map((w) => w.dataSync() as Float32Array);
      const weightShapes = weights.map((w) => w.shape);
      const replies: Array<Promise<WorkerReply>> = [];
      let start = sizes[0]!;
      for (let k = 0; k < count; k++) {
        const size = sizes[k + 1]!;
        if (size === 0) continue;
        const [imageShare, maskShare] = [images.slice(start, size), masks.slice(start, size)];
        replies.push(
          handles[k]!.request({
            type: 'step',
            drawCount,
            weights: weightValues,
            weightShapes,
            images: imageShare.dataSync() as Float32Array,
            imageShape: imageShare.shape,
            masks: maskShare.dataSync() as Float32Array,
            maskShape: maskShare.shape,
          }),
        );
        tf.dispose([imageShare, maskShare]);
        start += size;
      }
      const mainImages = images.slice(0, sizes[0]);
      const mainMasks = masks.slice(0, sizes[0]);
      const main = computeShareGradients(model, mainImages, mainMasks, loss);
      tf.dispose([mainImages, mainMasks]);
      const results = [{ size: sizes[0]!, ...main }];
      const answered = await Promise.all(replies);
      answered.forEach((reply, k) => {
        if (reply.type !== 'gradients') throw new GradientWorkerError(`unexpected reply '${reply.type}'`);
        results.push({ size: sizes[k + 1]!, loss: reply.loss, gradients: reply.gradients });
      });
      const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
      const averaged: tf.NamedTensorMap = {};
      variables.forEach((variable, i) => {
        const sum = new Float32Array(variable.size);
        for (const result of results) {
          const share = result.gradients[i]!;
          const weight = result.size / batch;
          for (let j = 0; j < sum.length; j++) sum[j]! += weight * share[j]!;
        }
        averaged[variable.name] = tf.tensor(sum, variable.shape);
      });
      optimizer.applyGradients(averaged);
      tf.dispose(Object.values(averaged));
      return results.reduce((total, result) => total + (result.size / batch) * result.loss, 0);
    },
    async close() {
      await Promise.all(handles.map((handle) => handle.worker.terminate()));
    },
  };
}
