/** Messages between the data-parallel coordinator and its gradient workers (internal). */
import type { BackendName } from '../backend.js';
import type { CombinedLossOptions } from '../losses.js';
import type { UnetOptions } from '../model.js';

export type WorkerRequest =
  | { type: 'init'; backend: BackendName; model: UnetOptions; loss: CombinedLossOptions }
  | {
      type: 'step';
      /** Masks each SpatialDropout2D layer has drawn so far (the optimizer step), so a resumed run draws alike. */
      drawCount: number;
      weights: Float32Array[];
      weightShapes: number[][];
      images: Float32Array;
      imageShape: [number, number, number, number];
      masks: Float32Array;
      maskShape: [number, number, number, number];
    };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'gradients'; loss: number; gradients: Float32Array[] }
  | { type: 'error'; message: string };
