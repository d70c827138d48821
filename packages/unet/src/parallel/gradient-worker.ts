/**
 * Worker-thread entry of the data-parallel gradient computation: it holds its own U-Net on its own wasm
 * backend, takes the current weights and a share of the batch, and returns the loss and weight gradients.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.js';
import type { CombinedLossOptions } from '../losses.js';
import { buildUnet, type UnetOptions } from '../model.js';
import { SpatialDropout2D } from '../spatial-dropout.js';
import type { WorkerReply, WorkerRequest } from './messages.js';
import { computeShareGradients } from './share-gradients.js';

if (parentPort === null) {
  throw new Error('gradient-worker must run as a worker thread');
}
const port = parentPort;
let model: tf.LayersModel | undefined;
let lossOptions: CombinedLossOptions = {};

port.on('message', (request: WorkerRequest) => {
  void handle(request).then(
    (reply) => port.postMessage(reply, reply.type === 'gradients' ? reply.gradients.map((g) => g.buffer as ArrayBuffer) : []),
    (error: unknown) => port.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) } satisfies WorkerReply),
  );
});

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  if (request.type === 'init') {
    await initBackend(request.backend);
    model = buildUnet(request.model as UnetOptions);
    lossOptions = request.loss;
    return { type: 'ready' };
  }
  if (model === undefined) throw new Error('gradient-worker: step before init');
  const network = model;
  for (const layer of network.layers) if (layer instanceof SpatialDropout2D) layer.setDrawCount(request.drawCount);
  const shares = tf.tidy(() => {
    network.setWeights(request.weights.map((values, i) => tf.tensor(values, request.weightShapes[i]!)));
    return [tf.tensor4d(request.images, request.imageShape), tf.tensor4d(request.masks, request.maskShape)] as const;
  });
  const [images, masks] = shares;
  const { loss, gradients } = computeShareGradients(network, images, masks, lossOptions);
  tf.dispose([images, masks]);
  return { type: 'gradients', loss, gradients };
}
