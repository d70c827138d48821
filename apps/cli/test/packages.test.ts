/**
 * The packages as a user gets them from npm: each is packed with `pnpm pack`, the tarballs are installed with npm
 * into a project outside the workspace (our own packages can come from the tarballs only: the @brats scope points
 * at an address where nothing answers), and then, from that project: every tarball carries its LICENSE, each
 * package loads with `import` and with `require`, and each README's quick start — taken from the README inside the
 * installed package, not copied here — type-checks under `tsc --strict` without `skipLibCheck` and runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The packages whose tarballs this test installs, in dependency order. */
const PACKAGES = ['metrics', 'io', 'ncs2-runtime', 'unet'] as const;
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');

function commandWorks(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

const built = PACKAGES.every((name) => existsSync(path.join(ROOT, 'packages', name, 'dist', 'index.js')));
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

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  if (!runnable) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-packages-'));
  const packed = path.join(dir, 'tarballs');
  for (const name of PACKAGES) {
    execFileSync('pnpm', ['pack', '--pack-destination', packed], { cwd: path.join(ROOT, 'packages', name), stdio: 'ignore' });
    const manifest = JSON.parse(await fs.readFile(path.join(ROOT, 'packages', name, 'package.json'), 'utf8')) as { name: string; version: string };
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
  const specs = [...wanted].map((spec) => tarballs.get(spec) ?? spec);
  const install = run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--@brats:registry=http://127.0.0.1:9/', ...specs], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  if (install.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed:\n${install.stderr}`);
}, 600_000);
afterAll(async () => {
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!runnable)(`the packages installed from their tarballs${runnable ? '' : ` (skipped: ${reason})`}`, () => {
  it.each(PACKAGES.map((name) => [name]))('@brats/%s: its tarball holds LICENSE, README and types', (name) => {
    const listing = execFileSync('tar', ['tzf', tarballs.get(`@brats/${name}`)!], { encoding: 'utf8' }).split('\n');
    expect(listing).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md', 'package/package.json', 'package/dist/index.js', 'package/dist/index.d.ts']));
  });

  it.each(PACKAGES.map((name) => [name]))('@brats/%s loads with import and with require', (name) => {
    const imported = run(process.execPath, ['--input-type=module', '-e', `const m = await import('@brats/${name}'); console.log(Object.keys(m).length);`], project);
    const required = run(process.execPath, ['-e', `console.log(Object.keys(require('@brats/${name}')).length);`], project);
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    expect([required.status, required.stderr]).toEqual([0, '']);
    expect(Number(required.stdout)).toBeGreaterThan(5);
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
    }[name];
    expect(ran.stdout).toMatch(expected);
  }, 300_000);
});
