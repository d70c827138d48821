import { ArgumentError, ModelBundleError } from '@brats/io';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineFactory, InferenceEngine } from './engine.js';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFixtureBundle } from '../test/bundle-fixture.js';
import { EngineUnavailableError, UnknownEngineError, createEngine, lazyEngineFactory, listEngines, onnxRuntimeFactory, openBundleEngine, registerEngine, unregisterEngine } from './index.js';

function fakeFactory(name: string, available: boolean): EngineFactory {
  const engine: InferenceEngine = {
    name,
    device: 'CPU',
    version: `${name} 1.0`,
    layout: undefined,
    load: async () => {
      throw new Error('not used');
    },
    run: async () => new Float32Array(),
    perfCounters: async () => undefined,
    dispose: async () => undefined,
  };
  return {
    create: async () => {
      if (!available) throw new EngineUnavailableError(name, `${name} is missing`, `install ${name}`);
      return engine;
    },
    probe: async () => ({ name, installed: available, devices: available ? ['CPU'] : [] }),
  };
}

afterEach(() => {
  unregisterEngine('fast');
  unregisterEngine('broken');
  unregisterEngine('lazy');
});

describe('engine registry', () => {
  it('lists the built-in engines, OpenVINO before native ONNX Runtime before its WebAssembly build', () => {
    expect(listEngines()).toEqual(['openvino', 'onnxruntime', 'onnxruntime-web']);
  });

  it('names the known engines for an unknown one', async () => {
    const error = await createEngine('tensorrt').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnknownEngineError);
    expect((error as Error).message).toBe("unknown inference engine 'tensorrt'; known engines: auto, openvino, onnxruntime, onnxruntime-web");
    expect((error as UnknownEngineError).known).toEqual(['auto', 'openvino', 'onnxruntime', 'onnxruntime-web']);
  });

  it('auto takes the highest-priority engine that is installed and says which it passed over', async () => {
    registerEngine('broken', fakeFactory('broken', false), 100);
    registerEngine('fast', fakeFactory('fast', true), 50);
    expect(listEngines()).toEqual(['broken', 'fast', 'openvino', 'onnxruntime', 'onnxruntime-web']);
    const selection = await createEngine('auto');
    expect(selection.engine.name).toBe('fast');
    expect(selection.fallbacks).toEqual([{ name: 'broken', reason: 'broken is missing' }]);
    expect(selection.reason).toBe('auto: fast (fast 1.0) because broken is unavailable: broken is missing');
  });

  it('never falls back from an engine asked for by name', async () => {
    registerEngine('broken', fakeFactory('broken', false), 100);
    await expect(createEngine('broken')).rejects.toThrow(EngineUnavailableError);
  });

  it.each([
    ['', 1],
    ['auto', 1],
    ['x', Number.NaN],
  ])('rejects registering %j with priority %d', (name, priority) => {
    expect(() => registerEngine(name, fakeFactory('x', true), priority)).toThrow(ArgumentError);
  });
});

describe('lazyEngineFactory', () => {
  it('loads its module only when an engine is created, once', async () => {
    let loads = 0;
    registerEngine('lazy', lazyEngineFactory('lazy', async () => (loads++, fakeFactory('lazy', true)), 'install lazy'), 100);
    expect(loads).toBe(0);
    expect(listEngines()[0]).toBe('lazy');
    expect(loads).toBe(0);
    expect((await createEngine('auto')).engine.name).toBe('lazy');
    await createEngine('lazy');
    expect(loads).toBe(1);
  });

  it('makes a module that does not load an unavailable engine, which auto passes over', async () => {
    const missing = lazyEngineFactory('lazy', () => import('@brats/no-such-package' as string) as Promise<EngineFactory>, 'Install @brats/no-such-package');
    registerEngine('lazy', missing, 100);
    const selection = await createEngine('auto').catch((error: unknown) => error);
    // auto falls through to the built-in engines; whichever of them runs here, lazy is listed as passed over.
    if (selection instanceof EngineUnavailableError) expect(selection.message).toMatch(/lazy: its module did not load: Cannot find (package|module) '@brats\/no-such-package'/);
    else expect((selection as { fallbacks: { name: string; reason: string }[] }).fallbacks[0]!.reason).toMatch(/^its module did not load: Cannot find (package|module) '@brats\/no-such-package'/);
    const error = await createEngine('lazy').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EngineUnavailableError);
    expect((error as EngineUnavailableError).remedy).toBe('Install @brats/no-such-package');
    const probe = await missing.probe();
    expect(probe).toMatchObject({ name: 'lazy', installed: false, devices: [], remedy: 'Install @brats/no-such-package' });
  });
});

describe('openBundleEngine', () => {
  const loaded: string[] = [];
  function bundleFactory(name: string, readsBundle: boolean): EngineFactory {
    return {
      create: async () => ({
        name,
        device: 'CPU',
        version: `${name} 2.0`,
        layout: undefined,
        load: async (bundle: string) => {
          if (!readsBundle) throw new ModelBundleError(bundle, `has no file ${name} reads`);
          loaded.push(name);
          return { layout: 'NHWC', input: [4, 4, 1], outputChannels: 1, file: `${bundle}/m`, format: 'onnx' };
        },
        run: async () => new Float32Array(),
        perfCounters: async () => undefined,
        dispose: async () => undefined,
      }),
      probe: async () => ({ name, installed: true, devices: ['CPU'] }),
    };
  }

  afterEach(() => {
    unregisterEngine('reads-nothing');
    unregisterEngine('reads-all');
    loaded.length = 0;
  });

  it('auto skips engines that cannot read the bundle and says why', async () => {
    registerEngine('reads-nothing', bundleFactory('reads-nothing', false), 100);
    registerEngine('reads-all', bundleFactory('reads-all', true), 99);
    const selection = await openBundleEngine('/models/x', 'auto');
    expect(selection.engine.name).toBe('reads-all');
    expect(loaded).toEqual(['reads-all']);
    expect(selection.fallbacks[0]).toEqual({ name: 'reads-nothing', reason: 'has no file reads-nothing reads' });
    expect(selection.reason).toContain('because reads-nothing: has no file reads-nothing reads');
  });

  it('a named engine that cannot read the bundle is an error, not a fallback', async () => {
    registerEngine('reads-nothing', bundleFactory('reads-nothing', false), 100);
    await expect(openBundleEngine('/models/x', 'reads-nothing')).rejects.toBeInstanceOf(ModelBundleError);
  });
});

describe('without the native ONNX Runtime', () => {
  afterEach(() => {
    registerEngine('onnxruntime', onnxRuntimeFactory, 10);
  });

  it('auto runs the bundle on onnxruntime-web and says why the native engine was passed over', async () => {
    // As where onnxruntime-node's install failed: its factory reports it unavailable.
    registerEngine('onnxruntime', fakeFactory('onnxruntime', false), 10);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-registry-'));
    try {
      const bundle = await writeFixtureBundle(path.join(dir, 'bundle'));
      const selection = await openBundleEngine(bundle, 'auto');
      expect(selection.engine.name).toBe('onnxruntime-web');
      expect(selection.fallbacks.map((fallback) => fallback.name)).toEqual(expect.arrayContaining(['onnxruntime']));
      expect(selection.reason).toMatch(/^auto: onnxruntime-web \(onnxruntime-web [\d.]+ \(wasm, \d+ threads?\)\), because .*onnxruntime: onnxruntime is missing/);
      expect((await selection.engine.run(new Float32Array(12), 1)).length).toBe(6);
      await selection.engine.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
