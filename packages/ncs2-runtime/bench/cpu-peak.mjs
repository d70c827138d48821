// The FP32 peak of this CPU, from lscpu: cores x clock x FLOPs per cycle (SIMD lanes x FMA units x 2), with the
// assumption stated; and the peak of WebAssembly's 128-bit SIMD, which has no fused multiply-add (a multiply and an
// add are two instructions). Shared by the inference and training benchmarks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Peak FP32 FLOP/s from lscpu: cores × GHz × FLOPs per cycle, with the assumption stated. */
export function estimatePeak(threads) {
  const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
  const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.+)$`, 'm'))?.[1]?.trim();
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


/**
 * Peak FP32 FLOP/s of WebAssembly SIMD128 code on `threads` cores: 4 lanes, and without FMA each multiply-add is two
 * instructions; x86 cores of the AVX2 generation issue two 128-bit FP multiplies and two adds per cycle at most,
 * 16 FLOPs per cycle, half the 32 of AVX2 FMA.
 */
export function estimateWasmPeak(threads) {
  const native = estimatePeak(threads);
  return { ...native, perCycle: 16, gflops: (native.gflops * 16) / native.perCycle, assumption: 'WebAssembly SIMD128: 4 FP32 lanes, no FMA: 2 multiplies + 2 adds per cycle' };
}
