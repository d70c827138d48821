/**
 * The WebAssembly ONNX Runtime engine (onnxruntime-web's wasm build, SIMD and threads). It needs no install script
 * and no native binding, so it is always present: `auto` takes it where neither OpenVINO nor the native
 * onnxruntime-node is installed, and the same build runs in a browser.
 */
import os from 'node:os';
import type * as OnnxRuntimeWeb from 'onnxruntime-web';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine } from './engine.js';
import { EngineError, EngineUnavailableError, firstLine } from './errors.js';
import { OrtSessionEngine, checkOrtOptions, type OrtFlavour } from './onnxruntime-engine.js';

/** Registered name of the WebAssembly ONNX Runtime engine. */
export const ONNXRUNTIME_WEB_ENGINE = 'onnxruntime-web';

const REMEDY = 'Reinstall @brats/ncs2-runtime (onnxruntime-web is one of its dependencies)';

type WebModule = typeof OnnxRuntimeWeb;
let webModule: Promise<WebModule> | undefined;
/** The thread count the wasm runtime was started with: onnxruntime-web fixes it for the process at its first session. */
let startedThreads: number | undefined;

async function loadWeb(): Promise<WebModule> {
  webModule ??= import('onnxruntime-web');
  try {
    return await webModule;
  } catch (error) {
    webModule = undefined;
    throw new EngineUnavailableError(ONNXRUNTIME_WEB_ENGINE, `onnxruntime-web did not load: ${firstLine(error)}`, REMEDY, { cause: error });
  }
}

function webVersion(ort: WebModule): string {
  return `onnxruntime-web ${ort.env.versions.web ?? 'unknown'}`;
}

/**
 * Sets the wasm thread count before the runtime starts (all the cores unless `threads` is given), and refuses a
 * different count afterwards instead of silently running with the old one.
 */
function startThreads(ort: WebModule, threads: number | undefined): number {
  const wanted = threads ?? os.availableParallelism();
  if (startedThreads === undefined) {
    ort.env.wasm.numThreads = wanted;
    startedThreads = wanted;
  } else if (threads !== undefined && threads !== startedThreads) {
    throw new EngineError(
      ONNXRUNTIME_WEB_ENGINE,
      `threads ${threads} asked for, but the WebAssembly runtime of this process already runs ${startedThreads} (onnxruntime-web fixes its thread count when its first session starts)`,
    );
  }
  return startedThreads;
}

/** Factory of the WebAssembly ONNX Runtime engine: CPU only, no per-layer timings. */
export const onnxRuntimeWebFactory: EngineFactory = {
  async create(options: EngineOptions): Promise<InferenceEngine> {
    checkOrtOptions(ONNXRUNTIME_WEB_ENGINE, 'onnxruntime-web', options);
    const ort = await loadWeb();
    const threads = startThreads(ort, options.threads);
    const flavour: OrtFlavour = {
      name: ONNXRUNTIME_WEB_ENGINE,
      device: 'CPU',
      version: `${webVersion(ort)} (wasm, ${threads} thread${threads === 1 ? '' : 's'})`,
      profiling: false,
      sessionOptions: () => ({ executionProviders: ['wasm'], graphOptimizationLevel: 'all' }),
    };
    return new OrtSessionEngine(ort, flavour, options);
  },
  async probe(): Promise<EngineProbe> {
    try {
      return { name: ONNXRUNTIME_WEB_ENGINE, installed: true, version: `${webVersion(await loadWeb())} (wasm)`, devices: ['CPU'] };
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
      return { name: ONNXRUNTIME_WEB_ENGINE, installed: false, devices: [], reason: error.reason, remedy: error.remedy };
    }
  },
};
