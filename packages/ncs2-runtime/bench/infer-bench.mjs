// Inference benchmark at the seed size (144x144x4, f = 16, depth 4, bilinear): ONNX Runtime on the exported graph
// beside a PyTorch 1.13 reference of the same architecture with the same weights (Debian /usr/bin/python3 + torch),
// both with 2 threads. Prints slices/s, whole-scan latency (144 slices), the ratios, and both as a share of this
// CPU's FP32 peak. Run: pnpm --filter @brats/ncs2-runtime bench   (after pnpm build)
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolvePreprocessing, writeModelManifest } from '@brats/io';
import { benchmarkEngine, createEngine } from '@brats/ncs2-runtime';
import { buildUnet, createUnetManifest, exportBundleToOnnx, saveLayersModel } from '@brats/unet';

const THREADS = 2;
const BATCHES = [
  [1, 10],
  [16, 3],
];
const SCAN_BATCH = 16;
const here = path.dirname(fileURLToPath(import.meta.url));

/** FLOPs of one slice: 2·MACs of every convolution (the rest — pooling, upsampling, sigmoid — is < 1 %). */
function countFlops(model) {
  let flops = 0;
  for (const layer of model.layers) {
    const className = layer.getClassName();
    if (className !== 'Conv2D' && className !== 'Conv2DTranspose') continue;
    const kernel = layer.getWeights()[0].shape;
    const [kh, kw] = kernel;
    if (className === 'Conv2D') {
      const [, height, width, out] = layer.outputShape;
      flops += 2 * height * width * kh * kw * kernel[2] * out;
    } else {
      const [, height, width, input] = layer.inputShape;
      flops += 2 * height * width * kh * kw * input * kernel[2];
    }
  }
  return flops;
}

/** Peak FP32 FLOP/s from lscpu: cores × GHz × FLOPs per cycle, with the assumption stated. */
function estimatePeak(threads) {
  const text = execFileSync('lscpu', { encoding: 'utf8' });
  const field = (name) => text.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim();
  const flags = field('Flags') ?? '';
  const vendor = field('Vendor ID') ?? '';
  let mhz = Number(field('CPU max MHz') ?? field('CPU MHz') ?? NaN);
  if (!Number.isFinite(mhz)) mhz = Number(readFileSync('/proc/cpuinfo', 'utf8').match(/^cpu MHz\s*:\s*([\d.]+)/m)?.[1] ?? NaN);
  let perCycle;
  let assumption;
  if (flags.includes('avx512f') && vendor === 'GenuineIntel') {
    perCycle = 64;
    assumption = 'AVX-512: 2 FMA units x 16 FP32 lanes x 2 FLOPs';
  } else if (flags.includes('avx512f')) {
    perCycle = 32;
    assumption = 'AMD Zen 4 AVX-512 runs on two 256-bit FMA pipes: 2 x 8 lanes x 2 FLOPs';
  } else if (flags.includes('avx2') && flags.includes('fma')) {
    perCycle = 32;
    assumption = 'AVX2: 2 FMA units x 8 FP32 lanes x 2 FLOPs';
  } else {
    perCycle = 8;
    assumption = 'SSE: 4 lanes x 2 (add + mul)';
  }
  return { model: field('Model name'), ghz: mhz / 1000, threads, perCycle, assumption, gflops: (threads * mhz * perCycle) / 1000 };
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-infer-bench-'));
try {
  const bundle = path.join(work, 'bundle');
  const model = buildUnet({ seed: 816 });
  const flops = countFlops(model);
  await saveLayersModel(bundle, model);
  await writeModelManifest(bundle, { ...createUnetManifest(model, { seed: 816 }, resolvePreprocessing()), notes: 'untrained, seeded weights: for timing only' });
  model.dispose();
  await exportBundleToOnnx(bundle);

  const { engine } = await createEngine('onnxruntime', { threads: THREADS });
  await engine.load(bundle);
  // The same two slices through both runtimes, to show they compute the same function.
  const check = Float32Array.from({ length: 2 * 144 * 144 * 4 }, (_, i) => Math.sin(i * 0.37) * 1.5);
  await fs.writeFile(path.join(work, 'check-input.bin'), check);
  await fs.writeFile(path.join(work, 'check-output.bin'), await engine.run(check, 2));

  const ort = {};
  for (const [batch, iterations] of BATCHES) {
    ort[batch] = await benchmarkEngine(engine, { batch, iterations, warmup: 2, scanSlices: batch === SCAN_BATCH ? 144 : 0 });
  }
  await engine.dispose();

  const python = '/usr/bin/python3';
  let torch;
  try {
    const options = JSON.stringify({ threads: THREADS, batches: BATCHES, warmup: 2, scanBatch: SCAN_BATCH });
    torch = JSON.parse(execFileSync(python, [path.join(here, 'torch-reference.py'), bundle, work, options], { encoding: 'utf8', maxBuffer: 1 << 24 }));
  } catch (error) {
    console.log(`PyTorch reference skipped: ${python} with torch did not run (${String(error.message).split('\n')[0]})`);
  }

  const peak = estimatePeak(THREADS);
  const gflopPerSlice = flops / 1e9;
  const share = (slicesPerSecond, gflops) => `${((100 * slicesPerSecond * gflopPerSlice) / gflops).toFixed(1)} %`;
  console.log(`U-Net 144x144x4, f=16, depth 4, bilinear: ${gflopPerSlice.toFixed(3)} GFLOP per slice (2 x conv MACs), ${THREADS} threads`);
  console.log(`CPU: ${peak.model}, ${peak.ghz.toFixed(2)} GHz x ${peak.threads} cores x ${peak.perCycle} FLOPs/cycle = ${peak.gflops.toFixed(0)} GFLOP/s FP32 peak (${peak.assumption}; base clock, no boost)`);
  if (torch !== undefined) console.log(`measured sgemm (torch.mm 2048², ${THREADS} threads): ${torch.sgemmGflops.toFixed(1)} GFLOP/s`);
  if (torch !== undefined) console.log(`torch ${torch.torch} vs ONNX Runtime on the same 2 slices: max |diff| = ${torch.maxAbsDiffVsOnnxRuntime.toExponential(2)}`);
  console.log('');
  console.log('batch  runtime                  ms/batch p50   ms p95    slices/s   % peak   % sgemm   ORT speed-up');
  for (const [batch] of BATCHES) {
    const o = ort[batch];
    const t = torch?.runs[String(batch)];
    const row = (name, latency, rate) =>
      `${String(batch).padStart(5)}  ${name.padEnd(24)} ${latency.p50.toFixed(1).padStart(11)} ${latency.p95.toFixed(1).padStart(8)} ${rate.toFixed(1).padStart(11)} ${share(rate, peak.gflops).padStart(8)} ${torch === undefined ? '' : share(rate, torch.sgemmGflops).padStart(9)}`;
    console.log(row(`onnxruntime ${o.version.split(' ')[1]}`, o.latencyMs, o.slicesPerSecond));
    if (t !== undefined) console.log(`${row(`pytorch ${torch.torch}`, t.latencyMs, t.slicesPerSecond)}   ${(o.slicesPerSecond / t.slicesPerSecond).toFixed(2)}x`);
  }
  const scan = ort[SCAN_BATCH].scanSeconds;
  console.log('');
  console.log(`whole scan (144 slices, batches of ${SCAN_BATCH}): onnxruntime ${scan.toFixed(2)} s` + (torch === undefined ? '' : `, pytorch ${torch.scanSeconds.toFixed(2)} s, ORT speed-up ${(torch.scanSeconds / scan).toFixed(2)}x`));
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
