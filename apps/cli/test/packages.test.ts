/**
 * The packages as a user gets them from npm: each is packed with `pnpm pack`, and npm installs them by name into a
 * project outside the workspace from a registry on loopback that serves those tarballs and nothing else (the
 * @brats scope points there: none of our packages can come from anywhere else). Then, from that project: every
 * tarball carries its LICENSE, each package loads with `import` and with `require`, and each README's quick start
 * (taken from the README inside the installed package, not copied here) type-checks under `tsc --strict` without
 * `skipLibCheck` and runs. Last, `npm install -g @brats/cli` and the installed `brats` from an unrelated folder.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeProcess } from './serve-process.js';
import { startTarballRegistry } from './tarball-registry.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The packages whose tarballs this test installs, in dependency order. */
const PACKAGES = ['metrics', 'io', 'ncs2-runtime', 'unet', 'model-brats2018-wt'] as const;
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');
/** The rest of what `npm install -g @brats/cli` installs: the queue and the server, and the CLI itself. */
const CLI_ONLY = ['packages/queue', 'apps/server', 'apps/cli'] as const;
let registry: { url: string; close: () => Promise<void> } | undefined;
/** npm's flag that sends every @brats package to the tarball registry. */
const fromTarballs = (): string => `--@brats:registry=${registry!.url}`;
/** A package of ours missing from the tarballs fails at once instead of after npm's retries. */
const NO_RETRIES = '--fetch-retries=0';

function commandWorks(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

/** What a package's `main` and `types` name, relative to its folder. */
function entryFiles(name: string): string[] {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'packages', name, 'package.json'), 'utf8')) as { main: string; types: string };
  return [manifest.main, manifest.types].map((file) => path.normalize(file));
}

const built = PACKAGES.every((name) => entryFiles(name).every((file) => existsSync(path.join(ROOT, 'packages', name, file))));
const tools = commandWorks('pnpm', ['--version']) && commandWorks('npm', ['--version']) && existsSync(TSC);
const runnable = built && tools;
const reason = !built ? 'build the packages first' : 'needs pnpm, npm and the workspace TypeScript';

let dir: string;
let project: string;
const tarballs = new Map<string, string>();

/** The first fenced block of `language` in the README section titled `heading`. */
function sectionBlock(readme: string, heading: string, language: string): string | undefined {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) return undefined;
  const next = readme.indexOf('\n## ', start + heading.length + 4);
  const section = readme.slice(start, next < 0 ? undefined : next);
  return new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(section)?.[1];
}

/** The packages a snippet imports (`from '…'`), scoped names kept whole. */
function importedPackages(code: string): string[] {
  return [...new Set([...code.matchAll(/from '([^'./][^']*)'/g)].map((match) => {
    const parts = match[1]!.split('/');
    return match[1]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }))];
}

/** As {@link run}, without blocking this process: the tarball registry answers npm from it. */
function runAsync(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 500_000, maxBuffer: 64 * 1024 ** 2 }, (error, stdout, stderr) => {
      resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  if (!runnable) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-packages-'));
  const packed = path.join(dir, 'tarballs');
  for (const folder of [...PACKAGES.map((name) => path.join('packages', name)), ...CLI_ONLY]) {
    execFileSync('pnpm', ['pack', '--pack-destination', packed], { cwd: path.join(ROOT, folder), stdio: 'ignore' });
    const manifest = JSON.parse(await fs.readFile(path.join(ROOT, folder, 'package.json'), 'utf8')) as { name: string; version: string };
    tarballs.set(manifest.name, path.join(packed, `${manifest.name.replace('@', '').replace('/', '-')}-${manifest.version}.tgz`));
  }
  project = path.join(dir, 'consumer');
  await fs.mkdir(project);
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // The install lines of the READMEs, with our packages taken from their tarballs.
  const wanted = new Set<string>();
  for (const name of PACKAGES) {
    const readme = await fs.readFile(path.join(ROOT, 'packages', name, 'README.md'), 'utf8');
    const install = sectionBlock(readme, 'Install', 'sh') ?? '';
    for (const line of install.split('\n')) {
      const match = /^(?:npm install|pnpm add) ([^#]+)/.exec(line.trim());
      if (match === null || /openvino-node/.test(line)) continue; // OpenVINO needs Node >= 21 and a download
      for (const spec of match[1]!.trim().split(/\s+/)) wanted.add(spec);
    }
    wanted.add(`@brats/${name}`);
  }
  registry = await startTarballRegistry(tarballs);
  const specs = [...wanted];
  const install = await runAsync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', fromTarballs(), NO_RETRIES, ...specs], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  if (install.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed:\n${install.stderr}`);
}, 600_000);
afterAll(async () => {
  await registry?.close();
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!runnable)(`the packages installed from their tarballs${runnable ? '' : ` (skipped: ${reason})`}`, () => {
  it.each(PACKAGES.map((name) => [name]))('@brats/%s: its tarball holds LICENSE, README, its code and its types', (name) => {
    const listing = execFileSync('tar', ['tzf', tarballs.get(`@brats/${name}`)!], { encoding: 'utf8' }).split('\n');
    const entries = entryFiles(name).map((file) => `package/${file}`);
    expect(listing).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md', 'package/package.json', ...entries]));
  });

  it.each(PACKAGES.map((name) => [name]))('@brats/%s loads with import and with require', (name) => {
    const imported = run(process.execPath, ['--input-type=module', '-e', `const m = await import('@brats/${name}'); console.log(Object.keys(m).length);`], project);
    const required = run(process.execPath, ['-e', `console.log(Object.keys(require('@brats/${name}')).length);`], project);
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    expect([required.status, required.stderr]).toEqual([0, '']);
    expect(Number(required.stdout)).toBeGreaterThan(0);
    expect(required.stdout).toBe(imported.stdout);
  });

  it.each(PACKAGES.map((name) => [name]))('@brats/%s: the README quick start lists what it imports, type-checks strictly and runs', async (name) => {
    const readme = await fs.readFile(path.join(project, 'node_modules', '@brats', name, 'README.md'), 'utf8');
    const code = sectionBlock(readme, 'Quick start', 'ts');
    expect(code, 'a ```ts block under ## Quick start').toBeDefined();
    // Every package it imports is one the README's install line installs (or Node's own).
    const installed = new Set(sectionBlock(readme, 'Install', 'sh')?.match(/@?[\w.-]+(?:\/[\w.-]+)?/g) ?? []);
    installed.add(`@brats/${name}`);
    expect(importedPackages(code!).filter((module) => !module.startsWith('node:') && !installed.has(module))).toEqual([]);

    // What the quick start reads, where it says it is.
    if ((name === 'io' || name === 'unet') && !existsSync(path.join(project, 'Task01_BrainTumour'))) {
      await writePhantomDataset(path.join(project, 'Task01_BrainTumour'), { layout: 'msd', cases: 3, size: [150, 150, 144], seed: 5 });
    }
    if (name === 'ncs2-runtime') {
      await fs.cp(path.join(ROOT, 'models', 'brats2018-wt-unet'), path.join(project, 'path', 'to', 'model-bundle'), { recursive: true });
      const cases = path.join(dir, 'phantom-case');
      await writePhantomDataset(cases, { layout: 'brats2018', cases: 1, size: [160, 160, 144], seed: 6 });
      const target = path.join(project, 'path', 'to', 'BraTS2021_00006');
      await fs.mkdir(target, { recursive: true });
      for (const file of await fs.readdir(path.join(cases, 'Phantom_001'))) {
        await fs.copyFile(path.join(cases, 'Phantom_001', file), path.join(target, file.replace('Phantom_001', 'BraTS2021_00006')));
      }
    }
    const source = path.join(project, `quickstart-${name}.mts`);
    await fs.writeFile(source, code!);
    const typeCheck = run(TSC, ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), source], project);
    expect(typeCheck.stdout + typeCheck.stderr).toBe('');
    const compiled = run(TSC, ['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--outDir', path.join(project, 'compiled'), source], project);
    expect(compiled.status).toBe(0);
    const ran = run(process.execPath, [path.join(project, 'compiled', `quickstart-${name}.mjs`)], project);
    expect([ran.status, ran.stderr]).toEqual([0, '']);
    const expected = {
      metrics: /^0\.888\d* 0\n/,
      io: /^\[ 144, 144, 144, 4 \]\n/,
      'ncs2-runtime': /auto: onnxruntime[\s\S]*WT:/,
      unet: /^backend (wasm|tensorflow): [^\n]+\n2 \[ 'WT' \]\ntrue\n$/,
      'model-brats2018-wt': /^\[ 'WT' \]\n$/,
    }[name];
    expect(ran.stdout).toMatch(expected);
  }, 300_000);
});

describe.skipIf(!runnable || !existsSync(path.join(ROOT, 'apps', 'cli', 'dist', 'bin.js')))('npm install -g @brats/cli (from the tarball registry)', () => {
  let prefix: string;
  let work: string;
  let brats: string;
  const cli = (args: string[]) => run(brats, args, work);

  beforeAll(async () => {
    prefix = path.join(dir, 'global');
    work = path.join(dir, 'elsewhere');
    await fs.mkdir(work, { recursive: true });
    // As a user would: npm install -g @brats/cli, its @brats dependencies from the tarballs, the rest from npm.
    const install = await runAsync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', fromTarballs(), NO_RETRIES, '@brats/cli'], work, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
    if (install.status !== 0) throw new Error(`npm install -g failed:\n${install.stderr}`);
    brats = path.join(prefix, 'bin', 'brats');
    await writePhantomDataset(path.join(work, 'cases'), { layout: 'brats2018', cases: 1, size: [160, 160, 144], seed: 7 });
  }, 600_000);

  it('predict and infer segment a scan from any folder with the model package, by default and by name', () => {
    const byDefault = cli(['predict', path.join('cases', 'Phantom_001'), '--out', 'out-default']);
    expect([byDefault.status, byDefault.stderr]).toEqual([0, expect.not.stringMatching(/error/i)]);
    expect(existsSync(path.join(work, 'out-default', 'Phantom_001.nii.gz'))).toBe(true);
    const byName = cli(['infer', '--model', '@brats/model-brats2018-wt', path.join('cases', 'Phantom_001'), '--out', 'out-named']);
    expect(byName.status).toBe(0);
    expect(byName.stdout).toMatch(/^engine: onnxruntime on CPU/m);
    expect(readFileSync(path.join(work, 'out-named', 'Phantom_001.nii.gz'))).toEqual(readFileSync(path.join(work, 'out-default', 'Phantom_001.nii.gz')));
  }, 300_000);

  it('bench times the model package and engines lists the engines', () => {
    const bench = cli(['bench', '--model', '@brats/model-brats2018-wt', '--iterations', '2', '--warmup', '1', '--json']);
    expect(bench.status).toBe(0);
    expect(JSON.parse(bench.stdout)).toMatchObject({ engine: 'onnxruntime' });
    const engines = cli(['engines']);
    expect(engines.status).toBe(0);
    expect(engines.stdout).toMatch(/onnxruntime/);
  }, 300_000);

  it('serve answers on loopback with the default model and stops on SIGTERM', async () => {
    const server = await startServeProcess(brats, ['serve', '--port', '0', '--data-dir', path.join(work, 'data'), '--quiet'], { cwd: work });
    const { url } = server;
    try {
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const model = (await (await fetch(`${url}/v1/model`)).json()) as { manifest: { regions: string[] } };
      expect(model.manifest.regions).toEqual(['WT']);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  }, 120_000);
});

