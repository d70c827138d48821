// Edge-path benchmark, before and after in one run. "Before" is commit 3a629f1 (the CLI loaded every command and
// TensorFlow.js at start-up, onnxruntime-node was a hard dependency of @brats/ncs2-runtime and @brats/metrics depended
// on @brats/io); "after" is the tree this file sits in. Both are measured in the same run, alternating, so machine load
// hits both sides alike. Three measures:
//   1. `brats --help` and `brats infer --help` wall time (and CPU time, peak RSS), median of 7 after one warm-up each;
//   2. one real scan through `brats infer` (plain, and with the bundle's default post-processing): whole-process wall
//      time, CPU time and peak RSS, median of 3 after one warm-up each, and a check that both label maps are equal;
//   3. installed size of a consumer that installs only @brats/io + @brats/ncs2-runtime (and the @brats packages they
//      depend on) from `pnpm pack` tarballs with npm, outside the workspace.
// The before tree is a git worktree (default /tmp/brats-before) installed and built once, then reused while it stays
// at the commit with every dist built.
//
// Run: pnpm --filter @brats/cli bench   (after pnpm build; `pnpm bench` at the root builds first)
// Options: --only help,infer,install   --case <case folder>   --help-runs <n>   --infer-runs <n>
// Environment: BRATS_BENCH_BEFORE_DIR (where the before worktree lives), BRATS_BENCH_CASE (the case folder).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, promises as fs, readFileSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const BEFORE_COMMIT = '3a629f1';
const MODEL = 'models/brats2018-wt-unet';
// A test-split case of the shipped bundle: the model never trained or selected on it.
const DEFAULT_CASE = 'Brats18_CBICA_AQN_1';
const EDGE_PACKAGES = ['@brats/io', '@brats/ncs2-runtime'];
// Native runtimes whose presence in the edge install is reported.
const ENGINE_PACKAGES = ['onnxruntime-node', 'openvino-node', '@tensorflow/tfjs-node', '@tensorflow/tfjs'];
const BUILT_FILES = ['apps/cli/dist/bin.js', 'packages/io/dist/index.js', 'packages/metrics/dist/index.js', 'packages/ncs2-runtime/dist/index.js'];

const here = path.dirname(fileURLToPath(import.meta.url));
const afterRoot = path.resolve(here, '../../..');
const beforeRoot = path.resolve(process.env.BRATS_BENCH_BEFORE_DIR ?? path.join(os.tmpdir(), 'brats-before'));
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', ONNXRUNTIME_NODE_INSTALL: 'skip' };
const started = process.hrtime.bigint();

const { values: cli } = parseArgs({
  options: {
    only: { type: 'string', default: 'help,infer,install' },
    case: { type: 'string' },
    'help-runs': { type: 'string', default: '7' },
    'infer-runs': { type: 'string', default: '3' },
  },
});
const sections = new Set(cli.only.split(',').map((name) => name.trim()));
for (const name of sections) if (!['help', 'infer', 'install'].includes(name)) throw new Error(`edge-bench: --only takes help, infer, install; got "${name}"`);
const helpRuns = positiveInteger(cli['help-runs'], '--help-runs');
const inferRuns = positiveInteger(cli['infer-runs'], '--infer-runs');

function positiveInteger(text, name) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`edge-bench: ${name} takes a positive integer; got "${text}"`);
  return value;
}

function log(line) {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`[${seconds.toFixed(0).padStart(4)} s] ${line}`);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Runs a command to completion; throws with the output's tail when it fails (unless allowFailure). */
function run(command, args, { cwd, allowFailure = false, logFile } = {}) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 28 });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  if (logFile !== undefined) appendFileSync(logFile, `$ ${command} ${args.join(' ')}\n${output}\n`);
  if (result.status === 0 || allowFailure) return { ok: result.status === 0, output, stdout: result.stdout ?? '' };
  const tail = output.trim().split('\n').slice(-15).join('\n');
  throw new Error(`edge-bench: \`${command} ${args.join(' ')}\` in ${cwd ?? process.cwd()} exited ${result.status ?? result.signal}${logFile === undefined ? '' : ` (log: ${logFile})`}\n${tail}`);
}

function machineLoad() {
  const [one, five, fifteen] = os.loadavg();
  return `load average ${one.toFixed(2)}, ${five.toFixed(2)}, ${fifteen.toFixed(2)} on ${os.availableParallelism()} CPUs`;
}

function allBuilt(root) {
  return BUILT_FILES.every((file) => existsSync(path.join(root, file)));
}

/** Newest modification time (ms) of the files under a folder, 0 when it is missing. */
function newestMtime(folder) {
  if (!existsSync(folder)) return 0;
  let newest = 0;
  for (const entry of readdirSync(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

// ---------------------------------------------------------------------------------------------------------------------
// The before tree: a worktree at BEFORE_COMMIT, installed and built once.

async function prepareBefore() {
  const commit = run('git', ['rev-parse', `${BEFORE_COMMIT}^{commit}`], { cwd: afterRoot }).stdout.trim();
  const marker = path.join(beforeRoot, '.edge-bench-ready');
  if (existsSync(beforeRoot)) {
    const head = run('git', ['rev-parse', 'HEAD'], { cwd: beforeRoot, allowFailure: true });
    const atCommit = head.ok && head.stdout.trim() === commit;
    if (atCommit && existsSync(marker) && allBuilt(beforeRoot)) {
      log(`before tree: reusing ${beforeRoot} (at ${BEFORE_COMMIT}, built)`);
      return;
    }
    if (!atCommit) {
      const worktrees = run('git', ['worktree', 'list', '--porcelain'], { cwd: afterRoot }).stdout;
      if (!worktrees.split('\n').includes(`worktree ${beforeRoot}`)) {
        throw new Error(`edge-bench: ${beforeRoot} exists and is not a worktree of this repository at ${BEFORE_COMMIT}; move it away or set BRATS_BENCH_BEFORE_DIR`);
      }
      log(`before tree: ${beforeRoot} is at another commit, replacing it`);
      run('git', ['worktree', 'remove', '--force', beforeRoot], { cwd: afterRoot });
    }
  }
  if (!existsSync(beforeRoot)) {
    log(`before tree: git worktree add --detach ${beforeRoot} ${BEFORE_COMMIT}`);
    run('git', ['worktree', 'prune'], { cwd: afterRoot });
    run('git', ['worktree', 'add', '--detach', beforeRoot, commit], { cwd: afterRoot });
  }
  const logFile = path.join(beforeRoot, '.edge-bench-setup.log');
  await fs.rm(marker, { force: true });
  log(`before tree: pnpm install --offline --frozen-lockfile (log: ${logFile})`);
  const offline = run('pnpm', ['install', '--offline', '--frozen-lockfile'], { cwd: beforeRoot, logFile, allowFailure: true });
  if (!offline.ok) {
    log('before tree: the pnpm store lacks something for an offline install; installing online');
    run('pnpm', ['install', '--frozen-lockfile'], { cwd: beforeRoot, logFile });
  }
  // --force: turbo shares its cache between worktrees; rebuilding makes sure every dist comes from this commit's source.
  log('before tree: pnpm build --force (turbo, every package; a few minutes)');
  run('pnpm', ['build', '--force'], { cwd: beforeRoot, logFile });
  if (!allBuilt(beforeRoot)) throw new Error(`edge-bench: pnpm build in ${beforeRoot} left no ${BUILT_FILES.join(', ')}`);
  await fs.writeFile(marker, `${commit}\n`);
  log('before tree: ready');
}

function checkAfter() {
  if (!allBuilt(afterRoot)) {
    throw new Error(`edge-bench: the working tree is not built (${BUILT_FILES.join(', ')}); run pnpm build, or pnpm bench, which builds first`);
  }
  for (const folder of ['packages/io', 'packages/metrics', 'packages/ncs2-runtime', 'apps/cli']) {
    if (newestMtime(path.join(afterRoot, folder, 'src')) > newestMtime(path.join(afterRoot, folder, 'dist'))) {
      log(`warning: ${folder}/src is newer than its dist: the after figures are for the last build`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Timing one `brats` process: wall time from this process; peak RSS and CPU time (user + system) from GNU time when
// it is installed (Debian package `time`), else from process.resourceUsage() of the child, written by a preloaded
// hook at its exit (maxRSS there is the same getrusage figure, the peak resident set, VmHWM). Worker threads share the
// process, so both count them.

const GNU_TIME = '/usr/bin/time';
const useGnuTime = existsSync(GNU_TIME) && spawnSync(GNU_TIME, ['-f', '%M', 'true'], { encoding: 'utf8' }).status === 0;
let usageHook;

async function writeUsageHook(folder) {
  usageHook = path.join(folder, 'usage-at-exit.mjs');
  await fs.writeFile(
    usageHook,
    "import { writeFileSync } from 'node:fs';\n" +
      "process.on('exit', () => {\n" +
      '  const usage = process.resourceUsage();\n' +
      "  writeFileSync(process.env.BRATS_BENCH_USAGE_FILE, `${usage.maxRSS} ${usage.userCPUTime / 1e6} ${usage.systemCPUTime / 1e6}\\n`);\n" +
      '});\n',
  );
}

/** One `node <tree>/apps/cli/dist/bin.js ...args` in `root`: { seconds, rssKb, cpuSeconds, stdout, stderr }; throws if it fails. */
async function timeBrats(root, args, scratch) {
  const bin = path.join(root, 'apps/cli/dist/bin.js');
  const usageFile = path.join(scratch, `usage-${process.hrtime.bigint()}`);
  const [command, commandArgs] = useGnuTime
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', usageFile, process.execPath, bin, ...args]]
    : [process.execPath, ['--import', pathToFileURL(usageHook).href, bin, ...args]];
  const begin = process.hrtime.bigint();
  const result = spawnSync(command, commandArgs, { cwd: root, env: { ...env, BRATS_BENCH_USAGE_FILE: usageFile }, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  if (result.status !== 0) {
    throw new Error(`edge-bench: brats ${args.join(' ')} in ${root} exited ${result.status ?? result.signal}\n${`${result.stdout}${result.stderr}`.trim().split('\n').slice(-10).join('\n')}`);
  }
  const usageText = await fs.readFile(usageFile, 'utf8').catch(() => '');
  await fs.rm(usageFile, { force: true });
  const [rssKb, user, system] = (usageText.trim().split('\n').pop() ?? '').split(' ').map(Number);
  return { seconds, rssKb: rssKb > 0 ? rssKb : NaN, cpuSeconds: user + system, stdout: result.stdout, stderr: result.stderr };
}

const trees = [
  { key: 'before', root: beforeRoot },
  { key: 'after', root: afterRoot },
];

/** Alternates before/after `runs` times (the order swaps each round so drift in load falls on both). */
async function alternate(runs, measure) {
  const samples = { before: [], after: [] };
  for (let round = 0; round < runs; round += 1) {
    const order = round % 2 === 0 ? trees : [...trees].reverse();
    for (const tree of order) samples[tree.key].push(await measure(tree, round));
  }
  return samples;
}

/** `brats <args>` that prints usage: 1 warm-up each, then `helpRuns` runs alternating; medians. */
async function benchUsage(args, usage, scratch) {
  const title = `brats ${args.join(' ')}`;
  log(`${title}: 1 warm-up each, then ${helpRuns} runs alternating`);
  for (const tree of trees) {
    const { stdout } = await timeBrats(tree.root, args, scratch);
    if (!stdout.includes(usage)) throw new Error(`edge-bench: ${title} in ${tree.root} printed no "${usage}"`);
  }
  const samples = await alternate(helpRuns, (tree) => timeBrats(tree.root, args, scratch));
  const seconds = (key) => median(samples[key].map((sample) => sample.seconds));
  const rss = (key) => median(samples[key].map((sample) => sample.rssKb));
  const cpu = (key) => median(samples[key].map((sample) => sample.cpuSeconds));
  log(`${title}: before ${seconds('before').toFixed(3)} s, after ${seconds('after').toFixed(3)} s`);
  return { title, seconds: { before: seconds('before'), after: seconds('after') }, cpuSeconds: { before: cpu('before'), after: cpu('after') }, rssKb: { before: rss('before'), after: rss('after') } };
}

// ---------------------------------------------------------------------------------------------------------------------
// One real scan through `brats infer`.

async function findCase(scratch) {
  const requested = cli.case ?? process.env.BRATS_BENCH_CASE;
  if (requested !== undefined) {
    if (!existsSync(requested)) throw new Error(`edge-bench: the case folder ${requested} does not exist`);
    return { folder: path.resolve(requested), description: `${path.basename(requested)} (given)` };
  }
  const sample = path.resolve(afterRoot, '../shared/data/brats2018-sample');
  if (existsSync(path.join(sample, DEFAULT_CASE))) return { folder: path.join(sample, DEFAULT_CASE), description: `${DEFAULT_CASE} (real BraTS 2018 case, test split of the bundle)` };
  const first = existsSync(sample) ? readdirSync(sample).filter((name) => name.startsWith('Brats')).sort()[0] : undefined;
  if (first !== undefined) return { folder: path.join(sample, first), description: `${first} (real BraTS 2018 case)` };
  log(`no real case at ${sample}: falling back to a synthetic phantom (brats synth), so the scan is not real`);
  const out = path.join(scratch, 'phantom');
  await timeBrats(afterRoot, ['synth', '--out', out, '--layout', 'brats2018', '--cases', '1', '--seed', '0'], scratch);
  const name = readdirSync(out).find((entry) => statSync(path.join(out, entry)).isDirectory());
  if (name === undefined) throw new Error(`edge-bench: brats synth wrote no case folder into ${out}`);
  return { folder: path.join(out, name), description: `${name} (synthetic phantom from brats synth: no real case found)` };
}

function findLabelMap(folder) {
  const files = readdirSync(folder, { recursive: true }).map(String).filter((name) => /\.nii(\.gz)?$/.test(name) && !/prob/i.test(name));
  if (files.length !== 1) throw new Error(`edge-bench: expected one label map in ${folder}, found ${files.length}: ${files.join(', ')}`);
  return path.join(folder, files[0]);
}

/** Voxels that differ between the two label maps, and the whole-tumour voxel counts. */
async function compareLabelMaps(beforeFile, afterFile) {
  const { readNifti } = await import('@brats/io');
  const [a, b] = await Promise.all([readNifti(beforeFile), readNifti(afterFile)]);
  if (a.data.length !== b.data.length) return { differing: NaN, tumour: [NaN, NaN] };
  let differing = 0;
  let tumourA = 0;
  let tumourB = 0;
  for (let i = 0; i < a.data.length; i += 1) {
    if (a.data[i] !== b.data[i]) differing += 1;
    if (a.data[i] > 0) tumourA += 1;
    if (b.data[i] > 0) tumourB += 1;
  }
  return { differing, tumour: [tumourA, tumourB] };
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function benchInfer(scratch) {
  const scan = await findCase(scratch);
  log(`brats infer on ${scan.description}: ${scan.folder}`);
  const onnx = trees.map((tree) => sha256(path.join(tree.root, MODEL, 'model.onnx')));
  if (onnx[0] !== onnx[1]) log(`note: ${MODEL}/model.onnx differs between the trees; each tree runs its own bundle`);
  const manifest = JSON.parse(readFileSync(path.join(afterRoot, MODEL, 'brats-model.json'), 'utf8'));
  const defaults = manifest.inference ?? {};
  const defaultLabel = [defaults.tta === true ? 'tta' : 'no tta', defaults.largestComponent === true ? 'largest component' : 'every component'].join(', ');
  const configurations = [
    { key: 'plain', title: '--no-tta --no-largest-component', flags: ['--no-tta', '--no-largest-component'] },
    { key: 'default', title: `bundle default (${defaultLabel})`, flags: [] },
  ];
  const once = async (tree, flags) => {
    const out = await fs.mkdtemp(path.join(scratch, `${tree.key}-`));
    const sample = await timeBrats(tree.root, ['infer', '--model', MODEL, scan.folder, '--out', out, ...flags], scratch);
    return { ...sample, out };
  };

  log('brats infer: 1 warm-up each (page cache, plain settings)');
  for (const tree of trees) {
    const warm = await once(tree, configurations[0].flags);
    const engineLine = `${warm.stdout}\n${warm.stderr}`.split('\n').find((line) => /engine/i.test(line));
    log(`  ${tree.key}: ${warm.seconds.toFixed(2)} s${engineLine === undefined ? '' : `; ${engineLine.trim()}`}`);
  }

  const results = {};
  for (const configuration of configurations) {
    log(`brats infer, ${configuration.title}: ${inferRuns} runs each, alternating`);
    const samples = await alternate(inferRuns, async (tree, round) => {
      const sample = await once(tree, configuration.flags);
      log(`  ${tree.key} run ${round + 1}: ${sample.seconds.toFixed(2)} s wall, ${sample.cpuSeconds.toFixed(2)} s CPU, peak RSS ${(sample.rssKb / 1024).toFixed(0)} MiB`);
      return sample;
    });
    const agreement = await compareLabelMaps(findLabelMap(samples.before[0].out), findLabelMap(samples.after[0].out));
    log(`  label maps before vs after: ${agreement.differing} voxels differ (whole tumour ${agreement.tumour[0]} vs ${agreement.tumour[1]} voxels)`);
    results[configuration.key] = {
      title: configuration.title,
      seconds: { before: median(samples.before.map((s) => s.seconds)), after: median(samples.after.map((s) => s.seconds)) },
      rssKb: { before: median(samples.before.map((s) => s.rssKb)), after: median(samples.after.map((s) => s.rssKb)) },
      cpuSeconds: { before: median(samples.before.map((s) => s.cpuSeconds)), after: median(samples.after.map((s) => s.cpuSeconds)) },
      fastest: { before: Math.min(...samples.before.map((s) => s.seconds)), after: Math.min(...samples.after.map((s) => s.seconds)) },
      agreement,
    };
    for (const sample of [...samples.before, ...samples.after]) await fs.rm(sample.out, { recursive: true, force: true });
  }
  return { scan, results };
}

// ---------------------------------------------------------------------------------------------------------------------
// Installed size of an edge consumer: @brats/io + @brats/ncs2-runtime from packed tarballs.

function workspacePackages(root) {
  const byName = new Map();
  for (const group of ['packages', 'apps']) {
    const folder = path.join(root, group);
    if (!existsSync(folder)) continue;
    for (const name of readdirSync(folder)) {
      const manifestFile = path.join(folder, name, 'package.json');
      if (!existsSync(manifestFile)) continue;
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
      byName.set(manifest.name, { folder: path.join(folder, name), manifest });
    }
  }
  return byName;
}

/** The edge packages and every @brats package they install with (dependencies, optional and required peers). */
function edgeClosure(root) {
  const byName = workspacePackages(root);
  const wanted = [...EDGE_PACKAGES];
  const closure = new Map();
  while (wanted.length > 0) {
    const name = wanted.pop();
    if (closure.has(name)) continue;
    const found = byName.get(name);
    if (found === undefined) throw new Error(`edge-bench: ${name} is not a workspace package of ${root}`);
    closure.set(name, found);
    const { dependencies = {}, optionalDependencies = {}, peerDependencies = {}, peerDependenciesMeta = {} } = found.manifest;
    const installed = [...Object.keys(dependencies), ...Object.keys(optionalDependencies), ...Object.keys(peerDependencies).filter((peer) => peerDependenciesMeta[peer]?.optional !== true)];
    for (const dependency of installed) if (dependency.startsWith('@brats/')) wanted.push(dependency);
  }
  return closure;
}

function directorySize(folder) {
  return Number(run('du', ['-sb', folder]).stdout.split('\t')[0]);
}

/** Top-level packages of node_modules (scopes opened) with their size in bytes, largest first. */
function topLevelPackages(nodeModules) {
  const entries = [];
  for (const name of readdirSync(nodeModules)) {
    if (name.startsWith('.')) continue;
    const folder = path.join(nodeModules, name);
    const names = name.startsWith('@') ? readdirSync(folder).map((inner) => `${name}/${inner}`) : [name];
    for (const packageName of names) {
      const packageFolder = path.join(nodeModules, packageName);
      const version = existsSync(path.join(packageFolder, 'package.json')) ? JSON.parse(readFileSync(path.join(packageFolder, 'package.json'), 'utf8')).version : '?';
      entries.push({ name: packageName, version, bytes: directorySize(packageFolder) });
    }
  }
  return entries.sort((a, b) => b.bytes - a.bytes);
}

async function installEdge(tree, scratch) {
  const closure = edgeClosure(tree.root);
  const packDir = path.join(scratch, `pack-${tree.key}`);
  await fs.mkdir(packDir, { recursive: true });
  const tarballs = [];
  for (const [name, { folder }] of closure) {
    const before = new Set(readdirSync(packDir));
    run('pnpm', ['pack', '--pack-destination', packDir], { cwd: folder });
    const added = readdirSync(packDir).filter((file) => !before.has(file) && file.endsWith('.tgz'));
    if (added.length !== 1) throw new Error(`edge-bench: pnpm pack of ${name} in ${folder} wrote ${added.length} tarballs`);
    tarballs.push(path.join(packDir, added[0]));
  }
  const names = [...closure.keys()].sort();
  log(`edge install (${tree.key}): npm install ${names.join(' + ')} from tarballs`);
  const consumer = path.join(scratch, `consumer-${tree.key}`);
  await fs.mkdir(consumer, { recursive: true });
  await fs.writeFile(path.join(consumer, 'package.json'), `${JSON.stringify({ name: 'edge-consumer', version: '1.0.0', private: true }, null, 2)}\n`);
  const npmArgs = ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs];
  let ignoredScripts = false;
  const first = run('npm', npmArgs, { cwd: consumer, allowFailure: true });
  if (!first.ok) {
    log(`  npm install failed with install scripts (${first.output.trim().split('\n').slice(-1)[0]}); retrying with --ignore-scripts`);
    await fs.rm(path.join(consumer, 'node_modules'), { recursive: true, force: true });
    await fs.rm(path.join(consumer, 'package-lock.json'), { force: true });
    run('npm', [...npmArgs, '--ignore-scripts'], { cwd: consumer });
    ignoredScripts = true;
  }
  const lock = JSON.parse(readFileSync(path.join(consumer, 'package-lock.json'), 'utf8'));
  for (const [where, entry] of Object.entries(lock.packages ?? {})) {
    if (where.includes('node_modules/@brats/') && !String(entry.resolved ?? '').startsWith('file:')) {
      throw new Error(`edge-bench: ${where} came from ${entry.resolved ?? 'somewhere other than our tarballs'}; every @brats package must come from a packed tarball`);
    }
  }
  const nodeModules = path.join(consumer, 'node_modules');
  // The install must work, not only be small: both packages import in a plain Node process.
  const imports = run(process.execPath, ['--input-type=module', '-e', "await import('@brats/io'); await import('@brats/ncs2-runtime');"], { cwd: consumer, allowFailure: true });
  const result = {
    imports: imports.ok ? 'ok' : `failed: ${imports.output.trim().split('\n').find((line) => /Error/.test(line)) ?? imports.output.trim().split('\n').pop()}`,
    packages: names,
    bytes: directorySize(nodeModules),
    count: Object.keys(lock.packages ?? {}).filter((where) => where !== '').length,
    top: topLevelPackages(nodeModules).slice(0, 5),
    engines: ENGINE_PACKAGES.filter((name) => existsSync(path.join(nodeModules, name, 'package.json'))),
    ignoredScripts,
  };
  log(`  ${(result.bytes / 1e6).toFixed(1)} MB in node_modules, ${result.count} packages${ignoredScripts ? ' (--ignore-scripts)' : ''}; import of both packages: ${result.imports}`);
  await fs.rm(consumer, { recursive: true, force: true });
  return result;
}

// ---------------------------------------------------------------------------------------------------------------------
// Report.

function ratio(before, after) {
  return `${(after / before).toFixed(2)}x`;
}

function printTable(rows) {
  const header = ['measure', 'before 3a629f1', 'after (tree)', 'after/before', 'target'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells) => `| ${cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((width, column) => (column === 0 ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const mebibytes = (kb) => `${(kb / 1024).toFixed(0)} MiB`;

const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-edge-bench-'));
try {
  log(`edge bench: before = ${BEFORE_COMMIT} at ${beforeRoot}, after = ${afterRoot}`);
  log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${machineLoad()}, node ${process.version}`);
  log(`peak RSS and CPU time from ${useGnuTime ? `${GNU_TIME} -f '%M %U %S' (getrusage of the child)` : 'process.resourceUsage() of the child, written by a preloaded hook at its exit'}`);
  if (!useGnuTime) await writeUsageHook(scratch);
  checkAfter();
  await prepareBefore();

  const rows = [];
  const notes = [];
  if (sections.has('help')) {
    // `infer --help` loads the infer command's code and stops: the fixed start-up cost of a scan, without the scan, far
    // less at the mercy of machine load than the whole run.
    for (const [args, usage, target] of [
      [['--help'], 'Usage: brats', 0.3],
      [['infer', '--help'], 'Usage: brats infer', undefined],
    ]) {
      const { title, seconds, cpuSeconds, rssKb } = await benchUsage(args, usage, scratch);
      const targetText = target === undefined ? '' : `< ${target} s: ${seconds.after < target ? 'met' : 'missed'}`;
      rows.push([`${title}, wall, median of ${helpRuns}`, `${seconds.before.toFixed(3)} s`, `${seconds.after.toFixed(3)} s`, ratio(seconds.before, seconds.after), targetText]);
      rows.push([`${title}, CPU user + system`, `${cpuSeconds.before.toFixed(2)} s`, `${cpuSeconds.after.toFixed(2)} s`, ratio(cpuSeconds.before, cpuSeconds.after), '']);
      rows.push([`${title}, peak RSS`, mebibytes(rssKb.before), mebibytes(rssKb.after), ratio(rssKb.before, rssKb.after), '']);
    }
  }
  let inferScan;
  if (sections.has('infer')) {
    const infer = await benchInfer(scratch);
    inferScan = infer.scan;
    for (const { title, seconds, rssKb, cpuSeconds, fastest, agreement } of Object.values(infer.results)) {
      const saved = seconds.before - seconds.after;
      rows.push([`brats infer ${title}, wall, median of ${inferRuns}`, `${seconds.before.toFixed(2)} s`, `${seconds.after.toFixed(2)} s`, ratio(seconds.before, seconds.after), `>= 1 s faster: ${saved >= 1 ? 'met' : 'missed'} (${saved.toFixed(2)} s)`]);
      rows.push([`brats infer ${title}, CPU user + system`, `${cpuSeconds.before.toFixed(2)} s`, `${cpuSeconds.after.toFixed(2)} s`, ratio(cpuSeconds.before, cpuSeconds.after), '']);
      rows.push([`brats infer ${title}, peak RSS`, mebibytes(rssKb.before), mebibytes(rssKb.after), ratio(rssKb.before, rssKb.after), '']);
      notes.push(`infer ${title}: fastest run before ${fastest.before.toFixed(2)} s, after ${fastest.after.toFixed(2)} s (${(fastest.before - fastest.after).toFixed(2)} s saved); ${agreement.differing} voxels differ between the before and after label maps`);
    }
  }
  let installs;
  if (sections.has('install')) {
    installs = {};
    for (const tree of trees) installs[tree.key] = await installEdge(tree, scratch);
    const { before, after } = installs;
    rows.push(['edge install (io + ncs2-runtime), du -sb node_modules', megabytes(before.bytes), megabytes(after.bytes), ratio(before.bytes, after.bytes), `< 80 MB: ${after.bytes < 80e6 ? 'met' : 'missed'}`]);
    rows.push(['edge install, packages', String(before.count), String(after.count), ratio(before.count, after.count), '']);
  }

  console.log('');
  if (inferScan !== undefined) console.log(`scan: ${inferScan.description}`);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${machineLoad()} (at the end)`);
  console.log('');
  printTable(rows);
  for (const note of notes) console.log(`- ${note}`);
  if (installs !== undefined) {
    for (const tree of trees) {
      const result = installs[tree.key];
      console.log('');
      console.log(`edge install, ${tree.key}: ${result.packages.join(' + ')} from tarballs${result.ignoredScripts ? ', npm --ignore-scripts (install scripts failed)' : ''}`);
      console.log(`  import of both packages: ${result.imports}; native runtimes installed: ${result.engines.length === 0 ? 'none' : result.engines.join(', ')}; top 5 by size:`);
      for (const entry of result.top) console.log(`  ${megabytes(entry.bytes).padStart(9)}  ${entry.name}@${entry.version}`);
    }
  }
} finally {
  await fs.rm(scratch, { recursive: true, force: true });
}
