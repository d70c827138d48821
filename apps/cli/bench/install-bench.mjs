#!/usr/bin/env node
// What each package costs a user who installs it alone: every publishable package is packed, served from a
// registry on loopback (our packages come from these tarballs only, the rest from npm), and installed by name into
// its own empty project, with what its README's install line adds (the optional native engine for @brats/ncs2-runtime, in a row of its own). Prints, per
// package: the size of node_modules, how many packages it pulls in, its own dependencies and the install time.
// Run from the repository after a build: node apps/cli/bench/install-bench.mjs
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTarballRegistry } from '../test/tarball-registry.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const FOLDERS = ['packages/metrics', 'packages/io', 'packages/ncs2-runtime', 'packages/unet', 'packages/queue', 'packages/model-brats2018-wt', 'packages/model-brats-regions', 'apps/server', 'apps/cli'];
/** Installed alone, with what their README installs beside them. */
const ALONE = [
  ['@brats/metrics'],
  ['@brats/io'],
  ['@brats/ncs2-runtime'],
  ['@brats/ncs2-runtime', 'onnxruntime-node'],
  ['@brats/unet'],
  ['@brats/model-brats2018-wt'],
  ['@brats/model-brats-regions'],
  ['@brats/cli'],
];

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-install-bench-'));
try {
  const packed = new Map();
  for (const folder of FOLDERS) {
    execFileSync('pnpm', ['pack', '--pack-destination', path.join(dir, 'tarballs')], { cwd: path.join(root, folder), stdio: 'ignore' });
    const { name, version } = JSON.parse(readFileSync(path.join(root, folder, 'package.json'), 'utf8'));
    packed.set(name, path.join(dir, 'tarballs', `${name.replace('@', '').replace('/', '-')}-${version}.tgz`));
  }
  const registry = await startTarballRegistry(packed);
  const rows = [];
  try {
    for (const specs of ALONE) {
      const project = path.join(dir, specs.join('+').replace(/[@/]/g, '-'));
      await fs.mkdir(project);
      await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      const started = performance.now();
      // npm runs as a child with this process free to answer it (a synchronous spawn would block the registry).
      const install = await npm(['install', '--no-audit', '--no-fund', '--loglevel=error', `--@brats:registry=${registry.url}`, '--fetch-retries=0', ...specs], project);
      const seconds = (performance.now() - started) / 1000;
      if (install.status !== 0) throw new Error(`npm install ${specs.join(' ')}: ${install.stderr}`);
      const bytes = Number(execFileSync('du', ['-sb', path.join(project, 'node_modules')], { encoding: 'utf8' }).split('\t')[0]);
      // Every package in the tree, the project itself left out.
      const packages = (await npm(['ls', '--all', '--parseable'], project)).stdout.split('\n').filter(Boolean).length - 1;
      const manifest = JSON.parse(execFileSync('tar', ['xzf', packed.get(specs[0]), '-O', 'package/package.json'], { encoding: 'utf8' }));
      const own = Object.keys(manifest.dependencies ?? {});
      rows.push({ package: specs.join(' + '), mb: bytes / 1024 ** 2, packages, own, seconds });
    }
  } finally {
    await registry.close();
  }
  console.log(`\ninstalled alone with npm ${execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim()} on Node ${process.version} (${os.platform()} ${os.arch()}), ONNX Runtime's install script skipped as its README says\n`);
  console.log('| install | node_modules | packages | its dependencies | install time |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const row of rows) console.log(`| \`npm install ${row.package}\` | ${row.mb < 1 ? `${Math.round(row.mb * 1024)} KB` : `${row.mb.toFixed(1)} MB`} | ${row.packages} | ${row.own.length === 0 ? 'none' : row.own.join(', ')} | ${row.seconds.toFixed(1)} s |`);
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}

/** Runs npm in `cwd` without blocking this process; resolves with its exit status and output. */
function npm(args, cwd) {
  return new Promise((resolve) => {
    execFile('npm', args, { cwd, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, encoding: 'utf8', maxBuffer: 64 * 1024 ** 2 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : 1, stdout, stderr });
    });
  });
}
