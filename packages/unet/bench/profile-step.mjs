// Where the time of one forward pass and one training step of the seed U-Net goes, kernel by kernel, on the
// wasm backend (tf.profile; its bookkeeping adds some time). Run after `pnpm build`:
//   node bench/profile-step.mjs        Environment: BENCH_SIZE=144 BENCH_BATCH=8
import * as tf from '@tensorflow/tfjs';
import { buildUnet, computeCombinedLoss, initBackend } from '../dist/tf.js';

const size = Number(process.env.BENCH_SIZE ?? 144);
const batch = Number(process.env.BENCH_BATCH ?? 8);
await initBackend('wasm');
const model = buildUnet({ inputShape: [size, size, 4], seed: 1 });
const images = tf.randomNormal([batch, size, size, 4]);
const masks = tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1]), 0.9), 'float32');
const optimizer = tf.train.adam(1e-4);
const step = () => {
  const loss = optimizer.minimize(() => computeCombinedLoss(masks, model.apply(images, { training: true })), true);
  loss.dataSync();
  loss.dispose();
};
const forward = () => tf.tidy(() => model.predict(images).dataSync());
step(); // warm-up
forward();
for (const [label, fn] of [
  ['forward', forward],
  ['training step', step],
]) {
  const start = performance.now();
  const info = await tf.profile(fn);
  const total = performance.now() - start;
  const byKernel = new Map();
  for (const kernel of info.kernels) {
    const time = await kernel.kernelTimeMs;
    const entry = byKernel.get(kernel.name) ?? { calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += typeof time === 'number' ? time : 0;
    byKernel.set(kernel.name, entry);
  }
  console.log(`${label}: ${total.toFixed(0)} ms in all (${size}x${size}x4, batch ${batch})`);
  console.table(
    [...byKernel.entries()]
      .filter(([name]) => !name.endsWith('__op')) // op wrappers repeat their kernels' time
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, 15)
      .map(([name, { calls, ms }]) => ({ kernel: name, calls, ms: Number(ms.toFixed(1)) })),
  );
}
