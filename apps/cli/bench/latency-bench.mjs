// Scan to mask, whole processes, beside a plain Python script (scan-to-mask.py: nibabel, PyTorch 1.13, the same
// U-Net with the same weights) in the same run, alternating so machine load hits every side alike:
//   1. one scan: `brats infer CASE --no-tta --no-largest-component --no-extend-window` (the model's window alone, as
//      the script segments it), the same with the bundle's own post-processing and the windows beyond the model's,
//      the INT8 model where the bundle has one, and the Python script; start to NIfTI written, median of --runs after
//      one warm-up each;
//   2. a cohort of --cohort scans through one `brats infer` (one case in flight, then two) and through one Python
//      process: scans/s and brats' own account of where the time goes.
// Both sides run the shipped whole-tumour model (models/brats2018-wt-unet, f=8), named with --model whatever the
// CLI's default model is.
// The masks of brats and of the script are compared (voxels that agree), so both sides are seen to do the same work.
// The cases are images only (no reference label map, so nothing is scored): the real BraTS 2018 and extra cases of
// ../shared/data when present, else `brats synth` phantoms in BraTS 2018 naming.
//
// Run: pnpm --filter @brats/cli bench:latency   (after pnpm build)
// Options: --runs <n> (default 3)   --cohort <n> (default 20)   --threads <n> (PyTorch's threads; default 2, every
// core here, as ONNX Runtime uses by default)   --baseline <dir> (a built checkout of another version: its
// `brats infer` joins the one-scan rounds, no flips, on this version's bundle, so that a change is measured against
// what it replaces in the same run)
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readNifti } from '@brats/io';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const BIN = path.join(root, 'apps/cli/dist/bin.js');
const MODEL = path.join(root, 'models/brats2018-wt-unet');
const PYTHON = process.env.BRATS_BENCH_PYTHON ?? '/usr/bin/python3';
const SHARED = process.env.BRATS_SHARED_DATA ?? path.resolve(root, '../shared/data');
const MODALITIES = ['flair', 't1', 't1ce', 't2'];

const { values: cli } = parseArgs({ options: { runs: { type: 'string', default: '3' }, cohort: { type: 'string', default: '20' }, threads: { type: 'string', default: '2' }, baseline: { type: 'string' } } });
const runs = Number(cli.runs);
const cohortSize = Number(cli.cohort);
const threads = Number(cli.threads);
for (const [name, value] of [['--runs', runs], ['--cohort', cohortSize], ['--threads', threads]]) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`latency-bench: ${name} takes a positive integer`);
}
if (!existsSync(BIN)) throw new Error(`latency-bench: ${BIN} is missing; run pnpm build first`);
const BASELINE_BIN = cli.baseline === undefined ? undefined : path.resolve(cli.baseline, 'apps/cli/dist/bin.js');
if (BASELINE_BIN !== undefined && !existsSync(BASELINE_BIN)) throw new Error(`latency-bench: --baseline ${cli.baseline} has no ${path.relative(path.resolve(cli.baseline), BASELINE_BIN)}; build that checkout first`);

// CPU time (user + system, every thread) and minor page faults of each process, from GNU time (Debian package `time`)
// where it is installed: two versions' wall times can sit within the machine's run-to-run spread while their CPU
// time does not.
const GNU_TIME = '/usr/bin/time';
const useGnuTime = existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-f', '%U', 'true'], { encoding: 'utf8' }).status === 0;
let usageCount = 0;

function run(command, args) {
  const usageFile = path.join(os.tmpdir(), `brats-latency-usage-${process.pid}-${usageCount++}`);
  const [program, programArgs] = useGnuTime ? [GNU_TIME, ['-f', '%U %S %R', '-o', usageFile, command, ...args]] : [command, args];
  const started = process.hrtime.bigint();
  const result = spawnSync(program, programArgs, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`latency-bench: ${command} ${args.join(' ')} exited ${result.status ?? result.signal}: ${(result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  let cpuSeconds = NaN;
  let faults = NaN;
  if (useGnuTime) {
    const [user, system, minor] = (readFileSync(usageFile, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
    rmSync(usageFile, { force: true });
    cpuSeconds = user + system;
    faults = minor;
  }
  return { seconds, stdout: result.stdout, cpuSeconds, faults };
}

/** `brats infer` of the CLI at `bin` on the model the Python script runs, whatever the CLI's default model is. */
function inferWith(bin, ...args) {
  return run(process.execPath, [bin, 'infer', '--model', MODEL, ...args]);
}

/** `brats infer` of this version. */
function infer(...args) {
  return inferWith(BIN, ...args);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Case folders of four images each (no label map): copies of the real cases, else phantoms. */
async function prepareCases(work, count) {
  const folder = path.join(work, 'cases');
  await fs.mkdir(folder, { recursive: true });
  const real = [];
  for (const part of ['brats2018-sample', 'brats-extra']) {
    const dir = path.join(SHARED, part);
    if (!existsSync(dir)) continue;
    for (const id of (await fs.readdir(dir)).sort()) {
      if (MODALITIES.every((m) => existsSync(path.join(dir, id, `${id}_${m}.nii.gz`)))) real.push(path.join(dir, id));
    }
  }
  if (real.length > 0) {
    // Cases repeat when the data holds fewer than asked, under new names.
    for (let index = 0; index < count; index++) {
      const source = real[index % real.length];
      const sourceId = path.basename(source);
      const id = index < real.length ? sourceId : `${sourceId}_copy${Math.floor(index / real.length)}`;
      await fs.mkdir(path.join(folder, id));
      for (const m of MODALITIES) await fs.copyFile(path.join(source, `${sourceId}_${m}.nii.gz`), path.join(folder, id, `${id}_${m}.nii.gz`));
    }
    return { kind: `real BraTS cases (${Math.min(count, real.length)} distinct) from ${SHARED}`, cases: (await fs.readdir(folder)).sort().map((id) => path.join(folder, id)) };
  }
  const phantoms = path.join(work, 'phantoms');
  run(process.execPath, [BIN, 'synth', '--layout', 'brats2018', '--cases', String(count), '--out', phantoms, '--seed', '5']);
  for (const id of (await fs.readdir(phantoms)).sort()) {
    if (!(await fs.stat(path.join(phantoms, id))).isDirectory()) continue;
    await fs.mkdir(path.join(folder, id));
    for (const m of MODALITIES) await fs.copyFile(path.join(phantoms, id, `${id}_${m}.nii.gz`), path.join(folder, id, `${id}_${m}.nii.gz`));
  }
  return { kind: `brats synth phantoms (no ../shared/data)`, cases: (await fs.readdir(folder)).sort().map((id) => path.join(folder, id)) };
}

/** Share of voxels on which two label maps agree (both tumour or both background). */
async function agreement(a, b) {
  const [x, y] = [(await readNifti(a)).data, (await readNifti(b)).data];
  let same = 0;
  for (let v = 0; v < x.length; v++) if (x[v] > 0 === y[v] > 0) same++;
  return same / x.length;
}

const manifest = JSON.parse(readFileSync(path.join(MODEL, 'brats-model.json'), 'utf8'));
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-latency-bench-'));
try {
  const { kind, cases } = await prepareCases(work, Math.max(cohortSize, 1));
  const one = cases[0];
  const sides = [
    ['brats infer, no flips, no largest component, window alone', (out) => infer(one, '--out', out, '--no-tta', '--no-largest-component', '--no-extend-window')],
    [`brats infer, the bundle's post-processing (tta ${manifest.inference?.tta ? 'on' : 'off'}, largest component ${manifest.inference?.largestComponent ? 'on' : 'off'})`, (out) => infer(one, '--out', out)],
    ...(manifest.files.onnxInt8 === undefined ? [] : [['brats infer --precision int8, no flips, no largest component, window alone', (out) => infer(one, '--out', out, '--no-tta', '--no-largest-component', '--no-extend-window', '--precision', 'int8')]]),
    ...(BASELINE_BIN === undefined
      ? []
      : [[`baseline ${cli.baseline}: brats infer, no flips, no largest component`, (out) => inferWith(BASELINE_BIN, one, '--out', out, '--no-tta', '--no-largest-component')]]),
    [`Python script (nibabel + PyTorch, ${threads} threads)`, (out) => run(PYTHON, [path.join(here, 'scan-to-mask.py'), MODEL, out, String(threads), one])],
  ];
  const times = sides.map(() => []);
  const usage = sides.map(() => ({ cpu: [], faults: [] }));
  for (let round = 0; round <= runs; round++) {
    for (const [index, [, side]] of sides.entries()) {
      const out = path.join(work, `one-${index}`);
      await fs.rm(out, { recursive: true, force: true });
      const { seconds, cpuSeconds, faults } = side(out);
      // Round 0 warms the file cache and the model files.
      if (round > 0) {
        times[index].push(seconds);
        usage[index].cpu.push(cpuSeconds);
        usage[index].faults.push(faults);
      }
    }
  }
  const id = path.basename(one);
  const python = median(times.at(-1));
  console.log(`one scan, start to NIfTI written (${kind}; case ${id}; median of ${runs} after a warm-up; ${threads} threads):`);
  for (const [index, [name]] of sides.entries()) {
    const seconds = median(times[index]);
    const cost = useGnuTime ? `   CPU ${median(usage[index].cpu).toFixed(2)} s, ${Math.round(median(usage[index].faults))} page faults` : '';
    console.log(`  ${name.padEnd(76)} ${seconds.toFixed(2).padStart(6)} s${index === sides.length - 1 ? '' : `   ${(python / seconds).toFixed(2)}x the Python script`}${cost}`);
  }
  if (useGnuTime) console.log(`  (CPU: user + system time of every thread, and minor page faults, from ${GNU_TIME}; medians)`);
  console.log(`  brats (no flips) and the Python script agree on ${(100 * (await agreement(path.join(work, 'one-0', `${id}.nii.gz`), path.join(work, `one-${sides.length - 1}`, `${id}.nii.gz`)))).toFixed(3)} % of voxels`);

  const cohort = cases.slice(0, cohortSize);
  console.log('');
  console.log(`cohort of ${cohort.length} scans, no flips, no largest component, the model's window alone, one process each:`);
  const cohortSides = [
    ['brats infer, one case in flight', () => infer(...cohort, '--out', path.join(work, 'cohort-1'), '--no-tta', '--no-largest-component', '--no-extend-window', '--jobs', '1')],
    ['brats infer --jobs 2', () => infer(...cohort, '--out', path.join(work, 'cohort-2'), '--no-tta', '--no-largest-component', '--no-extend-window', '--jobs', '2')],
    [`Python script (${threads} threads)`, () => run(PYTHON, [path.join(here, 'scan-to-mask.py'), MODEL, path.join(work, 'cohort-py'), String(threads), ...cohort])],
  ];
  const results = cohortSides.map(([name, side]) => ({ name, ...side() }));
  const pythonRate = cohort.length / results.at(-1).seconds;
  for (const result of results) {
    const rate = cohort.length / result.seconds;
    const timing = result.stdout.split('\n').find((line) => line.startsWith('timing: '));
    console.log(`  ${result.name.padEnd(36)} ${result.seconds.toFixed(1).padStart(6)} s  ${rate.toFixed(2)} scans/s` + (result === results.at(-1) ? `  (${JSON.stringify(JSON.parse(result.stdout).seconds, (key, value) => (typeof value === 'number' ? Number(value.toFixed(1)) : value))} s in all, torch import ${JSON.parse(result.stdout).importSeconds.toFixed(1)} s)` : `  ${(rate / pythonRate).toFixed(2)}x the Python script`));
    if (timing !== undefined) console.log(`    ${timing}`);
  }
  const [oneMinute] = os.loadavg();
  // A bare Node.js start-up, median of 5: a gauge of how fast this machine ran during the bench (a shared virtual
  // machine's speed varies from hour to hour; the ratios above are what compares across runs).
  const bare = median(Array.from({ length: 5 }, () => run(process.execPath, ['-e', '0']).seconds));
  console.log(`machine load average ${oneMinute.toFixed(2)} (1 min) on ${os.availableParallelism()} CPUs; a bare node -e 0 took ${(bare * 1000).toFixed(0)} ms`);
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
