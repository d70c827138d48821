/**
 * Engines by name. OpenVINO, ONNX Runtime (native) and ONNX Runtime (WebAssembly) are registered from the start; others can be added with
 * {@link registerEngine}. `auto` picks the highest-priority engine that can run here and says why.
 */
import { ArgumentError } from '@brats/io';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine } from './engine.js';
import { ModelBundleError } from '@brats/io';
import { EngineUnavailableError, UnknownEngineError, firstLine } from './errors.js';
import { ONNXRUNTIME_ENGINE, onnxRuntimeFactory } from './onnxruntime-engine.js';
import { ONNXRUNTIME_WEB_ENGINE, onnxRuntimeWebFactory } from './onnxruntime-web-engine.js';
import { OPENVINO_ENGINE, openvinoFactory } from './openvino-engine.js';

/** The name that asks for the best engine that can run here. */
export const AUTO_ENGINE = 'auto';

interface Registration {
  readonly factory: EngineFactory;
  readonly priority: number;
}

const registry = new Map<string, Registration>([
  [OPENVINO_ENGINE, { factory: openvinoFactory, priority: 20 }],
  [ONNXRUNTIME_ENGINE, { factory: onnxRuntimeFactory, priority: 10 }],
  // Always present (no install script, no native binding): what `auto` runs where neither of the above installed.
  [ONNXRUNTIME_WEB_ENGINE, { factory: onnxRuntimeWebFactory, priority: 5 }],
]);

/**
 * Registers (or replaces) an engine factory under `name`; `auto` tries higher priorities first.
 * @throws {ArgumentError} for an empty name, the reserved name `auto`, or a non-finite priority.
 */
export function registerEngine(name: string, factory: EngineFactory, priority: number): void {
  if (name.length === 0 || name === AUTO_ENGINE) throw new ArgumentError('registerEngine', 'name', `must be a non-empty name other than '${AUTO_ENGINE}', found '${name}'`);
  if (!Number.isFinite(priority)) throw new ArgumentError('registerEngine', 'priority', `must be a finite number, found ${priority}`);
  registry.set(name, { factory, priority });
}

/** Removes the engine `name` from the registry; returns whether it was registered. */
export function unregisterEngine(name: string): boolean {
  return registry.delete(name);
}

/** Registered engine names, highest priority first. */
export function listEngines(): string[] {
  return [...registry].sort((a, b) => b[1].priority - a[1].priority).map(([name]) => name);
}

/** Probes every registered engine (installed, version, devices), highest priority first. */
export async function probeEngines(): Promise<EngineProbe[]> {
  return Promise.all(listEngines().map((name) => registry.get(name)!.factory.probe()));
}

/** An engine that could not be used by `auto`, with the reason. */
export interface EngineFallback {
  readonly name: string;
  readonly reason: string;
}

/** The engine created by {@link createEngine}, why it was chosen, and which engines were passed over. */
export interface EngineSelection {
  readonly engine: InferenceEngine;
  readonly reason: string;
  readonly fallbacks: readonly EngineFallback[];
}

/**
 * Creates the engine `name` (or, for `auto`, the highest-priority one that is installed) with `options`.
 * A named engine never falls back: if it cannot run, this throws.
 * @throws {UnknownEngineError} for a name no one registered (the message lists the known ones).
 * @throws {EngineUnavailableError} when the named engine, or for `auto` every engine, cannot run here.
 * @throws {EngineError} when the engine rejects an option (e.g. a device it does not have).
 */
export async function createEngine(name: string, options: EngineOptions = {}): Promise<EngineSelection> {
  if (name !== AUTO_ENGINE) {
    const registration = registry.get(name);
    if (registration === undefined) throw new UnknownEngineError(name, [AUTO_ENGINE, ...listEngines()]);
    return { engine: await registration.factory.create(options), reason: `engine '${name}' was asked for`, fallbacks: [] };
  }
  const fallbacks: EngineFallback[] = [];
  for (const candidate of listEngines()) {
    try {
      const engine = await registry.get(candidate)!.factory.create(options);
      const reason =
        fallbacks.length === 0
          ? `auto: ${candidate} (${engine.version}) is the preferred engine installed`
          : `auto: ${candidate} (${engine.version}) because ${fallbacks.map((fallback) => `${fallback.name} is unavailable: ${fallback.reason}`).join('; ')}`;
      return { engine, reason, fallbacks };
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
      fallbacks.push({ name: candidate, reason: error.reason });
    }
  }
  throw new EngineUnavailableError(AUTO_ENGINE, `no engine can run here (${fallbacks.map((f) => `${f.name}: ${f.reason}`).join('; ')})`, 'Install onnxruntime-node or openvino-node, or reinstall @brats/ncs2-runtime (its onnxruntime-web runs everywhere)');
}

/**
 * Creates an engine and loads `bundle` into it. A named engine must run and load it. `auto` tries the engines
 * from the highest priority down and takes the first that is installed and can read one of the bundle's model
 * files (so a bundle without model.onnx falls through to an engine registered for TensorFlow.js models);
 * `selection.except` names engines `auto` must not try (they are not even loaded).
 * @throws {UnknownEngineError} for an unregistered name; {@link EngineUnavailableError} when nothing can run it;
 *   {@link ModelBundleError} when a named engine finds no file it reads in the bundle.
 */
export async function openBundleEngine(
  bundle: string,
  name: string,
  options: EngineOptions = {},
  selection: { readonly except?: readonly string[] } = {},
): Promise<EngineSelection> {
  options = { ...options, bundle };
  if (name !== AUTO_ENGINE) {
    const selection = await createEngine(name, options);
    try {
      await selection.engine.load(bundle);
    } catch (error) {
      await selection.engine.dispose();
      throw error;
    }
    return selection;
  }
  const fallbacks: EngineFallback[] = [];
  for (const candidate of listEngines().filter((engineName) => !(selection.except ?? []).includes(engineName))) {
    let engine: InferenceEngine;
    try {
      engine = await registry.get(candidate)!.factory.create(options);
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
      fallbacks.push({ name: candidate, reason: error.reason });
      continue;
    }
    try {
      await engine.load(bundle);
    } catch (error) {
      await engine.dispose();
      if (!(error instanceof ModelBundleError)) throw error;
      fallbacks.push({ name: candidate, reason: error.reason });
      continue;
    }
    const reason =
      fallbacks.length === 0
        ? `auto: ${candidate} (${engine.version}) is the preferred engine installed`
        : `auto: ${candidate} (${engine.version}), because ${fallbacks.map((fallback) => `${fallback.name}: ${fallback.reason}`).join('; ')}`;
    return { engine, reason, fallbacks };
  }
  throw new EngineUnavailableError(AUTO_ENGINE, `no engine can run ${bundle} here (${fallbacks.map((f) => `${f.name}: ${f.reason}`).join('; ')})`, 'Install onnxruntime-node or openvino-node, reinstall @brats/ncs2-runtime (its onnxruntime-web runs everywhere), or run brats export on the bundle');
}

/**
 * A factory whose code loads only when an engine is first created or probed, so that registering an engine
 * costs nothing for the runs that never use it (the CLI registers TensorFlow.js this way). A module that cannot
 * be loaded (not installed) makes the engine unavailable, with `remedy`, instead of failing the caller.
 * @example registerEngine('tfjs', lazyEngineFactory('tfjs', async () => (await import('@brats/unet')).tfjsEngineFactory, 'Install @brats/unet'), 0);
 */
export function lazyEngineFactory(name: string, load: () => Promise<EngineFactory>, remedy: string): EngineFactory {
  let loaded: Promise<EngineFactory> | undefined;
  const factory = async (): Promise<EngineFactory> => {
    loaded ??= load();
    try {
      return await loaded;
    } catch (error) {
      loaded = undefined;
      throw new EngineUnavailableError(name, `its module did not load: ${firstLine(error)}`, remedy, { cause: error });
    }
  };
  return {
    async create(options: EngineOptions): Promise<InferenceEngine> {
      return (await factory()).create(options);
    },
    async probe(): Promise<EngineProbe> {
      try {
        return await (await factory()).probe();
      } catch (error) {
        if (!(error instanceof EngineUnavailableError)) throw error;
        return { name, installed: false, devices: [], reason: error.reason, remedy };
      }
    },
  };
}
