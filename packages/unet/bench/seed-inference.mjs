// FP32 inference speed of the seed's own U-Net (144x144x4, 16 filters, depth 4, bilinear: 1,962,769 parameters) on
// ONNX Runtime, as a share of this CPU's FP32 peak, beside PyTorch: the weights are untrained (seeded), which changes
// nothing in the arithmetic. This script writes the bundle and its model.onnx, then runs the runtime's inference
// benchmark (packages/ncs2-runtime/bench/infer-bench.mjs) on it, which counts the FLOPs from the graph, computes the
// peak from the CPU's SIMD width, FMA units, cores and clock, and prints GFLOP/s and % of peak.
// Run: pnpm --filter @brats/unet bench:seed-inference   (after pnpm build)
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportBundleToOnnx, writeUntrainedBundle } from '@brats/unet';

const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-seed-unet-'));
try {
  const manifest = await writeUntrainedBundle(bundle, { crop: [144, 144, 144], seed: 816 });
  if (manifest.model.filters !== 16 || manifest.model.parameters !== 1962769) throw new Error(`seed-inference: expected the seed's U-Net, got ${JSON.stringify(manifest.model)}`);
  await exportBundleToOnnx(bundle);
  const result = spawnSync(process.execPath, [path.join(here, '../../ncs2-runtime/bench/infer-bench.mjs')], { stdio: 'inherit', env: { ...process.env, BRATS_BENCH_MODEL: bundle } });
  process.exitCode = result.status ?? 1;
} finally {
  await fs.rm(bundle, { recursive: true, force: true });
}
