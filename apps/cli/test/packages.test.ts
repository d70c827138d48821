/**
 * The packages as a user gets them from npm: each is packed with `pnpm pack`, and npm and pnpm install them by name
 * into two projects outside the workspace from a registry on loopback that serves those tarballs and nothing else
 * (the @brats scope points there: none of our packages can come from anywhere else), each with the install lines
 * and the pnpm settings its README gives. Then, from each project: every tarball carries its LICENSE, each package
 * loads with `import` and with `require`, and each README's quick start (taken from the README inside the installed
 * package, not copied here) type-checks under `tsc --strict` without `skipLibCheck` and runs. Last,
 * `npm install -g @brats/cli` as a user types it (no environment set: ONNX Runtime's native download fails offline
 * and is left out) and the installed `brats` (engines, predict, infer, bench, demo, serve) from an unrelated folder.
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
const PACKAGES = ['metrics', 'io', 'ncs2-runtime', 'unet', 'model-brats2018-wt', 'model-brats-regions'] as const;
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
const MANAGERS = ['npm', 'pnpm'] as const;
type Manager = (typeof MANAGERS)[number];
/** The consumer project of each package manager. */
const projects = {} as Record<Manager, string>;
/** What `pnpm add` printed before the project recorded the READMEs' build decisions. */
let pnpmUndecided: { status: number | null; stdout: string; stderr: string } | undefined;
const tarballs = new Map<string, string>();
/** The install-script decisions the READMEs give pnpm users (package → true or false). */
const decisions = new Map<string, string>();

/** The first fenced block of `language` in the README section titled `heading`. */
function sectionBlock(readme: string, heading: string, language: string): string | undefined {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) return undefined;
  const next = readme.indexOf('\n## ', start + heading.length + 4);
  const section = readme.slice(start, next < 0 ? undefined : next);
  return new RegExp('```' + language + '\\n([\\s\\S]*?)```').exec(section)?.[1];
}

/** An install line of a README: `[VAR=value ...] npm install|pnpm add SPEC...`, its environment and specs. */
function parseInstallLine(line: string): { env: Record<string, string>; specs: string[] } | undefined {
  const match = /^((?:\w+=\S+\s+)*)(?:npm install|pnpm add) ([^#]+)/.exec(line.trim());
  if (match === null) return undefined;
  const env = Object.fromEntries(match[1]!.trim().split(/\s+/).filter(Boolean).map((pair) => pair.split('=') as [string, string]));
  return { env, specs: match[2]!.trim().split(/\s+/) };
}

/** The `allowBuilds` entries of a README's pnpm-workspace.yaml block under `## Install`. */
function allowBuilds(readme: string): Map<string, string> {
  const entries = new Map<string, string>();
  const yaml = sectionBlock(readme, 'Install', 'yaml') ?? '';
  for (const match of yaml.matchAll(/^ {2}('?[@\w./-]+'?): (true|false)/gm)) entries.set(match[1]!, match[2]!);
  return entries;
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
  // The install lines of the READMEs (with the environment they set), and the build decisions they give pnpm.
  const lines: { env: Record<string, string>; specs: string[] }[] = [];
  for (const name of PACKAGES) {
    const readme = await fs.readFile(path.join(ROOT, 'packages', name, 'README.md'), 'utf8');
    for (const line of (sectionBlock(readme, 'Install', 'sh') ?? '').split('\n')) {
      const parsed = parseInstallLine(line);
      if (parsed === undefined || parsed.specs.includes('openvino-node')) continue; // OpenVINO needs Node >= 21 and a download
      lines.push(parsed);
    }
    lines.push({ env: {}, specs: [`@brats/${name}`] });
    for (const [key, value] of allowBuilds(readme)) decisions.set(key, value);
  }
  registry = await startTarballRegistry(tarballs);
  for (const manager of MANAGERS) {
    projects[manager] = path.join(dir, `consumer-${manager}`);
    await fs.mkdir(projects[manager]);
    await fs.writeFile(path.join(projects[manager], 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  }
  // npm: the README lines as written, their environment included (lines that set the same environment together).
  const byEnvironment = new Map<string, string[]>();
  for (const line of lines) byEnvironment.set(JSON.stringify(line.env), [...(byEnvironment.get(JSON.stringify(line.env)) ?? []), ...line.specs]);
  for (const [env, specs] of byEnvironment) {
    const install = await runAsync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', fromTarballs(), NO_RETRIES, ...specs], projects.npm, JSON.parse(env) as Record<string, string>);
    if (install.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed:\n${install.stderr}`);
  }
  // pnpm: the scope set in the project's .npmrc (pnpm takes no --@scope:registry flag); first with no build decided,
  // as a user who has not read the README, then with the READMEs' allowBuilds in pnpm-workspace.yaml.
  await fs.writeFile(path.join(projects.pnpm, '.npmrc'), `@brats:registry=${registry.url}\nfetch-retries=0\n`);
  pnpmUndecided = await runAsync('pnpm', ['add', ...new Set(lines.flatMap((line) => line.specs))], projects.pnpm);
  await fs.writeFile(path.join(projects.pnpm, 'pnpm-workspace.yaml'), `allowBuilds:\n${[...decisions].map(([key, value]) => `  ${key}: ${value}`).join('\n')}\n`);
  const decided = await runAsync('pnpm', ['install'], projects.pnpm);
  if (decided.status !== 0) throw new Error(`pnpm install with the READMEs' allowBuilds failed:\n${decided.stdout}${decided.stderr}`);
}, 900_000);
afterAll(async () => {
  await registry?.close();
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!runnable)(`the packages as packed${runnable ? '' : ` (skipped: ${reason})`}`, () => {
  it.each(PACKAGES.map((name) => [name]))('@brats/%s: its tarball holds LICENSE, README, its code and its types', (name) => {
    const listing = execFileSync('tar', ['tzf', tarballs.get(`@brats/${name}`)!], { encoding: 'utf8' }).split('\n');
    const entries = entryFiles(name).map((file) => `package/${file}`);
    expect(listing).toEqual(expect.arrayContaining(['package/LICENSE', 'package/README.md', 'package/package.json', ...entries]));
  });

  it('pnpm without the READMEs\' build decisions: exits 1 naming the scripts it ignored, with everything installed', () => {
    expect(pnpmUndecided?.status).toBe(1);
    const output = pnpmUndecided!.stdout + pnpmUndecided!.stderr;
    expect(output).toMatch(/ERR_PNPM_IGNORED_BUILDS/);
    // Every script pnpm asks about is one a README decides, and says why.
    const ignored = /Ignored build scripts: ([\s\S]*?)\n\s*help:/.exec(output)?.[1]?.split(/,\s*/).map((spec) => spec.trim().replace(/@[^@]+$/, ''));
    expect(ignored?.length).toBeGreaterThan(0);
    for (const name of ignored!) expect([...decisions.keys()].map((key) => key.replace(/'/g, ''))).toContain(name);
    for (const name of PACKAGES) expect(existsSync(path.join(projects.pnpm, 'node_modules', '@brats', name, 'package.json'))).toBe(true);
  });
});

describe.skipIf(!runnable).each(MANAGERS.map((manager) => [manager]))(`the packages installed from their tarballs with %s${runnable ? '' : ` (skipped: ${reason})`}`, (manager) => {
  it.each(PACKAGES.map((name) => [name]))('@brats/%s loads with import and with require', (name) => {
    const project = projects[manager];
    const imported = run(process.execPath, ['--input-type=module', '-e', `const m = await import('@brats/${name}'); console.log(Object.keys(m).length);`], project);
    const required = run(process.execPath, ['-e', `console.log(Object.keys(require('@brats/${name}')).length);`], project);
    expect([imported.status, imported.stderr]).toEqual([0, '']);
    expect([required.status, required.stderr]).toEqual([0, '']);
    expect(Number(required.stdout)).toBeGreaterThan(0);
    expect(required.stdout).toBe(imported.stdout);
  });

  it.each(PACKAGES.map((name) => [name]))('@brats/%s: the README quick start lists what it imports, type-checks strictly and runs', async (name) => {
    const project = projects[manager];
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
      const cases = path.join(project, 'phantom-case');
      await writePhantomDataset(cases, { layout: 'brats2018', cases: 1, size: [160, 160, 144], seed: 6 });
      const target = path.join(project, 'path', 'to', 'BraTS2021_00006');
      await fs.mkdir(target, { recursive: true });
      for (const file of await fs.readdir(path.join(cases, 'Phantom_001'))) {
        await fs.copyFile(path.join(cases, 'Phantom_001', file), path.join(target, file.replace('Phantom_001', 'BraTS2021_00006')));
      }
    }
    const source = path.join(project, `quickstart-${name}.mts`);
    await fs.writeFile(source, code!);
    // One tsc run checks strictly and emits (--noEmitOnError: a quick start with a type error leaves nothing to run).
    const compiled = run(TSC, ['--strict', '--noEmitOnError', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--outDir', path.join(project, 'compiled'), source], project);
    expect(compiled.stdout + compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
    const ran = run(process.execPath, [path.join(project, 'compiled', `quickstart-${name}.mjs`)], project);
    expect([ran.status, ran.stderr]).toEqual([0, '']);
    const expected = {
      metrics: /^0\.888\d* 0\n/,
      io: /^\[ 144, 144, 144, 4 \]\n/,
      // npm installed the README's optional native line; the pnpm project got it too (same lines).
      'ncs2-runtime': /auto: onnxruntime \(onnxruntime-node [\d.]+\)[\s\S]*WT:/,
      unet: /^backend (wasm|tensorflow): [^\n]+\n2 \[ 'WT' \]\ntrue\n$/,
      'model-brats2018-wt': /^\[ 'WT' \]\n$/,
      'model-brats-regions': /^\[ 'WT', 'TC', 'ET' \]\n$/,
    }[name];
    expect(ran.stdout).toMatch(expected);
  }, 300_000);
});

describe.skipIf(!runnable || !existsSync(path.join(ROOT, 'apps', 'cli', 'dist', 'bin.js')))('npm install -g @brats/cli (from the tarball registry)', () => {
  let prefix: string;
  let work: string;
  let brats: string;
  let installOutput: string;
  let engines: { engines: { name: string; installed: boolean; reason?: string }[]; auto: { engine: string } };
  const cli = (args: string[]) => run(brats, args, work);

  beforeAll(async () => {
    prefix = path.join(dir, 'global');
    work = path.join(dir, 'elsewhere');
    await fs.mkdir(work, { recursive: true });
    // As a user types it, with npm's own output level and nothing set: its @brats dependencies from the tarballs,
    // the rest from npm. (Where its download cannot run, npm leaves onnxruntime-node out.)
    const env = { ...process.env };
    delete env.ONNXRUNTIME_NODE_INSTALL;
    const install = await new Promise<{ status: number; output: string }>((resolve) => {
      execFile('npm', ['install', '--global', '--prefix', prefix, fromTarballs(), NO_RETRIES, '@brats/cli'], { cwd: work, env, encoding: 'utf8', timeout: 500_000, maxBuffer: 64 * 1024 ** 2 }, (error, stdout, stderr) => {
        resolve({ status: error === null ? 0 : 1, output: stdout + stderr });
      });
    });
    installOutput = install.output;
    if (install.status !== 0) throw new Error(`npm install -g failed:\n${install.output}`);
    brats = path.join(prefix, 'bin', 'brats');
    await writePhantomDataset(path.join(work, 'cases'), { layout: 'brats2018', cases: 1, size: [160, 160, 144], seed: 7 });
    engines = JSON.parse(cli(['engines', '--json']).stdout) as typeof engines;
  }, 600_000);

  it('installs without an error or a stack trace, and the README explains every script npm skipped', async () => {
    expect(installOutput).not.toMatch(/^npm error/m);
    expect(installOutput).not.toMatch(/^\s+at \S/m);
    expect(installOutput).toMatch(/^added \d+ packages/m);
    // npm >= 11.19 lists the dependency scripts it did not run, one line each; the CLI README says why each is not needed.
    const skipped = [...installOutput.matchAll(/^npm warn install-scripts {3}(@?[^@\s]+)@\S+ \(/gm)].map((match) => match[1]!);
    const readme = await fs.readFile(path.join(prefix, 'lib', 'node_modules', '@brats', 'cli', 'README.md'), 'utf8');
    const install = readme.slice(readme.indexOf('\n## Install\n'), readme.indexOf('\n## ', readme.indexOf('\n## Install\n') + 5));
    for (const name of new Set(skipped)) expect(install).toContain(`\`${name}\``);
  });

  it('always has the WebAssembly engine; a native engine left out is said to be, in one line, with how to add it', () => {
    const byName = new Map(engines.engines.map((engine) => [engine.name, engine]));
    expect(byName.get('onnxruntime-web')?.installed).toBe(true);
    const native = byName.get('onnxruntime')!;
    expect(native.installed).toBe(existsSync(path.join(prefix, 'lib', 'node_modules', '@brats', 'cli', 'node_modules', 'onnxruntime-node', 'package.json')));
    if (!native.installed) expect(native.reason).toBe('onnxruntime-node is not installed (optional: npm leaves it out when its install script cannot download)');
    const openvino = byName.get('openvino')!;
    if (!existsSync(path.join(prefix, 'lib', 'node_modules', '@brats', 'cli', 'node_modules', 'openvino-node', 'package.json'))) {
      expect(openvino.reason).toBe('openvino-node is not installed (optional: npm leaves it out when its download fails)');
    }
    expect(engines.auto.engine).toBe(native.installed ? 'onnxruntime' : 'onnxruntime-web');
    const text = cli(['engines']).stdout;
    expect(text).toMatch(new RegExp(`^auto -> ${engines.auto.engine} `, 'm'));
  });

  it('predict and infer segment a scan from any folder with the model package, by default and by name, saying which engine runs', () => {
    const byDefault = cli(['predict', path.join('cases', 'Phantom_001'), '--out', 'out-default']);
    expect([byDefault.status, byDefault.stderr]).toEqual([0, expect.not.stringMatching(/error/i)]);
    expect(existsSync(path.join(work, 'out-default', 'Phantom_001.nii.gz'))).toBe(true);
    const byName = cli(['infer', '--model', '@brats/model-brats-regions', path.join('cases', 'Phantom_001'), '--out', 'out-named']);
    expect(byName.status).toBe(0);
    expect(byName.stdout).toMatch(new RegExp(`^engine: ${engines.auto.engine} on CPU`, 'm'));
    expect(readFileSync(path.join(work, 'out-named', 'Phantom_001.nii.gz'))).toEqual(readFileSync(path.join(work, 'out-default', 'Phantom_001.nii.gz')));
  }, 300_000);

  it('bench times the model package on the engine auto takes', () => {
    const bench = cli(['bench', '--model', '@brats/model-brats2018-wt', '--iterations', '2', '--warmup', '1', '--json']);
    expect(bench.status).toBe(0);
    expect(JSON.parse(bench.stdout)).toMatchObject({ engine: engines.auto.engine });
  }, 300_000);

  it('demo runs the whole pipeline on phantoms (train with the optional @brats/unet, ONNX export, predict, report)', async () => {
    const demo = cli(['demo', '--out', 'demo', '--cases', '6', '--epochs', '1', '--steps-per-epoch', '3', '--size', '64,64,40']);
    expect([demo.status, demo.stderr]).toEqual([0, expect.not.stringMatching(/error/i)]);
    for (const file of ['report.html', 'metrics.json', path.join('model', 'model.onnx'), path.join('model', 'brats-model.json')]) {
      expect(existsSync(path.join(work, 'demo', file)), file).toBe(true);
    }
    const metrics = JSON.parse(await fs.readFile(path.join(work, 'demo', 'metrics.json'), 'utf8')) as { cases: { id: string }[] };
    expect(metrics.cases).toHaveLength(3);
  }, 300_000);

  it('serve answers on loopback with the default model and stops on SIGTERM', async () => {
    const server = await startServeProcess(brats, ['serve', '--port', '0', '--data-dir', path.join(work, 'data'), '--quiet'], { cwd: work });
    const { url } = server;
    try {
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const model = (await (await fetch(`${url}/v1/model`)).json()) as { manifest: { regions: string[] } };
      expect(model.manifest.regions).toEqual(['WT', 'TC', 'ET']);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  }, 120_000);
});
