#!/usr/bin/env node
// In-browser segmentation, timed beside its references in one run. The static site of `brats viewer --out`
// (the shipped model) is served on loopback and driven in headless Debian Chromium; one real scan is set as four
// files and segmented in the page. "Segment to overlay" is the page's own clock, from the click to the mask drawn:
//   - cold: the first segmentation of a fresh page, loading ONNX Runtime Web and the model included;
//   - warm: the same page again (what every further scan costs);
// with WebAssembly threads (the site's _headers served: cross-origin isolated) and without (a plain static host:
// one thread). Beside it, in the same run and with the same (the bundle's) options, `brats infer` on the same case
// as a whole process: on onnxruntime-web (the same WebAssembly runtime, in Node.js) and on native onnxruntime.
// Every browser mask is compared voxel by voxel with the CLI's. Runs alternate, median of --runs (default 3).
//
// Run: pnpm --filter @brats/cli bench (after pnpm build), or node apps/cli/bench/browser-bench.mjs [--runs 3]
//   [--case <case folder>] [--screenshot file.png] (a picture of the page with the in-browser result)
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readNifti } from '@brats/io';
import { CHROMIUM, hasChromium, launchChromium, serveStatic } from '@brats/vitest-config/browser';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const BIN = path.join(root, 'apps/cli/dist/bin.js');
const MODEL = path.join(root, 'models/brats2018-wt-unet');
// A test-split case of the shipped bundle: the model never trained or selected on it.
const DEFAULT_CASE = 'Brats18_CBICA_AQN_1';

const { values: cli } = parseArgs({ options: { runs: { type: 'string', default: '3' }, case: { type: 'string' }, screenshot: { type: 'string' } } });
const runs = Number(cli.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`browser-bench: --runs must be a positive integer, got ${cli.runs}`);
if (!hasChromium()) {
  console.log(`browser-bench: skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
  process.exit(0);
}
if (!existsSync(BIN)) throw new Error('browser-bench: build first (pnpm build)');

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-browser-bench-'));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

function brats(args) {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`brats ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return { seconds, stdout: result.stdout };
}

/** The four files of the case: --case, else the shipped bundle's test case, else a phantom. */
async function chooseCase() {
  const suffixes = { flair: 'flair', t1w: 't1', t1gd: 't1ce', t2w: 't2' };
  const shared = path.resolve(root, '../shared/data/brats2018-sample', DEFAULT_CASE);
  let folder = cli.case ?? process.env.BRATS_BENCH_CASE ?? (existsSync(shared) ? shared : undefined);
  let kind = 'real scan';
  if (folder === undefined) {
    brats(['synth', '--out', path.join(dir, 'phantoms'), '--layout', 'brats2018', '--cases', '1', '--seed', '3']);
    folder = path.join(dir, 'phantoms', 'Phantom_001');
    kind = 'phantom (no ../shared/data here)';
  }
  const id = path.basename(folder);
  const files = Object.fromEntries(Object.entries(suffixes).map(([role, suffix]) => [role, path.join(folder, `${id}_${suffix}.nii.gz`)]));
  return { id, kind, files };
}

async function identicalFraction(a, b) {
  const [x, y] = [await readNifti(a), await readNifti(b)];
  let same = 0;
  for (let v = 0; v < x.data.length; v++) if (x.data[v] === y.data[v]) same++;
  return { same, total: x.data.length };
}

const scan = await chooseCase();
const site = path.join(dir, 'site');
brats(['viewer', '--out', site, '--model', MODEL]);
const isolated = await serveStatic(site);
const plain = await serveStatic(site, { headers: false });
const browser = await launchChromium(path.join(dir, 'profile'));
const cliReference = path.join(dir, 'cli-onnxruntime', `${scan.id}.nii.gz`);

/** One page: two segmentations of the case (cold, then warm); returns both timings and the saved mask. */
async function browserRun(host, label, screenshot) {
  const page = await browser.newPage();
  await page.goto(`${host.url}/`);
  const timings = [];
  let engine = '';
  for (const pass of ['cold', 'warm']) {
    await page.locator('#file-input').setInputFiles(Object.values(scan.files));
    await page.locator('#upload-button').click();
    await page.waitForSelector('body[data-segment-seconds], body[data-state="failed"]', { timeout: 600_000 });
    const state = await page.locator('body').getAttribute('data-state');
    if (state === 'failed') throw new Error(`${label} ${pass}: ${await page.locator('#status').textContent()}`);
    timings.push(JSON.parse(await page.locator('body').getAttribute('data-segment-timings')));
    engine = await page.locator('#engine-info').textContent();
  }
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#mask-link').click()]);
  const saved = path.join(dir, `${label}.nii.gz`);
  await download.saveAs(saved);
  if (screenshot !== undefined) {
    await page.waitForTimeout(500);
    await page.screenshot({ path: screenshot });
  }
  await page.close();
  return { cold: timings[0], warm: timings[1], engine, mask: saved };
}

console.log(`browser-bench: ${scan.kind} ${scan.id}; ${runs} run(s) of each; Chromium ${CHROMIUM}; ${os.cpus().length} logical cores`);
const rows = { 'threads-cold': [], 'threads-warm': [], 'one-cold': [], 'one-warm': [], 'cli-web': [], 'cli-native': [] };
const split = { threads: [], one: [] };
const engines = {};
const agreement = [];
const roles = Object.entries(scan.files).map(([role, file]) => `${role}=${file}`);
for (let run = 0; run < runs; run++) {
  const native = brats(['infer', ...roles, '--model', MODEL, '--engine', 'onnxruntime', '--out', path.dirname(cliReference)]);
  rows['cli-native'].push(native.seconds);
  const web = brats(['infer', ...roles, '--model', MODEL, '--engine', 'onnxruntime-web', '--out', path.join(dir, 'cli-web')]);
  rows['cli-web'].push(web.seconds);
  for (const [label, host] of run % 2 === 0 ? [['threads', isolated], ['one', plain]] : [['one', plain], ['threads', isolated]]) {
    const result = await browserRun(host, `${label}-${run}`, run === 0 && label === 'threads' ? cli.screenshot : undefined);
    rows[`${label}-cold`].push(result.cold.total);
    rows[`${label}-warm`].push(result.warm.total);
    split[label].push(result.warm);
    engines[label] = result.engine;
    agreement.push({ label: `${label} #${run + 1}`, ...(await identicalFraction(result.mask, cliReference)) });
  }
  console.log(`run ${run + 1}/${runs}: browser threads cold ${rows['threads-cold'].at(-1).toFixed(2)} s, warm ${rows['threads-warm'].at(-1).toFixed(2)} s; one thread warm ${rows['one-warm'].at(-1).toFixed(2)} s; CLI wasm ${web.seconds.toFixed(2)} s, native ${native.seconds.toFixed(2)} s`);
}
await browser.close();
await isolated.close();
await plain.close();

const nativeMedian = median(rows['cli-native']);
const webMedian = median(rows['cli-web']);
const table = [
  ['in Chromium, threads (cross-origin isolated), cold: first scan of a page', 'threads-cold'],
  ['in Chromium, threads (cross-origin isolated), warm: every further scan', 'threads-warm'],
  ['in Chromium, 1 thread (plain static host), cold', 'one-cold'],
  ['in Chromium, 1 thread (plain static host), warm', 'one-warm'],
  ['`brats infer --engine onnxruntime-web` (Node.js, same wasm runtime), whole process', 'cli-web'],
  ['`brats infer --engine onnxruntime` (native), whole process', 'cli-native'],
];
console.log('');
console.log(`| path (${scan.id}, the bundle's flips and largest component) | median s | × native CLI | × wasm CLI |`);
console.log('|:--|--:|--:|--:|');
for (const [label, key] of table) {
  const value = median(rows[key]);
  console.log(`| ${label} | ${value.toFixed(2)} | ${(value / nativeMedian).toFixed(2)} | ${(value / webMedian).toFixed(2)} |`);
}
console.log('');
for (const label of ['threads', 'one']) {
  const parts = ['model', 'read', 'preprocess', 'inference', 'postprocess', 'display'];
  const medianSplit = Object.fromEntries(parts.map((part) => [part, median(split[label].map((timing) => timing[part]))]));
  console.log(`warm split, ${label === 'threads' ? 'threads' : '1 thread'}: ${parts.map((part) => `${part} ${medianSplit[part].toFixed(2)} s`).join(', ')}`);
  console.log(`  engine: ${engines[label]}`);
}
for (const { label, same, total } of agreement) console.log(`mask vs CLI onnxruntime, ${label}: ${((100 * same) / total).toFixed(4)}% identical (${total - same} of ${total} voxels differ)`);
console.log(JSON.stringify({ case: scan.id, runs, medians: Object.fromEntries(Object.entries(rows).map(([key, values]) => [key, median(values)])), samples: rows, agreement }));
await fs.rm(dir, { recursive: true, force: true });
