import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ShapeMismatchError, readModelManifest, type ModelManifest } from '@brats/io';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPointwise, writeFixtureBundle } from '../test/bundle-fixture.js';
import { EngineError } from './errors.js';
import { openWebEngine } from './web-engine.js';

// The page's engine, run here on onnxruntime-web's own Node.js build: the same API and WebAssembly runtime.
describe('openWebEngine (ONNX Runtime Web for the browser page)', () => {
  let dir: string;
  let manifest: ModelManifest;
  let model: Uint8Array;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-web-engine-'));
    const bundle = await writeFixtureBundle(path.join(dir, 'bundle'));
    manifest = await readModelManifest(bundle);
    model = new Uint8Array(await fs.readFile(path.join(bundle, 'model.onnx')));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const input = Float32Array.from({ length: 2 * 2 * 3 * 2 }, (_, i) => (i % 5) - 2 + i / 8);

  it('runs a batch on WebAssembly like the hand-computed model and says what runs', async () => {
    const engine = await openWebEngine(ort, model, manifest, { backend: 'wasm', threads: 1 });
    expect(engine.backend).toBe('wasm');
    expect(engine.threads).toBe(1);
    expect(engine.description).toMatch(/^ONNX Runtime Web \d+\.\d+\.\d+, WebAssembly SIMD, 1 thread$/);
    expect(engine.reasons).toEqual(['WebAssembly, as asked', '1 thread, as asked']);
    const output = await engine.run(input, 2);
    const expected = expectedPointwise(input);
    expect(output).toHaveLength(expected.length);
    output.forEach((value, index) => expect(value).toBeCloseTo(expected[index]!, 6));
    await expect(engine.run(input, 3)).rejects.toThrow(ShapeMismatchError);
    await engine.release();
    await expect(engine.run(input, 2)).rejects.toThrow(/the session was disposed/);
  });

  it('auto falls back to WebAssembly where there is no WebGPU, and says why', async () => {
    const engine = await openWebEngine(ort, model, manifest, { threads: 1 });
    expect(engine.backend).toBe('wasm');
    expect(engine.reasons[0]).toBe('WebAssembly: this browser has no WebGPU (navigator.gpu is missing)');
    await engine.release();
  });

  it('refuses WebGPU asked for where there is none, a bad thread count and a bundle without ONNX', async () => {
    await expect(openWebEngine(ort, model, manifest, { backend: 'webgpu' })).rejects.toThrow(
      new EngineError('onnxruntime-web', 'WebGPU was asked for, but this browser has no WebGPU (navigator.gpu is missing)'),
    );
    await expect(openWebEngine(ort, model, manifest, { backend: 'wasm', threads: 0 })).rejects.toThrow(/threads must be a positive integer, found 0/);
    const { onnx: _onnx, ...files } = manifest.files;
    await expect(openWebEngine(ort, model, { ...manifest, files }, { backend: 'wasm' })).rejects.toThrow(/has no ONNX model/);
  });

  it('names the model file when the bytes are no ONNX model', async () => {
    const error = await openWebEngine(ort, new TextEncoder().encode('not a model'), manifest, { backend: 'wasm', threads: 1 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EngineError);
    expect((error as Error).message).toMatch(/^engine 'onnxruntime-web'.*cannot load model\.onnx: /);
  });
});
