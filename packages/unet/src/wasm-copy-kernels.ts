/**
 * Concat and SplitV for the wasm backend with plain copy loops. The shipped kernels copy one `subarray` per
 * row, which allocates a view per pixel when the U-Net concatenates or splits (in the gradient) along its narrow
 * channel axis: at 144x144 with 16-48 channels that is over a million views and ten times the copying time.
 * Results are bit-identical copies; long rows still use `TypedArray.set`.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type TensorInfo = tf.TensorInfo;
type NumericArray = Float32Array | Int32Array | Uint8Array;

/** Rows at least this long are copied with `set`, whose fixed cost is then negligible. */
const LONG_ROW = 256;

function product(values: readonly number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

function copyRows(
  source: NumericArray,
  sourceOffset: number,
  sourceStride: number,
  target: NumericArray,
  targetOffset: number,
  targetStride: number,
  rows: number,
  width: number,
): void {
  if (width >= LONG_ROW) {
    for (let r = 0; r < rows; r++) {
      const from = sourceOffset + r * sourceStride;
      target.set(source.subarray(from, from + width), targetOffset + r * targetStride);
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    let from = sourceOffset + r * sourceStride;
    let to = targetOffset + r * targetStride;
    const end = from + width;
    while (from < end) target[to++] = source[from++]!;
  }
}

function numericInputs(inputs: readonly TensorInfo[]): boolean {
  return inputs.every((input) => input.dtype !== 'string' && input.dtype !== 'complex64');
}

let registered = false;

/** Registers (once) the copy-loop Concat and SplitV for the wasm backend; other dtypes go to the originals. */
export function registerWasmCopyKernels(): void {
  if (registered) return;
  const originalConcat = tf.getKernel('Concat', 'wasm');
  const originalSplit = tf.getKernel('SplitV', 'wasm');
  if (originalConcat === undefined || originalSplit === undefined) return;
  tf.unregisterKernel('Concat', 'wasm');
  tf.unregisterKernel('SplitV', 'wasm');
  registered = true;

  tf.registerKernel({
    kernelName: 'Concat',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const backend = args.backend as BackendWasm;
      const inputs = (args.inputs as unknown as TensorInfo[]).filter((input) => product(input.shape) > 0);
      const first = inputs[0];
      if (first === undefined || inputs.length < 2 || !numericInputs(inputs)) return originalConcat.kernelFunc(args);
      const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, first.shape)[0]!;
      const outShape = tf.backend_util.computeOutShape(inputs.map((input) => input.shape), axis);
      const rows = product(first.shape.slice(0, axis));
      const widths = inputs.map((input) => product(input.shape.slice(axis)));
      const total = widths.reduce((a, b) => a + b, 0);
      const out = backend.makeOutput(outShape, first.dtype);
      // Views are taken after every allocation: growing the wasm heap detaches older views.
      const target = backend.typedArrayFromHeap(out) as NumericArray;
      let offset = 0;
      inputs.forEach((input, i) => {
        const source = backend.typedArrayFromHeap(input) as NumericArray;
        copyRows(source, 0, widths[i]!, target, offset, total, rows, widths[i]!);
        offset += widths[i]!;
      });
      return out;
    },
  });

  tf.registerKernel({
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const backend = args.backend as BackendWasm;
      const x = args.inputs['x'] as TensorInfo;
      if (!numericInputs([x])) return originalSplit.kernelFunc(args);
      const axis = tf.util.parseAxisParam(args.attrs?.['axis'] as number, x.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(
        x as tf.Tensor,
        args.attrs?.['numOrSizeSplits'] as number | number[],
        axis,
      );
      const rows = product(x.shape.slice(0, axis));
      const inner = product(x.shape.slice(axis + 1));
      const total = x.shape[axis]! * inner;
      const outs = sizes.map((size) => {
        const shape = [...x.shape];
        shape[axis] = size;
        return backend.makeOutput(shape, x.dtype);
      });
      const source = backend.typedArrayFromHeap(x) as NumericArray;
      let offset = 0;
      outs.forEach((out, i) => {
        const width = sizes[i]! * inner;
        copyRows(source, offset, total, backend.typedArrayFromHeap(out) as NumericArray, 0, width, rows, width);
        offset += width;
      });
      return outs;
    },
  });
}
