// Training and forward throughput of the seed U-Net (f=16, depth 4, bilinear) in slices per second, on the
// tensorflow backend where @tensorflow/tfjs-node loads, the wasm backend (and, for a single step, the cpu
// backend), beside a PyTorch reference of the same architecture (bench/torch_unet.py on the Debian
// /usr/bin/python3, 2 threads).
//
// Run: pnpm --filter @brats/unet bench    (builds dist/ first)
// "wasm x2" runs data-parallel steps: the main thread and BENCH_WORKERS=1 worker thread, half the batch each.
// Environment: BENCH_SIZES=128,144  BENCH_BATCH=8  BENCH_STEPS=3  BENCH_CPU=1 (0 skips cpu)  BENCH_TORCH=1
// The cpu backend is minutes per batch of 8, so it runs one step of BENCH_CPU_BATCH=1 slice at the first size.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { buildUnet, computeCombinedLoss, initBackend, startDataParallel } from '../dist/tf.js';
import { estimatePeak, estimateWasmPeak } from '../../ncs2-runtime/bench/cpu-peak.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sizes = (process.env.BENCH_SIZES ?? '128,144').split(',').map(Number);
const batch = Number(process.env.BENCH_BATCH ?? 8);
const steps = Number(process.env.BENCH_STEPS ?? 3);
const withCpu = process.env.BENCH_CPU !== '0';
const cpuBatch = Number(process.env.BENCH_CPU_BATCH ?? 1);
const withTorch = process.env.BENCH_TORCH !== '0';
const parallelWorkers = Number(process.env.BENCH_WORKERS ?? 1);
const python = '/usr/bin/python3';

function seconds(fn, repeats) {
  const start = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - start) / 1000 / repeats;
}

/**
 * FLOPs per slice of the U-Net at `size` (2 x multiply-adds of its convolutions, from the layers' shapes): forward,
 * and a training step, which adds the filter gradient of every convolution and the input gradient of all but the
 * first (its input is the image): 3 x forward less the first layer's share.
 */
function countFlops(size) {
  const model = buildUnet({ inputShape: [size, size, 4], seed: 1 });
  let forward = 0;
  let first;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className !== 'Conv2D' && className !== 'Conv2DTranspose') continue;
    const [kh, kw, a, b] = layer.getWeights()[0].shape;
    const [, h, w] = (className === 'Conv2D' ? layer.outputShape : layer.inputShape);
    // Conv2D kernels are [kh, kw, in, out]; Conv2DTranspose kernels [kh, kw, out, in], run once per input pixel.
    const flops = 2 * h * w * kh * kw * a * b;
    first ??= flops;
    forward += flops;
  }
  model.dispose();
  return { forward, train: 3 * forward - first };
}

/** Slices per second of training steps (Adam, the seed loss) and of inference, on the active backend. */
function measure(size, trainSteps, forwardSteps, batch) {
  const model = buildUnet({ inputShape: [size, size, 4], seed: 1 });
  const images = tf.randomNormal([batch, size, size, 4], 0, 1, 'float32', 2);
  const masks = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 3), 0.9), 'float32'));
  const optimizer = tf.train.adam(1e-4);
  const step = () => {
    const loss = optimizer.minimize(() => computeCombinedLoss(masks, model.apply(images, { training: true })), true);
    loss.dataSync(); // wait for the step to finish
    loss.dispose();
  };
  const forward = () => tf.tidy(() => model.predict(images).dataSync());
  step(); // warm-up: weight packing, heap growth
  const train = seconds(step, trainSteps);
  forward();
  const infer = seconds(forward, forwardSteps);
  optimizer.dispose();
  model.dispose();
  tf.dispose([images, masks]);
  return { trainSlicesPerSecond: batch / train, forwardSlicesPerSecond: batch / infer };
}

/** Training slices per second with data-parallel steps (main thread + `parallelWorkers` worker threads). */
async function measureParallel(size, trainSteps, batch) {
  const options = { inputShape: [size, size, 4], seed: 1 };
  const model = buildUnet(options);
  const images = tf.randomNormal([batch, size, size, 4], 0, 1, 'float32', 2);
  const masks = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 3), 0.9), 'float32'));
  const optimizer = tf.train.adam(1e-4);
  const trainer = await startDataParallel({ model: options, workers: parallelWorkers });
  await trainer.step(model, optimizer, images, masks); // warm-up
  const start = performance.now();
  for (let i = 0; i < trainSteps; i++) await trainer.step(model, optimizer, images, masks);
  const train = (performance.now() - start) / 1000 / trainSteps;
  await trainer.close();
  optimizer.dispose();
  model.dispose();
  tf.dispose([images, masks]);
  return batch / train;
}

function torchReference(size) {
  if (!withTorch || !existsSync(python)) return undefined;
  try {
    const out = execFileSync(
      python,
      [path.join(here, 'torch_unet.py'), '--size', String(size), '--batch', String(batch), '--steps', String(steps)],
      { encoding: 'utf8' },
    );
    return JSON.parse(out);
  } catch (error) {
    console.warn(`PyTorch reference skipped: ${String(error.message).split('\n')[0]}`);
    return undefined;
  }
}

const round = (value) => (value === undefined ? '-' : Number(value.toPrecision(3)));
const rows = [];
// The native backend (optional @tensorflow/tfjs-node): measured where it loads, otherwise the bench says why not.
let tensorflowMissing;
for (const size of sizes) {
  let native;
  if (tensorflowMissing === undefined) {
    try {
      await initBackend('tensorflow');
      console.error(`${size}x${size}: tensorflow…`);
      native = measure(size, steps, steps, batch);
    } catch (error) {
      tensorflowMissing = String(error.message).split('\n')[0];
    }
  }
  const wasmSelection = await initBackend('wasm');
  console.error(`${size}x${size}: wasm, one thread…`);
  const wasm = measure(size, steps, steps, batch);
  console.error(`${size}x${size}: wasm, ${parallelWorkers + 1} threads…`);
  const parallel = parallelWorkers > 0 ? await measureParallel(size, steps, batch) : undefined;
  let cpu;
  if (withCpu && size === sizes[0]) {
    await initBackend('cpu');
    console.error(`${size}x${size}: cpu, one step of ${cpuBatch}…`);
    cpu = measure(size, 1, 1, cpuBatch);
  }
  console.error(`${size}x${size}: PyTorch…`);
  const torch = torchReference(size);
  rows.push({
    size: `${size}x${size}x4 batch ${batch}`,
    'tensorflow train/s': round(native?.trainSlicesPerSecond),
    'wasm train/s': round(wasm.trainSlicesPerSecond),
    [`wasm x${parallelWorkers + 1} train/s`]: round(parallel),
    'wasm forward/s': round(wasm.forwardSlicesPerSecond),
    [`cpu train/s (batch ${cpuBatch})`]: round(cpu?.trainSlicesPerSecond),
    'cpu forward/s': round(cpu?.forwardSlicesPerSecond),
    'torch train/s': round(torch?.trainSlicesPerSecond),
    'torch forward/s': round(torch?.forwardSlicesPerSecond),
    'tensorflow/torch train': torch && native ? round(native.trainSlicesPerSecond / torch.trainSlicesPerSecond) : '-',
    'wasm/torch train': torch ? round(wasm.trainSlicesPerSecond / torch.trainSlicesPerSecond) : '-',
    [`wasm x${parallelWorkers + 1}/torch train`]: torch && parallel ? round(parallel / torch.trainSlicesPerSecond) : '-',
    'wasm/torch forward': torch ? round(wasm.forwardSlicesPerSecond / torch.forwardSlicesPerSecond) : '-',
  });
  if (size === sizes[0]) console.log(`wasm: ${wasmSelection.reason}`);
}
if (tensorflowMissing !== undefined) console.log(`tensorflow: not measured: ${tensorflowMissing}`);
console.log(`slices per second (higher is better); torch: ${python} with torch.set_num_threads(2)`);
console.table(rows);

// The roofline: what each side computes per second against what the hardware allows it. Native code (PyTorch) runs
// AVX2 with FMA; the wasm backend runs WebAssembly's 128-bit SIMD, which has no FMA, so its ceiling is half the CPU's
// FP32 peak. The best wasm training could do is its own forward efficiency (the best-tuned XNNPACK path) on both
// cores; the ratio of that to PyTorch's training rate is the ceiling of wasm/torch training on this machine.
const native = estimatePeak(2);
const wasmOne = estimateWasmPeak(1);
const wasmTwo = estimateWasmPeak(2);
console.log('');
console.log(`roofline: FP32 peak ${native.gflops.toFixed(0)} GFLOP/s on 2 cores (${native.ghz.toFixed(2)} GHz x ${native.perCycle} FLOPs/cycle: ${native.assumption}); wasm SIMD128 ${wasmTwo.gflops.toFixed(0)} GFLOP/s on 2 cores, ${wasmOne.gflops.toFixed(0)} on one (${wasmOne.assumption})`);
for (const [index, size] of sizes.entries()) {
  const flops = countFlops(size);
  const row = rows[index];
  const rate = (slicesPerSecond, perSlice) => (typeof slicesPerSecond === 'number' ? (slicesPerSecond * perSlice) / 1e9 : undefined);
  const line = (name, gflops, ceiling) => (gflops === undefined ? '' : `${name} ${gflops.toFixed(1)} GFLOP/s (${((100 * gflops) / ceiling).toFixed(0)} % of ${ceiling.toFixed(0)})`);
  const wasmForward = rate(row['wasm forward/s'], flops.forward);
  const wasmTrain = rate(row[`wasm x${parallelWorkers + 1} train/s`], flops.train);
  const torchTrain = rate(row['torch train/s'], flops.train);
  const torchForward = rate(row['torch forward/s'], flops.forward);
  console.log(`  ${size}x${size}: forward ${(flops.forward / 1e9).toFixed(3)} GFLOP, training step ${(flops.train / 1e9).toFixed(3)} GFLOP per slice`);
  console.log(`    ${[line('wasm forward, 1 thread', wasmForward, wasmOne.gflops), line(`wasm x${parallelWorkers + 1} train`, wasmTrain, wasmTwo.gflops), line('torch train', torchTrain, native.gflops), line('torch forward', torchForward, native.gflops)].filter(Boolean).join('; ')}`);
  if (wasmForward !== undefined && torchTrain !== undefined) {
    const best = (wasmForward / wasmOne.gflops) * wasmTwo.gflops;
    console.log(`    ceiling: wasm training on 2 cores at its forward's efficiency would run ${best.toFixed(1)} GFLOP/s, ${(best / torchTrain).toFixed(2)}x torch training; measured ${wasmTrain === undefined ? '-' : (wasmTrain / torchTrain).toFixed(2)}x`);
  }
}
