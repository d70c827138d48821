// Data-parallel training over worker threads against a single thread, on wasm: slices per second of
// training steps of the seed U-Net. Run: pnpm --filter @brats/unet bench:parallel
// Environment: BENCH_SIZE=144 BENCH_BATCH=8 BENCH_STEPS=3 BENCH_WORKERS=1 BENCH_ROUNDS=3
import * as tf from '@tensorflow/tfjs';
import { buildUnet, computeCombinedLoss, initBackend, startDataParallel } from '../dist/tf.js';

const size = Number(process.env.BENCH_SIZE ?? 144);
const batch = Number(process.env.BENCH_BATCH ?? 8);
const steps = Number(process.env.BENCH_STEPS ?? 3);
const workers = Number(process.env.BENCH_WORKERS ?? 1);

await initBackend('wasm');
const options = { inputShape: [size, size, 4], seed: 1 };
const model = buildUnet(options);
const images = tf.randomNormal([batch, size, size, 4], 0, 1, 'float32', 2);
const masks = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 3), 0.9), 'float32'));

async function slicesPerSecond(step) {
  await step(); // warm-up
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  return (batch * steps) / ((performance.now() - start) / 1000);
}

const optimizer = tf.train.adam(1e-4);
const trainer = await startDataParallel({ model: options, workers });
const singleStep = async () => {
  const loss = optimizer.minimize(() => computeCombinedLoss(masks, model.apply(images, { training: true })), true);
  loss.dataSync();
  loss.dispose();
};
const parallelStep = () => trainer.step(model, optimizer, images, masks);
// Interleaved rounds, so that load from other processes falls on both alike; medians are reported.
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const singles = [];
const parallels = [];
for (let round = 0; round < rounds; round++) {
  singles.push(await slicesPerSecond(singleStep));
  parallels.push(await slicesPerSecond(parallelStep));
  console.error(`round ${round + 1}: one thread ${singles.at(-1).toFixed(2)}, ${workers + 1} shares ${parallels.at(-1).toFixed(2)} slices/s`);
}
await trainer.close();
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const single = median(singles);
const parallel = median(parallels);
console.log(`${size}x${size}x4 batch ${batch}, wasm, median of ${rounds} rounds: one thread ${single.toFixed(2)} slices/s, ` +
  `${workers + 1} shares ${parallel.toFixed(2)} slices/s, speed-up ${(parallel / single).toFixed(2)}x`);
