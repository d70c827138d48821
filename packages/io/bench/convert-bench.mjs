// Convert benchmark: seconds per case and peak RSS of convertDataset for 10 and 40 phantom cases at
// 240x240x155 (Decathlon layout), with all cores and with one thread, beside the plain-Python reference
// convert-reference.py (nibabel + h5py, one process) where the Debian python3 has them. Peak RSS should not
// grow with the number of cases. Each run is a separate process so that its peak RSS is its own.
// Run: pnpm --filter @brats/io bench:convert   (after pnpm build)
// Options: --cases 10,40   --workers N (default: convertDataset's)   --keep DIR (reuse/keep phantoms there)
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const distEntry = path.join(here, '../dist/index.js');

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

if (process.argv[2] === '--child') {
  // One conversion, measured in its own process.
  const [, , , datasetDir, out, workers] = process.argv;
  const io = await import(distEntry);
  const started = performance.now();
  const summary = await io.convertDataset(datasetDir, out, workers === 'default' ? {} : { workers: Number(workers) });
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ seconds, cases: summary.cases, workers: summary.workers, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

if (!existsSync(distEntry)) {
  console.error(`${distEntry} not found: run pnpm --filter @brats/io build first`);
  process.exit(1);
}
const io = await import(distEntry);
const counts = option('--cases', '10,40').split(',').map(Number);
const workers = option('--workers', 'default');
const keep = option('--keep', undefined);
const work = keep ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'brats-convert-bench-')));
const largest = Math.max(...counts);

const phantoms = path.join(work, `phantoms-${largest}`);
if (!existsSync(path.join(phantoms, 'dataset.json'))) {
  console.log(`generating ${largest} phantom cases (240x240x155, Decathlon layout) in ${phantoms} ...`);
  const started = performance.now();
  await io.writePhantomDataset(phantoms, { layout: 'msd', cases: largest, seed: 1, compressionLevel: 1 });
  console.log(`  ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
const full = JSON.parse(await fs.readFile(path.join(phantoms, 'dataset.json'), 'utf8'));

/** A dataset.json listing the first n cases of the phantom folder (absolute paths, no copies). */
async function subset(n) {
  const dir = path.join(work, `subset-${n}`);
  await fs.mkdir(dir, { recursive: true });
  const training = full.training.slice(0, n).map((entry) => ({ image: path.resolve(phantoms, entry.image), label: path.resolve(phantoms, entry.label) }));
  await fs.writeFile(path.join(dir, 'dataset.json'), JSON.stringify({ ...full, numTraining: n, training, test: [] }, null, 2));
  return dir;
}

function runJson(command, args) {
  return JSON.parse(execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop());
}

let python;
try {
  execFileSync('/usr/bin/python3', ['-c', 'import nibabel, h5py, numpy'], { stdio: 'ignore' });
  python = '/usr/bin/python3';
} catch {
  console.log('python reference: skipped (no /usr/bin/python3 with nibabel, h5py and numpy)');
}

const rows = [];
for (const n of counts) {
  const dir = await subset(n);
  const runs = [
    [`@brats/io convert, workers ${workers}`, () => runJson(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, path.join(work, `ours-${n}.h5`), workers])],
    ['@brats/io convert, workers 0 (one thread)', () => runJson(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, path.join(work, `ours1-${n}.h5`), '0'])],
  ];
  if (python) runs.push(['convert-reference.py (nibabel+h5py, one process)', () => runJson(python, [path.join(here, 'convert-reference.py'), dir, path.join(work, `ref-${n}.h5`)])]);
  for (const [label, run] of runs) {
    const result = run();
    rows.push({ n, label, ...result });
    console.log(`${String(n).padStart(3)} cases  ${label.padEnd(50)} ${(result.seconds / n).toFixed(2).padStart(6)} s/case  peak RSS ${result.peak_rss_mb.toFixed(0).padStart(5)} MB${result.workers === undefined ? '' : `  (${result.workers} workers)`}`);
  }
}

console.log('');
for (const n of counts) {
  const at = (prefix) => rows.find((row) => row.n === n && row.label.startsWith(prefix));
  const ours = at('@brats/io convert, workers ' + workers);
  const single = at('@brats/io convert, workers 0');
  const reference = at('convert-reference.py');
  if (reference) {
    console.log(
      `${n} cases: time ours / reference ${(ours.seconds / reference.seconds).toFixed(2)}x (all cores), ` +
        `${(single.seconds / reference.seconds).toFixed(2)}x (one thread) (below 1: ours faster); ` +
        `peak RSS ours ${ours.peak_rss_mb.toFixed(0)} MB vs reference ${reference.peak_rss_mb.toFixed(0)} MB`,
    );
  }
}
if (counts.length > 1) {
  const [small, large] = [Math.min(...counts), largest];
  const peak = (n, prefix) => rows.find((row) => row.n === n && row.label.startsWith(prefix)).peak_rss_mb;
  const prefix = '@brats/io convert, workers ' + workers;
  console.log(`peak RSS ${large} vs ${small} cases (all cores): ${(peak(large, prefix) / peak(small, prefix)).toFixed(2)}x`);
}

// Reading back for training: random batches of 128 tumour slices from the largest store, no file loading.
{
  const store = await io.openSliceStore(path.join(work, `ours-${largest}.h5`));
  try {
    const tumour = store.tumourSlices('train');
    const started = performance.now();
    let slices = 0;
    for (let batch = 0; batch < 5 && tumour.length > 0; batch++) {
      const indices = Array.from({ length: 128 }, (_, k) => tumour[(batch * 128 + k) * 7919 % tumour.length]);
      slices += store.readBatch('train', indices).shape[0];
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`readBatch: ${slices} random tumour slices in ${seconds.toFixed(2)} s (${(slices / seconds).toFixed(0)} slices/s)`);
  } finally {
    store.close();
  }
}
if (keep === undefined) await fs.rm(work, { recursive: true, force: true });
console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), load ${os.loadavg().map((v) => v.toFixed(1)).join(' ')}`);
