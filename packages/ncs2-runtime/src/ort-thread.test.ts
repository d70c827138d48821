/**
 * The native ONNX Runtime engine on its own thread, as the built package creates it (from TypeScript sources no
 * worker entry exists and the engine runs on the calling thread; see ort-thread.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repositoryRoot } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as IoModule from '@brats/io';
import { writeFixtureBundle } from '../test/bundle-fixture.js';
import type * as RuntimeModule from './index.js';
import type * as PrestartModule from './ort-prestart.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const PRESTART = fileURLToPath(new URL('../dist/ort-prestart.js', import.meta.url));
const MODEL = path.join(repositoryRoot, 'models/brats2018-wt-unet');
type Runtime = typeof RuntimeModule;
type Io = typeof IoModule;

let runtime: Runtime | undefined;
let io: Io;
let native = false;
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-thread-'));
  if (!existsSync(DIST)) return;
  runtime = (await import(pathToFileURL(DIST).href)) as Runtime;
  // @brats/io as the built package imports it here, so that error classes compare with the ones it throws.
  io = (await import('@brats/io')) as Io;
  native = (await runtime.onnxRuntimeFactory.probe()).installed;
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** How many times the event loop turns while `work` is pending: about none when `work` blocks this thread. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = (): void => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const value = await work();
  done = true;
  return { value, turns };
}

/** 16 slices of the shipped model's input, a deterministic pattern. */
const batch = Float32Array.from({ length: 16 * 144 * 144 * 4 }, (_, i) => Math.sin(i * 0.001) * 2);

/** Every module specifier `file` and the package files it imports statically import, following relative ones. */
async function staticImports(file: string, seen = new Set<string>()): Promise<Set<string>> {
  const text = await fs.readFile(file, 'utf8');
  for (const match of text.matchAll(/\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm)) {
    const specifier = match[1] ?? match[2]!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    if (specifier.startsWith('.')) await staticImports(path.resolve(path.dirname(file), specifier), seen);
  }
  return seen;
}

describe.skipIf(!existsSync(DIST))('the ONNX Runtime engine on its own thread (skipped: dist/index.js not built; run pnpm build)', () => {
  it('starts its worker from an entry that loads no @brats package: only Node\'s modules and its own files', async () => {
    const entry = path.join(path.dirname(DIST), 'ort-worker.js');
    const imported = [...(await staticImports(entry))];
    expect(imported.some((specifier) => specifier.startsWith('./chunk-'))).toBe(true);
    expect(imported.filter((specifier) => !specifier.startsWith('.') && !specifier.startsWith('node:') && !['fs', 'os', 'path', 'worker_threads'].includes(specifier))).toEqual([]);
    // The bundle it sits beside does load @brats/io: the check would see it.
    expect([...(await staticImports(DIST))]).toContain('@brats/io');
  });

  it('gives the same bits as the engine on the calling thread, and leaves this thread free while a batch computes', async (context) => {
    if (!native) context.skip('onnxruntime-node does not load here');
    const threaded = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2 });
    const inThread = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2, ownThread: false });
    try {
      expect(threaded.engine.layout).toEqual(inThread.engine.layout);
      expect(threaded.engine.version).toBe(inThread.engine.version);
      // The batch is a view into a larger array, as segmentCase passes one: the caller's array stays usable.
      const whole = new Float32Array(batch.length + 8);
      whole.set(batch, 8);
      const view = whole.subarray(8);
      const away = await turnsDuring(() => threaded.engine.run(view, 16));
      const here = await turnsDuring(() => inThread.engine.run(batch, 16));
      expect(view.length).toBe(batch.length);
      expect(Buffer.compare(Buffer.from(away.value.buffer, away.value.byteOffset, away.value.byteLength), Buffer.from(here.value.buffer, here.value.byteOffset, here.value.byteLength))).toBe(0);
      // 16 slices take tens of milliseconds: the event loop turns throughout on one side, hardly at all on the other.
      expect(away.turns).toBeGreaterThan(20);
      expect(here.turns).toBeLessThan(5);
      // The worker gives each input array back and the next batch of that size is copied into it: a different
      // batch of 16 must still give its own answer, and the caller's arrays stay as they were.
      const other = batch.map((value) => value * -0.5);
      const reused = await threaded.engine.run(other, 16);
      const direct = await inThread.engine.run(other, 16);
      expect(Buffer.compare(Buffer.from(reused.buffer, reused.byteOffset, reused.byteLength), Buffer.from(direct.buffer, direct.byteOffset, direct.byteLength))).toBe(0);
      expect(Buffer.compare(Buffer.from(reused.buffer, reused.byteOffset, reused.byteLength), Buffer.from(away.value.buffer, away.value.byteOffset, away.value.byteLength))).not.toBe(0);
      expect(other[5]).toBe(batch[5]! * -0.5);
      expect(Array.from(view.subarray(0, 4))).toEqual(Array.from(batch.subarray(0, 4)));
      // Two batches in flight at once come back to their own callers.
      const [first, second] = await Promise.all([threaded.engine.run(batch.subarray(0, 144 * 144 * 4), 1), threaded.engine.run(batch.subarray(144 * 144 * 4, 2 * 144 * 144 * 4), 1)]);
      expect(Array.from(first)).toEqual(Array.from(here.value.subarray(0, 144 * 144)));
      expect(Array.from(second)).toEqual(Array.from(here.value.subarray(144 * 144, 2 * 144 * 144)));
    } finally {
      await threaded.engine.dispose();
      await inThread.engine.dispose();
    }
  });

  it('adopts a thread started ahead: the engine opened next takes it, with the options it was opened with, and gives the same bits', async (context) => {
    if (!native) context.skip('onnxruntime-node does not load here');
    // The entry the CLI imports first; it shares its module state with the package's index (one chunk).
    const prestart = (await import(pathToFileURL(PRESTART).href)) as typeof PrestartModule;
    const entry = prestart.ortThreadEntry()!;
    expect(prestart.prestartOrtThread()).toBe(true);
    // Profiling is an option the thread only learns from the engine: per-layer timings show that it got them.
    const early = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2, perfCounters: true });
    // Taken by that engine: nothing is left to take.
    expect(prestart.takePrestartedOrtThread(entry)).toBeUndefined();
    const inThread = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2, ownThread: false });
    try {
      const [away, here] = [await early.engine.run(batch, 16), await inThread.engine.run(batch, 16)];
      expect(Buffer.compare(Buffer.from(away.buffer, away.byteOffset, away.byteLength), Buffer.from(here.buffer, here.byteOffset, here.byteLength))).toBe(0);
      const counters = await early.engine.perfCounters();
      expect(counters?.some((layer) => layer.type === 'Conv')).toBe(true);
    } finally {
      await early.engine.dispose();
      await inThread.engine.dispose();
    }
  });

  it('warms the model up with two batches of zeros when asked, and the first real batch gives the same bits', async (context) => {
    if (!native) context.skip('onnxruntime-node does not load here');
    // Per-layer timings count the runs the session made: two of zeros before the one asked for, or that one alone.
    const warmed = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2, perfCounters: true, warmupBatch: 4 });
    const cold = await runtime!.openBundleEngine(MODEL, 'onnxruntime', { threads: 2, perfCounters: true });
    try {
      const four = batch.subarray(0, 4 * 144 * 144 * 4);
      const [a, b] = [await warmed.engine.run(four, 4), await cold.engine.run(four, 4)];
      expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(0);
      expect((await warmed.engine.perfCounters())?.[0]?.runs).toBe(3);
      expect((await cold.engine.perfCounters())?.[0]?.runs).toBe(1);
    } finally {
      await warmed.engine.dispose();
      await cold.engine.dispose();
    }
  });

  it('lets a process whose thread started ahead was never used end by itself', () => {
    // No engine takes the thread: the process must still exit on its own, at once, with status 0.
    const script = `import { prestartOrtThread } from ${JSON.stringify(pathToFileURL(PRESTART).href)}; if (!prestartOrtThread()) process.exit(3);`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: result.status, signal: result.signal, stderr: result.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
  });

  it('throws the calling thread\'s error classes: a wrong batch, a bundle without the model, a disposed engine', async (context) => {
    if (!native) context.skip('onnxruntime-node does not load here');
    const { engine } = await runtime!.createEngine('onnxruntime', {});
    try {
      const bundle = await writeFixtureBundle(path.join(dir, 'fixture'));
      await engine.load(bundle);
      const wrong = await engine.run(new Float32Array(5), 1).catch((error: unknown) => error);
      expect(wrong).toBeInstanceOf(io.ShapeMismatchError);
      const noInt8 = await runtime!.createEngine('onnxruntime', { int8: true });
      const missing = await noInt8.engine.load(bundle).catch((error: unknown) => error);
      await noInt8.engine.dispose();
      expect(missing).toBeInstanceOf(io.ModelBundleError);
      expect((missing as Error).message).toBe(
        `${bundle}: has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`brats export ${bundle} --precision int8 --data DATASET\`, or leave --precision at fp32`,
      );
      await fs.writeFile(path.join(bundle, 'model.onnx'), 'not an ONNX file');
      const broken = await engine.load(bundle).catch((error: unknown) => error);
      expect(broken).toBeInstanceOf(runtime!.EngineError);
      expect((broken as Error).message).toMatch(new RegExp(`^engine 'onnxruntime': cannot load ${path.join(bundle, 'model.onnx').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
    } finally {
      await engine.dispose();
    }
    const disposed = await engine.run(new Float32Array(12), 1).catch((error: unknown) => error);
    expect(disposed).toBeInstanceOf(runtime!.EngineError);
  });
});
