import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend, type BackendChoice } from './backend.js';
import { BackendError } from './errors.js';

/** Whether the native binding loads here, checked independently of initBackend. */
async function nativeLoads(): Promise<boolean> {
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}

const native = await nativeLoads();

describe('initBackend', () => {
  it('auto picks the fastest backend that loads and says why faster ones did not', async () => {
    const selection = await initBackend('auto');
    expect(tf.getBackend()).toBe(selection.name);
    if (native) {
      expect(selection.name).toBe('tensorflow');
      expect(selection.fallbacks).toEqual([]);
    } else {
      expect(selection.name).toBe('wasm');
      expect(selection.fallbacks.map((f) => f.name)).toEqual(['tensorflow']);
      expect(selection.fallbacks[0]!.why).toMatch(/tfjs-node/);
      expect(selection.fallbacks[0]!.why).not.toMatch(/\n/);
    }
  });

  it.skipIf(native)('a forced tensorflow backend that cannot load throws BackendError, not a fallback', async () => {
    const before = tf.getBackend();
    const error = await initBackend('tensorflow').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).backend).toBe('tensorflow');
    expect((error as BackendError).code).toBe('BACKEND_UNAVAILABLE');
    expect(tf.getBackend()).toBe(before);
  });

  it('wasm runs with SIMD and reports one thread', async () => {
    const selection = await initBackend('wasm');
    expect(selection).toMatchObject({ name: 'wasm', fallbacks: [] });
    expect(tf.getBackend()).toBe('wasm');
    expect(selection.reason).toMatch(/SIMD/);
    expect(selection.reason).toMatch(/one thread/);
    // The training kernels are in place: the shipped backend has no Conv2DBackpropFilter.
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('cpu can be forced', async () => {
    const selection = await initBackend('cpu');
    expect(selection.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('an unknown name is a BackendError listing the known ones', async () => {
    const error = await initBackend('webgpu' as BackendChoice).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).message).toMatch(/auto, tensorflow, wasm, cpu/);
  });
});
