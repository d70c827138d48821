/**
 * ONNX Runtime Web in a page: a session over the bundle's ONNX bytes, on WebGPU where the browser has an adapter
 * and on WebAssembly (SIMD, threads where the page is cross-origin isolated) otherwise, saying which runs and why.
 * No Node.js module: `@brats/ncs2-runtime/browser` serves it to the viewer's "segment in this browser" mode, and
 * the result is a SliceRunner for `segmentLoadedCase`, the same path as the CLI's.
 */
import type { ModelManifest } from '@brats/io/browser';
import type * as OnnxRuntimeWeb from 'onnxruntime-web';
import type { ModelLayout } from './engine.js';
import { EngineError, firstLine } from './errors.js';
import { checkOrtSession, runOrtSession, type OrtSession, type OrtSessionOptions } from './ort-session.js';
import type { SliceRunner } from './segment/segment-core.js';

/** Where ONNX Runtime Web runs: the GPU through WebGPU, or the CPU through WebAssembly. */
export type WebBackend = 'webgpu' | 'wasm';

/** Options of {@link openWebEngine}. */
export interface WebEngineOptions {
  /** `auto` (default): WebGPU where the browser gives an adapter, else WebAssembly. */
  backend?: WebBackend | 'auto';
  /**
   * WebAssembly threads. Default: the logical cores (at most 4) where shared memory exists (a cross-origin isolated
   * page), else 1. Fixed for the page once the runtime starts.
   */
  threads?: number;
  /**
   * Run the WebAssembly runtime in a worker so the page keeps drawing (default true where `document` exists).
   * Not used with WebGPU, which ONNX Runtime Web does not proxy.
   */
  proxy?: boolean;
}

/** A loaded model in the page: batches of slices in, probabilities out. */
export interface WebEngine extends SliceRunner {
  readonly backend: WebBackend;
  /** WebAssembly threads (1 on WebGPU, where the GPU does the work). */
  readonly threads: number;
  /** One line for the page: library, version, backend, threads. */
  readonly description: string;
  /** Why this backend and thread count, one line each. */
  readonly reasons: readonly string[];
  release(): Promise<void>;
}

/** The parts of onnxruntime-web the engine uses. */
export type OrtWebModule = Pick<typeof OnnxRuntimeWeb, 'InferenceSession' | 'Tensor' | 'env'>;

interface GpuNavigator {
  gpu?: { requestAdapter(): Promise<unknown> };
  hardwareConcurrency?: number;
}

const WEB_ENGINE = 'onnxruntime-web';

function browserNavigator(): GpuNavigator | undefined {
  return (globalThis as { navigator?: GpuNavigator }).navigator;
}

/** Whether WebGPU gives an adapter here, and why not when it does not. */
async function webGpuAdapter(): Promise<{ ok: boolean; reason: string }> {
  const gpu = browserNavigator()?.gpu;
  if (gpu === undefined) return { ok: false, reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? { ok: true, reason: 'WebGPU gave an adapter' } : { ok: false, reason: 'WebGPU gave no adapter (no usable GPU)' };
  } catch (error) {
    return { ok: false, reason: `WebGPU failed: ${firstLine(error)}` };
  }
}

/** Threads the WebAssembly runtime may use here, and why. */
function wasmThreads(asked: number | undefined): { threads: number; reason: string } {
  if (asked !== undefined) {
    if (!Number.isInteger(asked) || asked < 1) throw new EngineError(WEB_ENGINE, `threads must be a positive integer, found ${asked}`);
    return { threads: asked, reason: `${asked} thread${asked === 1 ? '' : 's'}, as asked` };
  }
  // Threads share one wasm memory: a SharedArrayBuffer, which a page only has when it is cross-origin isolated.
  if (typeof SharedArrayBuffer !== 'function') {
    return { threads: 1, reason: '1 thread: the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for threads)' };
  }
  const cores = Math.max(1, Math.min(4, browserNavigator()?.hardwareConcurrency ?? 1));
  return { threads: cores, reason: `${cores} thread${cores === 1 ? '' : 's'}: shared memory is available and the machine has ${browserNavigator()?.hardwareConcurrency ?? 1} logical cores (at most 4 are used)` };
}

function layoutOf(manifest: ModelManifest): ModelLayout {
  return { layout: 'NHWC', input: manifest.model.inputShape, outputChannels: manifest.model.outputChannels, file: manifest.files.onnx ?? 'model.onnx', format: 'onnx' };
}

/**
 * Opens the bundle's ONNX model (its bytes, fetched by the page) on ONNX Runtime Web.
 * @param ort the onnxruntime-web module the page loaded (its build decides whether WebGPU exists at all).
 * @throws {EngineError} when the bundle has no ONNX model, the session cannot be created, or WebGPU is asked
 *   for and is not there.
 */
export async function openWebEngine(ort: OrtWebModule, model: Uint8Array, manifest: ModelManifest, options: WebEngineOptions = {}): Promise<WebEngine> {
  if (manifest.files.onnx === undefined) throw new EngineError(WEB_ENGINE, 'the model bundle has no ONNX model (files.onnx in brats-model.json)');
  const layout = layoutOf(manifest);
  const reasons: string[] = [];
  const asked = options.backend ?? 'auto';
  let backend: WebBackend = 'wasm';
  if (asked !== 'wasm') {
    const gpu = await webGpuAdapter();
    if (gpu.ok) backend = 'webgpu';
    else if (asked === 'webgpu') throw new EngineError(WEB_ENGINE, `WebGPU was asked for, but ${gpu.reason}`);
    reasons.push(gpu.ok ? 'WebGPU: the browser gave an adapter' : `WebAssembly: ${gpu.reason}`);
  } else {
    reasons.push('WebAssembly, as asked');
  }
  const { threads, reason } = wasmThreads(options.threads);
  ort.env.wasm.numThreads = threads;
  // A worker keeps the page drawing its progress bar while a batch runs (WebGPU is not proxied).
  const proxy = backend === 'wasm' && (options.proxy ?? typeof (globalThis as { document?: unknown }).document !== 'undefined');
  ort.env.wasm.proxy = proxy;
  if (backend === 'wasm') reasons.push(`${reason}${proxy ? ', in a worker' : ''}`);

  const create = (providers: WebBackend[]): Promise<OrtSession> => {
    const sessionOptions: OrtSessionOptions = { executionProviders: providers, graphOptimizationLevel: 'all' };
    return ort.InferenceSession.create(model, sessionOptions);
  };
  let session: OrtSession;
  try {
    session = await create([backend]);
  } catch (error) {
    if (backend !== 'webgpu' || asked === 'webgpu') throw new EngineError(WEB_ENGINE, `cannot load ${layout.file}: ${firstLine(error)}`, { cause: error });
    // WebGPU said yes but the session failed (an operator or a limit of this GPU): the CPU still runs it.
    reasons.push(`WebGPU could not load the model (${firstLine(error)}); WebAssembly runs instead, ${reason}`);
    backend = 'wasm';
    try {
      session = await create(['wasm']);
    } catch (wasmError) {
      throw new EngineError(WEB_ENGINE, `cannot load ${layout.file}: ${firstLine(wasmError)}`, { cause: wasmError });
    }
  }
  checkOrtSession(WEB_ENGINE, layout.file, session);
  const version = ort.env.versions.web ?? 'unknown';
  const usedThreads = backend === 'wasm' ? threads : 1;
  const description =
    backend === 'webgpu' ? `ONNX Runtime Web ${version}, WebGPU` : `ONNX Runtime Web ${version}, WebAssembly SIMD, ${threads} thread${threads === 1 ? '' : 's'}`;
  let current: OrtSession | undefined = session;
  return {
    backend,
    threads: usedThreads,
    description,
    reasons,
    // In a worker, ONNX Runtime Web transfers the input's buffer (it is detached afterwards), while the caller
    // still reads it (the flips are made from it): the worker gets a copy.
    run: (input, batch) => runOrtSession(ort, current, WEB_ENGINE, layout, proxy ? input.slice() : input, batch),
    async release() {
      await current?.release();
      current = undefined;
    },
  };
}
