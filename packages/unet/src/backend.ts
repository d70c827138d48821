/**
 * Choice and initialisation of the TensorFlow.js backend: native TensorFlow (@tensorflow/tfjs-node) when its
 * binary loads, else WebAssembly (with this package's training kernels), else the pure-JavaScript cpu backend.
 * A fallback is always reported with the reason; a backend asked for by name never falls back silently.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as WasmBackendModule from '@tensorflow/tfjs-backend-wasm';
import { BackendError } from './errors.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

/** A backend name, fastest first. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** What the caller asks for: a backend by name, or `auto` for the fastest that loads. */
export type BackendChoice = 'auto' | BackendName;

/** The backends `initBackend` knows, fastest first. */
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** A faster backend that was tried and not used, with the reason. */
export interface BackendFallback {
  readonly name: BackendName;
  readonly why: string;
}

/** The outcome of `initBackend`: the active backend, why it runs, and why faster ones did not. */
export interface BackendSelection {
  readonly name: BackendName;
  readonly reason: string;
  readonly fallbacks: readonly BackendFallback[];
}

const packageRequire = createRequire(import.meta.url);

/** First line of an error's message; native-addon errors carry long multi-line build instructions. */
function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? text).trim();
}

async function loadTensorflow(): Promise<string> {
  // A variable specifier keeps bundlers and the type checker from requiring the optional package.
  const specifier = '@tensorflow/tfjs-node';
  let version = 'unknown version';
  try {
    const module = (await import(specifier)) as { version?: Record<string, string> };
    version = module.version?.['tfjs-node'] ?? version;
  } catch (error) {
    throw new BackendError('tensorflow', `@tensorflow/tfjs-node did not load: ${describeError(error)}`, {
      cause: error,
    });
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new BackendError('tensorflow', 'the tensorflow backend failed to initialise');
  }
  return `native TensorFlow through @tensorflow/tfjs-node ${version}`;
}

/** The folder holding the wasm binaries of @tensorflow/tfjs-backend-wasm, found from this package. */
function locateWasmBinaries(): string {
  let entry: string;
  try {
    entry = packageRequire.resolve('@tensorflow/tfjs-backend-wasm');
  } catch (error) {
    throw new BackendError('wasm', `@tensorflow/tfjs-backend-wasm is not installed: ${describeError(error)}`, {
      cause: error,
    });
  }
  const folder = path.dirname(entry);
  const simd = path.join(folder, 'tfjs-backend-wasm-simd.wasm');
  if (!existsSync(simd)) {
    throw new BackendError('wasm', `the wasm binary ${simd} is missing`);
  }
  return folder;
}

async function loadWasm(): Promise<string> {
  const folder = locateWasmBinaries();
  let wasm: typeof WasmBackendModule;
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (error) {
    throw new BackendError('wasm', `@tensorflow/tfjs-backend-wasm did not load: ${describeError(error)}`, {
      cause: error,
    });
  }
  wasm.setWasmPaths(folder + path.sep);
  // Registered before the backend initialises so that the replaced kernel's setup still runs.
  registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) {
    throw new BackendError('wasm', 'WebAssembly backend failed to initialise (see the warning above)');
  }
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const threads = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
  return (
    `WebAssembly ${wasm.version_wasm}, ${simd ? 'SIMD' : 'no SIMD'}, ` +
    `${threads ? `${wasm.getThreadsCount()} threads` : 'one thread (Node has no wasm threads here)'}, ` +
    'with fast convolution-gradient kernels'
  );
}

async function loadCpu(): Promise<string> {
  if (!(await tf.setBackend('cpu'))) {
    throw new BackendError('cpu', 'the cpu backend failed to initialise');
  }
  return 'pure JavaScript (the slowest backend)';
}

const LOADERS: Record<BackendName, () => Promise<string>> = {
  tensorflow: loadTensorflow,
  wasm: loadWasm,
  cpu: loadCpu,
};

/**
 * Activates a TensorFlow.js backend. `auto` tries tensorflow, then wasm, then cpu, and lists in `fallbacks`
 * why each faster one was not used; a backend named explicitly is the only one tried.
 * @throws BackendError when the named backend (or, for `auto`, every backend) cannot be loaded, or for an
 *   unknown choice (the message lists the known ones).
 */
export async function initBackend(choice: BackendChoice = 'auto'): Promise<BackendSelection> {
  if (choice !== 'auto' && !BACKEND_NAMES.includes(choice)) {
    throw new BackendError(
      String(choice),
      `unknown backend; expected one of auto, ${BACKEND_NAMES.join(', ')}`,
    );
  }
  const candidates = choice === 'auto' ? BACKEND_NAMES : [choice];
  const fallbacks: BackendFallback[] = [];
  for (const name of candidates) {
    try {
      const reason = await LOADERS[name]();
      return { name, reason, fallbacks };
    } catch (error) {
      if (choice !== 'auto') throw error;
      fallbacks.push({ name, why: error instanceof BackendError ? error.reason : describeError(error) });
    }
  }
  throw new BackendError('auto', fallbacks.map((f) => `${f.name}: ${f.why}`).join('; '));
}
