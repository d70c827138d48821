/**
 * MaxPoolGrad for the wasm backend's 2x2 stride-2 pooling (the U-Net's only pooling) as one pass over the
 * windows. The shipped kernel is a general strided loop that measured several times slower than this at the
 * U-Net's first level; other pooling configurations still use it. The gradient of each window goes to its first
 * maximum in row-major order, as the cpu backend (the reference) routes it, so results are identical.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;

let registered = false;

/** Registers (once) the fast 2x2 stride-2 MaxPoolGrad for the wasm backend. */
export function registerWasmPoolKernels(): void {
  if (registered) return;
  const original = tf.getKernel('MaxPoolGrad', 'wasm');
  if (original === undefined) return;
  tf.unregisterKernel('MaxPoolGrad', 'wasm');
  registered = true;
  const setupFunc = original.setupFunc;
  tf.registerKernel({
    kernelName: 'MaxPoolGrad',
    backendName: 'wasm',
    // The original's setup binds its wasm export; it must still run for the configurations handed back to it.
    ...(setupFunc === undefined ? {} : { setupFunc }),
    kernelFunc: (args) => {
      const backend = args.backend as BackendWasm;
      const dy = args.inputs['dy'] as TensorInfo;
      const input = args.inputs['input'] as TensorInfo;
      const attrs = args.attrs ?? {};
      const info = tf.backend_util.computePool2DInfo(
        input.shape as [number, number, number, number],
        attrs['filterSize'] as [number, number] | number,
        attrs['strides'] as [number, number] | number,
        1,
        attrs['pad'] as 'valid' | 'same' | number,
        attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
      );
      const fast =
        input.dtype === 'float32' &&
        info.filterHeight === 2 &&
        info.filterWidth === 2 &&
        info.strideHeight === 2 &&
        info.strideWidth === 2 &&
        info.padInfo.top === 0 &&
        info.padInfo.left === 0 &&
        info.inHeight === 2 * info.outHeight &&
        info.inWidth === 2 * info.outWidth;
      if (!fast) return original.kernelFunc(args);
      const dx = backend.makeOutput(input.shape, 'float32');
      const x = backend.typedArrayFromHeap(input) as Float32Array;
      const gradient = backend.typedArrayFromHeap(dy) as Float32Array;
      const out = backend.typedArrayFromHeap(dx) as Float32Array;
      out.fill(0);
      const channels = info.inChannels;
      const rowStride = info.inWidth * channels;
      let o = 0;
      for (let b = 0; b < info.batchSize; b++) {
        for (let i = 0; i < info.outHeight; i++) {
          const rowStart = (b * info.inHeight + 2 * i) * rowStride;
          for (let j = 0; j < info.outWidth; j++) {
            const topLeft = rowStart + 2 * j * channels;
            for (let c = 0; c < channels; c++, o++) {
              // Window order: top-left, top-right, bottom-left, bottom-right. Strict > from -Infinity keeps the
              // first maximum and never picks NaN (a window of only -Infinity/NaN passes no gradient), as the cpu
              // backend does.
              const p0 = topLeft + c;
              const p1 = p0 + channels;
              const p2 = p0 + rowStride;
              const p3 = p2 + channels;
              let position = -1;
              let best = -Infinity;
              if (x[p0]! > best) {
                best = x[p0]!;
                position = p0;
              }
              if (x[p1]! > best) {
                best = x[p1]!;
                position = p1;
              }
              if (x[p2]! > best) {
                best = x[p2]!;
                position = p2;
              }
              if (x[p3]! > best) position = p3;
              if (position >= 0) out[position] = gradient[o]!;
            }
          }
        }
      }
      return dx;
    },
  });
}
