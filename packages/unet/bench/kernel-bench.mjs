// Times the wasm convolution-gradient kernels at the U-Net's layer sizes (batch 8, 144x144):
// the forward convolution for scale, the original Conv2DBackpropInput against ours, and both
// filter-gradient variants. Run: pnpm --filter @brats/unet bench:kernels
import * as tf from '@tensorflow/tfjs';
import { initBackend, registerWasmTrainingKernels } from '../dist/index.js';

const batch = Number(process.env.BENCH_BATCH ?? 8);
const size = Number(process.env.BENCH_SIZE ?? 144);
const selection = await initBackend('wasm');
console.log(`backend: ${selection.name} (${selection.reason})`);

function time(label, fn, repeats = 5) {
  fn(); // warm-up: XNNPACK packs the weights and the heap grows on the first call
  const start = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - start) / repeats;
}

const layers = [
  { name: 'enc1a 3x3 4->16', h: size, c: 4, o: 16, k: 3, s: 1, pad: 'same' },
  { name: 'enc1b 3x3 16->16', h: size, c: 16, o: 16, k: 3, s: 1, pad: 'same' },
  { name: 'enc2 3x3 32->32', h: size / 2, c: 32, o: 32, k: 3, s: 1, pad: 'same' },
  { name: 'enc3 3x3 64->64', h: size / 4, c: 64, o: 64, k: 3, s: 1, pad: 'same' },
  { name: 'enc4 3x3 128->128', h: size / 8, c: 128, o: 128, k: 3, s: 1, pad: 'same' },
  { name: 'bott 3x3 256->256', h: size / 16, c: 256, o: 256, k: 3, s: 1, pad: 'same' },
  { name: 'dec1 3x3 48->16', h: size, c: 48, o: 16, k: 3, s: 1, pad: 'same' },
  { name: 'out 1x1 16->1', h: size, c: 16, o: 1, k: 1, s: 1, pad: 'valid' },
  { name: 'up 2x2/2 16->32 (transpose)', h: size, c: 16, o: 32, k: 2, s: 2, pad: 'valid' },
  { name: 'up 2x2/2 128->256 (transpose)', h: size / 8, c: 128, o: 256, k: 2, s: 2, pad: 'valid' },
];

const rows = [];
for (const layer of layers) {
  const xShape = [batch, layer.h, layer.h, layer.c];
  const filterShape = [layer.k, layer.k, layer.c, layer.o];
  const x = tf.randomUniform(xShape);
  const w = tf.randomUniform(filterShape);
  const y = tf.conv2d(x, w, layer.s, layer.pad);
  const dy = tf.randomUniform(y.shape);
  const attrs = { strides: layer.s, pad: layer.pad, dataFormat: 'NHWC' };
  const row = { layer: layer.name };
  row.forwardMs = time('fwd', () => tf.conv2d(x, w, layer.s, layer.pad).dispose());
  registerWasmTrainingKernels({ filterGradient: 'auto' });
  row.inputGradMs = time('dx', () => tf.conv2dTranspose(dy, w, xShape, layer.s, layer.pad).dispose());
  registerWasmTrainingKernels({ inputGradient: 'original' });
  row.inputGradOriginalMs = time('dx0', () => tf.conv2dTranspose(dy, w, xShape, layer.s, layer.pad).dispose(), 2);
  for (const variant of ['dilated-conv', 'matmul']) {
    registerWasmTrainingKernels({ filterGradient: variant });
    row[`filterGrad ${variant} Ms`] = time(variant, () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape }).dispose(),
    );
  }
  tf.dispose([x, w, y, dy]);
  rows.push(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'number' ? +v.toFixed(1) : v])));
}
console.table(rows);

