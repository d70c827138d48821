/**
 * Training kernels for the TensorFlow.js wasm backend.
 *
 * As shipped (4.22), the wasm backend has no `Conv2DBackpropFilter` kernel, so no convolutional model can train
 * on it, and its `Conv2DBackpropInput` is a plain scalar loop that is several times slower than the forward
 * convolution. Both gradients are themselves convolutions (or matrix products) of rearranged tensors, so they are
 * built here from the backend's own fast kernels (XNNPACK convolution, transpose, depth-to-space, batched matmul)
 * and registered under the missing kernel names. No library offers these kernels, hence the hand-written code.
 *
 * Supported: NHWC, dilation 1, any stride and padding for the filter gradient; for the input gradient stride 1
 * with any kernel size and padding, and stride equal to the kernel size without padding (2x2 stride 2, the
 * transposed-convolution upsampling). Other input-gradient configurations are handed to the backend's original
 * kernel, so results stay exact everywhere.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { UnsupportedKernelError } from './errors.js';
import { registerWasmCopyKernels } from './wasm-copy-kernels.js';
import { registerWasmPoolKernels } from './wasm-pool-kernels.js';

type TensorInfo = tf.TensorInfo;
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

/** How the filter gradient is computed; `auto` picks the variant measured fastest for each configuration. */
export type FilterGradientVariant = 'auto' | 'dilated-conv' | 'matmul';

/** How the input gradient is computed: `auto` (the fast rewrites) or `original` (the backend's own loop). */
export type InputGradientVariant = 'auto' | 'original';

/** Options of registerWasmTrainingKernels (variants exist for benchmarks and tests). */
export interface WasmTrainingKernelOptions {
  /** Filter-gradient algorithm; default `auto`. */
  readonly filterGradient?: FilterGradientVariant;
  /** Input-gradient algorithm; default `auto`. */
  readonly inputGradient?: InputGradientVariant;
}

/**
 * Calls kernels of the wasm backend directly (no engine, no tape) and frees every intermediate result it made
 * unless it was kept, so a composite kernel returns exactly one live tensor.
 */
class KernelScope {
  private readonly made: TensorInfo[] = [];

  constructor(readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (kernel === undefined) {
      throw new UnsupportedKernelError(kernelName, 'the backend has no such kernel to build on');
    }
    const out = kernel.kernelFunc({ inputs, backend: this.backend, attrs }) as TensorInfo;
    this.made.push(out);
    return out;
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  /** Releases every intermediate except `result`, which is returned to the engine. */
  finish(result: TensorInfo): TensorInfo {
    for (const info of this.made) {
      if (info !== result) this.backend.disposeData(info.dataId);
    }
    return result;
  }

  /** Releases every intermediate (on error). */
  abandon(): void {
    for (const info of this.made) this.backend.disposeData(info.dataId);
  }
}

interface ConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
}

function describeConv(
  kernelName: string,
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: tf.NamedAttrMap,
): ConvGeometry {
  const dataFormat = (attrs['dataFormat'] as string | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new UnsupportedKernelError(kernelName, `dataFormat '${dataFormat}' (only NHWC is implemented)`);
  }
  const dilations = (attrs['dilations'] as number | [number, number] | undefined) ?? 1;
  const dilationList = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (dilationList.some((d) => d !== 1)) {
    throw new UnsupportedKernelError(kernelName, `dilations [${dilationList.join(', ')}] (only 1 is implemented)`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs['strides'] as number | [number, number],
    1,
    attrs['pad'] as 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
    attrs['dimRoundingMode'] as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padBottom: info.padInfo.bottom,
    padLeft: info.padInfo.left,
    padRight: info.padInfo.right,
  };
}

/** True when the windows tile the input exactly: kernel = stride, no padding, nothing left over. */
function isTiling(g: ConvGeometry): boolean {
  return (
    g.filterHeight === g.strideHeight &&
    g.filterWidth === g.strideWidth &&
    g.padTop === 0 &&
    g.padLeft === 0 &&
    g.padBottom === 0 &&
    g.padRight === 0 &&
    g.outHeight * g.strideHeight === g.inHeight &&
    g.outWidth * g.strideWidth === g.inWidth
  );
}

/**
 * dW[a,b,c,o] = sum over n,i,j of x[n, i*s + a - pad, j*s + b - pad, c] * dy[n,i,j,o]: a convolution of x
 * (channels moved to the batch axis, batch moved to the channel axis) with dy as a filter dilated by the stride.
 */
function filterGradientByDilatedConv(scope: KernelScope, x: TensorInfo, dy: TensorInfo, g: ConvGeometry): TensorInfo {
  let input = scope.transpose(x, [3, 1, 2, 0]);
  const extentHeight = (g.outHeight - 1) * g.strideHeight + 1;
  const extentWidth = (g.outWidth - 1) * g.strideWidth + 1;
  let padBottom = g.filterHeight + extentHeight - 1 - g.inHeight - g.padTop;
  let padRight = g.filterWidth + extentWidth - 1 - g.inWidth - g.padLeft;
  if (padBottom < 0 || padRight < 0) {
    // Rows/columns that no window reaches (valid padding with a remainder) are cut off instead.
    input = scope.run(
      'Slice',
      { x: input },
      {
        begin: [0, 0, 0, 0],
        size: [g.inChannels, g.inHeight + Math.min(padBottom, 0), g.inWidth + Math.min(padRight, 0), g.batch],
      },
    );
    padBottom = Math.max(padBottom, 0);
    padRight = Math.max(padRight, 0);
  }
  const filter = scope.transpose(dy, [1, 2, 0, 3]);
  const pad: Pad4 = [
    [0, 0],
    [g.padTop, padBottom],
    [g.padLeft, padRight],
    [0, 0],
  ];
  const product = scope.run(
    'Conv2D',
    { x: input, filter },
    { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [g.strideHeight, g.strideWidth] },
  );
  return scope.transpose(product, [1, 2, 0, 3]);
}

/** For tiling windows (2x2 stride 2, or 1x1): dW = patches(x)^T @ dy as one matrix product. */
function filterGradientByMatmul(scope: KernelScope, x: TensorInfo, dy: TensorInfo, g: ConvGeometry): TensorInfo {
  const rows = g.batch * g.outHeight * g.outWidth;
  const patchSize = g.filterHeight * g.filterWidth * g.inChannels;
  let patches: TensorInfo;
  if (g.filterHeight === 1 && g.filterWidth === 1) {
    patches = scope.reshape(x, [1, rows, patchSize]);
  } else {
    const split = scope.reshape(x, [g.batch * g.outHeight, g.filterHeight, g.outWidth, g.filterWidth * g.inChannels]);
    patches = scope.reshape(scope.transpose(split, [0, 2, 1, 3]), [1, rows, patchSize]);
  }
  const gradient = scope.reshape(dy, [1, rows, g.outChannels]);
  const product = scope.run('BatchMatMul', { a: patches, b: gradient }, { transposeA: true, transposeB: false });
  return scope.reshape(product, [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels]);
}

/** dX for stride 1: the full correlation of dy with the spatially flipped filter, in/out channels swapped. */
function inputGradientByFlippedConv(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo {
  const swapped = scope.transpose(filter, [0, 1, 3, 2]);
  const flipped = scope.run('Reverse', { x: swapped }, { dims: [0, 1] });
  const pad: Pad4 = [
    [0, 0],
    [g.filterHeight - 1 - g.padTop, g.filterHeight - 1 - g.padBottom],
    [g.filterWidth - 1 - g.padLeft, g.filterWidth - 1 - g.padRight],
    [0, 0],
  ];
  return scope.run(
    'Conv2D',
    { x: dy, filter: flipped },
    { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] },
  );
}

/**
 * dX for tiling windows: a 1x1 convolution to kh*kw*C channels, then one transpose puts each patch in place
 * (the backend's DepthToSpace does the same but measured nine times slower).
 */
function inputGradientByPatches(scope: KernelScope, dy: TensorInfo, filter: TensorInfo, g: ConvGeometry): TensorInfo {
  const patchSize = g.filterHeight * g.filterWidth * g.inChannels;
  const pointwise = scope.reshape(scope.transpose(filter, [3, 0, 1, 2]), [1, 1, g.outChannels, patchSize]);
  const patches = scope.run(
    'Conv2D',
    { x: dy, filter: pointwise },
    { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
  );
  if (g.filterHeight === 1 && g.filterWidth === 1) return patches;
  const split = scope.reshape(patches, [g.batch * g.outHeight, g.outWidth, g.filterHeight, g.filterWidth * g.inChannels]);
  return scope.reshape(scope.transpose(split, [0, 2, 1, 3]), [g.batch, g.inHeight, g.inWidth, g.inChannels]);
}

function withScope(backend: BackendWasm, compute: (scope: KernelScope) => TensorInfo): TensorInfo {
  const scope = new KernelScope(backend);
  try {
    return scope.finish(compute(scope));
  } catch (error) {
    scope.abandon();
    throw error;
  }
}

let originalInputGradient: tf.KernelConfig | undefined;
let registeredVariant: string | undefined;

/**
 * Registers fast `Conv2DBackpropFilter` and `Conv2DBackpropInput` kernels for the wasm backend, copy-loop
 * `Concat` and `SplitV`, and a one-pass 2x2 `MaxPoolGrad` (idempotent; a second call with other variants
 * replaces the first). Call after the wasm backend is registered (importing @tensorflow/tfjs-backend-wasm),
 * preferably before it initialises.
 * @throws UnsupportedKernelError at kernel run time: filter gradient of NCHW data or of dilated convolutions.
 */
export function registerWasmTrainingKernels(options: WasmTrainingKernelOptions = {}): void {
  registerWasmCopyKernels();
  registerWasmPoolKernels();
  const variant = options.filterGradient ?? 'auto';
  const inputVariant = options.inputGradient ?? 'auto';
  const key = `${variant}/${inputVariant}`;
  if (registeredVariant === key) return;
  if (originalInputGradient === undefined) {
    originalInputGradient = tf.getKernel('Conv2DBackpropInput', 'wasm');
  }
  if (tf.getKernel('Conv2DBackpropInput', 'wasm') !== undefined) {
    tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  }
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) {
    tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  }

  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs = {} }) => {
      const x = inputs['x'] as TensorInfo;
      const dy = inputs['dy'] as TensorInfo;
      const filterShape = attrs['filterShape'] as number[];
      const g = describeConv('Conv2DBackpropFilter', x.shape, filterShape, attrs);
      const useMatmul =
        isTiling(g) && (variant === 'matmul' || (variant === 'auto' && preferMatmulFilterGradient(g)));
      return withScope(backend as BackendWasm, (scope) =>
        useMatmul ? filterGradientByMatmul(scope, x, dy, g) : filterGradientByDilatedConv(scope, x, dy, g),
      );
    },
  });

  const fallback = originalInputGradient;
  // The original kernel's setup (binding its wasm export) must still run when the backend initialises later.
  const setupFunc = fallback?.setupFunc;
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    ...(setupFunc === undefined ? {} : { setupFunc }),
    kernelFunc: (args) => {
      const { inputs, backend, attrs = {} } = args;
      const dataFormat = (attrs['dataFormat'] as string | undefined) ?? 'NHWC';
      if (dataFormat !== 'NHWC' && fallback !== undefined) return fallback.kernelFunc(args);
      const dy = inputs['dy'] as TensorInfo;
      const filter = inputs['filter'] as TensorInfo;
      const inputShape = attrs['inputShape'] as number[];
      const g = describeConv('Conv2DBackpropInput', inputShape, filter.shape, attrs);
      const strideOne = g.strideHeight === 1 && g.strideWidth === 1;
      const padsFit =
        g.padTop < g.filterHeight &&
        g.padBottom < g.filterHeight &&
        g.padLeft < g.filterWidth &&
        g.padRight < g.filterWidth;
      if (inputVariant === 'original' && fallback !== undefined) return fallback.kernelFunc(args);
      if (strideOne && padsFit) {
        return withScope(backend as BackendWasm, (scope) => inputGradientByFlippedConv(scope, dy, filter, g));
      }
      if (isTiling(g)) {
        return withScope(backend as BackendWasm, (scope) => inputGradientByPatches(scope, dy, filter, g));
      }
      if (fallback === undefined) {
        throw new UnsupportedKernelError('Conv2DBackpropInput', `strides [${g.strideHeight}, ${g.strideWidth}]`);
      }
      return fallback.kernelFunc(args);
    },
  });
  registeredVariant = key;
}

/** The measured choice (see bench/kernel-bench.mjs) between the two exact filter-gradient algorithms. */
function preferMatmulFilterGradient(g: ConvGeometry): boolean {
  return g.filterHeight === 1 && g.filterWidth === 1;
}
