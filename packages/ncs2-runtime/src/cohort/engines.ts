/**
 * Model bundles opened once per worker: the first job of a bundle loads its engine, the jobs after it share that
 * engine (engines accept concurrent runs), so a worker that segments a thousand cases loads the model once.
 */
import path from 'node:path';
import { readModelManifest, type ModelManifest } from '@brats/io';
import type { InferenceEngine } from '../engine.js';
import { openBundleEngine } from '../registry.js';

/** Which model and engine a job asks for. */
export interface ModelRequest {
  /** Model bundle folder. */
  bundle: string;
  /** `auto` or a registered engine name. */
  engine: string;
  device?: string;
  /** Threads for one inference (ONNX Runtime intra-op, OpenVINO); absent: the engine's default. */
  threads?: number;
  /** `auto` never tries TensorFlow.js. */
  runtimeOnly?: boolean;
  /** Load the bundle's INT8 model (`files.onnxInt8`); `auto` then never tries TensorFlow.js, which has none. */
  int8?: boolean;
}

/** A bundle loaded into an engine. */
export interface OpenedModel {
  manifest: ModelManifest;
  engine: InferenceEngine;
  /** Why this engine runs (the registry's reason, e.g. `auto: onnxruntime (…) is the preferred engine installed`). */
  reason: string;
}

/** Opens a model for a request; the default reads the manifest and calls `openBundleEngine`. */
export type ModelOpener = (request: ModelRequest) => Promise<OpenedModel>;

/**
 * The default {@link ModelOpener}: the bundle's manifest and `openBundleEngine` (without TensorFlow.js under
 * `runtimeOnly`).
 * @throws {ModelBundleError} for a bad bundle; the registry's errors when no engine can run it.
 */
export async function openModel(request: ModelRequest): Promise<OpenedModel> {
  const manifest = await readModelManifest(request.bundle);
  const selection = await openBundleEngine(
    request.bundle,
    request.engine,
    {
      ...(request.device === undefined ? {} : { device: request.device }),
      ...(request.threads === undefined ? {} : { threads: request.threads }),
      ...(request.int8 === true ? { int8: true } : {}),
    },
    request.runtimeOnly === true || request.int8 === true ? { except: ['tfjs'] } : {},
  );
  return { manifest, engine: selection.engine, reason: selection.reason };
}

function keyOf(request: ModelRequest): string {
  return [path.resolve(request.bundle), request.engine, request.device ?? '', request.threads ?? '', request.runtimeOnly === true ? 'runtime' : 'any', request.int8 === true ? 'int8' : 'fp32'].join('\0');
}

/** Reads the manifest a {@link ModelOpener} will give, without waiting for its engine. */
export type ManifestReader = (request: ModelRequest) => Promise<ModelManifest>;

/** Opened models by bundle path, engine and device. */
export class CohortEngineCache {
  readonly #open: ModelOpener;
  readonly #readManifest: ManifestReader | undefined;
  readonly #models = new Map<string, Promise<OpenedModel>>();
  readonly #disposals: Promise<void>[] = [];

  /**
   * @param open how to open a model (default {@link openModel}); the CLI passes its own to say why an engine runs.
   * @param readManifest how to read the manifest that `open` gives, ahead of the engine (so that a job can
   *   preprocess its case while the engine opens); default: the bundle's brats-model.json with the default opener,
   *   none with another (a job then waits for the opened model's manifest).
   */
  constructor(open: ModelOpener = openModel, readManifest?: ManifestReader) {
    this.#open = open;
    this.#readManifest = readManifest ?? (open === openModel ? (request) => readModelManifest(request.bundle) : undefined);
  }

  /**
   * The manifest of the model for `request`, read without waiting for its engine; undefined when this cache has no
   * way to read it ahead (then it is the opened model's).
   * @throws what the reader throws (a bad bundle).
   */
  manifest(request: ModelRequest): Promise<ModelManifest> | undefined {
    return this.#readManifest?.(request);
  }

  /** Models opened (or being opened). */
  get size(): number {
    return this.#models.size;
  }

  /**
   * The model for `request`, opened on first use and shared afterwards; a failed open is forgotten, so a later
   * job tries again.
   * @throws what the opener throws (a bad bundle, no engine that can run it).
   */
  get(request: ModelRequest): Promise<OpenedModel> {
    const key = keyOf(request);
    let model = this.#models.get(key);
    if (model === undefined) {
      model = this.#open(request);
      this.#models.set(key, model);
      model.catch(() => {
        if (this.#models.get(key) === model) this.#models.delete(key);
      });
    }
    return model;
  }

  /**
   * Frees every opened engine; the cache is empty afterwards. Resolves once every engine this cache ever freed is
   * freed: a second call waits for an earlier one still under way.
   */
  async dispose(): Promise<void> {
    const models = [...this.#models.values()];
    this.#models.clear();
    this.#disposals.push(
      (async () => {
        for (const opened of await Promise.allSettled(models)) {
          if (opened.status === 'fulfilled') await opened.value.engine.dispose();
        }
      })(),
    );
    await Promise.all(this.#disposals);
  }
}
