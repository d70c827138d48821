/** Messages between the data-parallel coordinator and its gradient workers (internal). */
import type { BackendName } from '../backend.js';
import type { CombinedLossOptions } from '../losses.js';
import type { UnetOptions } from '../model.js';

export type WorkerRequest =
  | { type: 'init'; backend: BackendName; model: UnetOptions; loss: CombinedLossOptions }
  | {
      type: 'step';
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
