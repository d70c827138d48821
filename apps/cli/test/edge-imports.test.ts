/**
 * The edge path loads no TensorFlow.js: `brats infer` and `brats serve` run as real processes with a preload that
 * records every module they load (ES modules and CommonJS), and the list must name ONNX Runtime and the runtime
 * package but nothing under @tensorflow/ and not @brats/unet. `brats engines`, which probes the tfjs engine,
 * is the control that shows the recorder does see TensorFlow.js when it loads.
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNifti, writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../dist/bin.js');
const PRELOAD = path.join(here, 'module-log.mjs');
const BUNDLE = path.resolve(here, '../../../models/brats2018-wt-unet');
const built = existsSync(BIN);
let dir: string;
let caseDir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  modules: string[];
}

/** Runs the built CLI with the module recorder; `whileRunning` may talk to it before it is stopped. */
async function runRecorded(name: string, argv: string[], whileRunning?: (stdout: () => string) => Promise<void>): Promise<Run> {
  const log = path.join(dir, `${name}.modules`);
  const child = spawn(process.execPath, ['--import', PRELOAD, BIN, ...argv], {
    env: { ...process.env, BRATS_MODULE_LOG: log },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
  child.stderr.on('data', (chunk: Buffer) => (stderr += String(chunk)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (whileRunning !== undefined) {
    try {
      await whileRunning(() => stdout);
    } finally {
      child.kill('SIGTERM');
    }
  }
  const code = await exited;
  const modules = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line.length > 0);
  return { code, stdout, stderr, modules };
}

const tensorflowModules = (run: Run): string[] => run.modules.filter((module) => /[/\\]@tensorflow[/\\+]|^@tensorflow\//.test(module));
/** The loads of the native engine's worker entry: one per worker thread started. */
const workerEntries = (run: Run): string[] => run.modules.filter((module) => /ncs2-runtime[/\\]dist[/\\]ort-worker\.js$/.test(module));
const unetModules = (run: Run): string[] => run.modules.filter((module) => /[/\\]packages[/\\]unet[/\\]|@brats[/\\+]unet/.test(module));

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-edge-imports-'));
  await writePhantomDataset(path.join(dir, 'cases'), { layout: 'brats2018', cases: 1, size: [96, 96, 64], seed: 5 });
  const [name] = (await fs.readdir(path.join(dir, 'cases'), { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  caseDir = path.join(dir, 'cases', name!);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!built)(`the edge path loads no TensorFlow.js${built ? '' : ' (skipped: build the CLI first, pnpm build)'}`, () => {
  it('brats infer segments a scan on ONNX Runtime without loading @tensorflow/* or @brats/unet', async () => {
    const out = path.join(dir, 'infer');
    const run = await runRecorded('infer', ['infer', '--model', BUNDLE, caseDir, '--out', out, '--engine', 'auto', '--no-tta']);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^engine: onnxruntime on CPU/m);
    const mask = await readNifti(path.join(out, `${path.basename(caseDir)}.nii.gz`));
    expect(mask.shape).toEqual([96, 96, 64]);
    // The recorder saw the inference stack, so an empty list below means TensorFlow.js really was not loaded.
    expect(run.modules.some((module) => module.includes('onnxruntime-node'))).toBe(true);
    expect(run.modules.some((module) => /ncs2-runtime[/\\]dist[/\\]index\.js$/.test(module))).toBe(true);
    expect(tensorflowModules(run)).toEqual([]);
    expect(unetModules(run)).toEqual([]);
    // One engine thread: the one started ahead of the command's code (below), which the engine adopted.
    expect(workerEntries(run)).toHaveLength(1);
  });

  it('brats infer starts the engine\'s thread before its own code loads, and a run that never opens the engine still ends by itself', async () => {
    // The bundle is missing: the command fails before any engine opens, with its usual one-line error and exit
    // code, yet the thread started ahead did load, and the process did not wait for it.
    const missing = path.join(dir, 'no-such-bundle');
    const run = await runRecorded('infer-missing', ['infer', '--model', missing, caseDir, '--out', path.join(dir, 'missing-out')]);
    expect(run.stderr).toBe(`error: ${path.join(missing, 'brats-model.json')}: no model manifest here; a model bundle folder holds brats-model.json\n`);
    expect(run.code).toBe(2);
    expect(workerEntries(run)).toHaveLength(1);
    // An engine other than the native one starts no such thread.
    const web = await runRecorded('infer-web', ['infer', '--model', missing, caseDir, '--out', path.join(dir, 'web-out'), '--engine', 'onnxruntime-web']);
    expect(web.code).toBe(2);
    expect(workerEntries(web)).toEqual([]);
  });

  it('brats serve answers /healthz and one segmentation without loading @tensorflow/* or @brats/unet', async () => {
    const run = await runRecorded('serve', ['serve', '--model', BUNDLE, '--port', '0', '--data-dir', path.join(dir, 'serve-data'), '--quiet'], async (stdout) => {
      const deadline = Date.now() + 60_000;
      let url: string | undefined;
      while (url === undefined) {
        if (Date.now() > deadline) throw new Error(`brats serve did not start: ${stdout()}`);
        url = /^brats server: (http:\/\/127\.0\.0\.1:\d+) /m.exec(stdout())?.[1];
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const form = new FormData();
      const id = path.basename(caseDir);
      for (const [field, suffix] of [['flair', 'flair'], ['t1w', 't1'], ['t1gd', 't1ce'], ['t2w', 't2']] as const) {
        const file = path.join(caseDir, `${id}_${suffix}.nii.gz`);
        form.append(field, new Blob([await fs.readFile(file)]), path.basename(file));
      }
      const submitted = await fetch(`${url}/v1/segmentations`, { method: 'POST', body: form });
      expect(submitted.status).toBe(202);
      const job = (await submitted.json()) as { id: string };
      let record: { status: string; engine?: string; volumesMl?: { WT?: number } } = { status: 'queued' };
      while (record.status === 'queued' || record.status === 'running') {
        if (Date.now() > deadline) throw new Error(`the job did not finish: ${JSON.stringify(record)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        record = (await (await fetch(`${url}/v1/segmentations/${job.id}`)).json()) as typeof record;
      }
      expect(record.status).toBe('succeeded');
      expect(record.engine).toMatch(/^onnxruntime/);
      expect(record.volumesMl?.WT).toBeGreaterThan(0);
    });
    expect(run.code).toBe(0);
    expect(run.modules.some((module) => module.includes('onnxruntime-node'))).toBe(true);
    expect(tensorflowModules(run)).toEqual([]);
    expect(unetModules(run)).toEqual([]);
  });

  it('control: brats engines probes the tfjs engine, and the recorder sees @tensorflow/tfjs load', async () => {
    const run = await runRecorded('engines', ['engines']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('tfjs');
    expect(tensorflowModules(run).some((module) => module.includes('tfjs'))).toBe(true);
    expect(unetModules(run).length).toBeGreaterThan(0);
  });
});
