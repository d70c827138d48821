/**
 * One native ONNX Runtime session, in a module that imports nothing of @brats at run time: the engine's worker
 * thread (ort-worker.ts) loads this module and onnxruntime-node only. Loading the package's whole module graph there,
 * @brats/io included, took longer than creating the session, and a single scan waited for it. Failures are
 * {@link OrtSessionFailure}s, plain errors with a reason, which each side turns into the package's error classes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as OnnxRuntime from 'onnxruntime-node';
import type { EngineOptions, LayerPerfCounter } from './engine.js';
import { firstLine } from './first-line.js';
import { runInOrder, sessionShapeProblem } from './ort-run.js';
import type { OrtModule, OrtSession, OrtSessionOptions } from './ort-session.js';

/** Registered name of the ONNX Runtime engine. */
export const ONNXRUNTIME_ENGINE = 'onnxruntime';

/** How to install onnxruntime-node where it is missing. */
export const ORT_NODE_REMEDY =
  'Install it with ONNXRUNTIME_NODE_INSTALL=skip set, e.g. `ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node` (for the CLI: `ONNXRUNTIME_NODE_INSTALL=skip npm install -g @brats/cli`): its CPU build ships in the package, the script only fetches GPU libraries';

/** Why `import('onnxruntime-node')` failed, in one line. */
export function ortNodeLoadFailure(error: unknown): string {
  // npm drops an optional dependency whose install script fails (offline, its script downloads GPU libraries).
  const missing = (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(firstLine(error));
  return missing ? 'onnxruntime-node is not installed (optional: npm leaves it out when its install script cannot download)' : `onnxruntime-node did not load: ${firstLine(error)}`;
}

/** Library and version, e.g. `onnxruntime-node 1.30.0`. */
export function ortNodeVersion(ort: typeof OnnxRuntime): string {
  return `onnxruntime-node ${ort.env.versions.node ?? 'unknown'}`;
}

/** The native engine's sessions: CPU execution provider, full graph optimisation, `threads` intra-op threads that do not spin. */
export function nativeSessionOptions(options: EngineOptions): OrtSessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(options.threads === undefined ? {} : { intraOpNumThreads: options.threads }),
    // Idle intra-op threads sleep instead of spinning: the calling process decodes and writes other cases on the
    // same cores while a batch computes (a cohort of 20 scans, --jobs 2: 0.82 against 0.80 scans/s; one scan's
    // forward pass unchanged). It changes no arithmetic.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** A session that failed: `reason` says why, in one line (the engine's name is the caller's to add). */
export class OrtSessionFailure extends Error {
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(reason, options);
    this.name = 'OrtSessionFailure';
  }
}

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string };
}

/**
 * One session of a model with one input and one output, loaded from an ONNX file by either ONNX Runtime package: runs batches (one after another,
 * in the order asked) and, when created with profiling, gives per-node timings.
 */
export class OrtModelSession {
  #session: OrtSession | undefined;
  #profileDir: string | undefined;
  #runs = 0;

  private constructor(
    private readonly ort: OrtModule,
    session: OrtSession,
    profileDir: string | undefined,
  ) {
    this.#session = session;
    this.#profileDir = profileDir;
  }

  /**
   * Creates the session of `file` with `sessionOptions`, profiled (into a temporary folder) when `profile` is set.
   * @throws {OrtSessionFailure} when the runtime cannot load the file, or the model has not one input and one output.
   */
  static async open(ort: OrtModule, file: string, sessionOptions: OrtSessionOptions, profile = false): Promise<OrtModelSession> {
    const options = { ...sessionOptions };
    const profileDir = profile ? await fs.mkdtemp(path.join(os.tmpdir(), 'brats-ort-profile-')) : undefined;
    if (profileDir !== undefined) {
      options.enableProfiling = true;
      options.profileFilePrefix = path.join(profileDir, 'profile');
    }
    let session: OrtSession;
    try {
      session = await ort.InferenceSession.create(file, options);
    } catch (error) {
      if (profileDir !== undefined) await fs.rm(profileDir, { recursive: true, force: true });
      throw new OrtSessionFailure(`cannot load ${file}: ${firstLine(error)}`, { cause: error });
    }
    const problem = sessionShapeProblem(file, session);
    if (problem !== undefined) {
      await session.release();
      if (profileDir !== undefined) await fs.rm(profileDir, { recursive: true, force: true });
      throw new OrtSessionFailure(problem);
    }
    return new OrtModelSession(ort, session, profileDir);
  }

  /**
   * Runs one batch: `input` of `shape` (NHWC, float32) → the model's float32 output.
   * @throws {OrtSessionFailure} after {@link dispose}, or when the model gives no float32 output.
   */
  async run(input: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const session = this.#session;
    if (session === undefined) throw new OrtSessionFailure('the session was disposed');
    const feeds = { [session.inputNames[0]!]: new this.ort.Tensor('float32', input, shape) };
    const results = await runInOrder(session, () => session.run(feeds));
    const output = results[session.outputNames[0]!];
    if (output === undefined || output.type !== 'float32') throw new OrtSessionFailure('the model gave no float32 output');
    this.#runs += 1;
    return output.data as Float32Array;
  }

  /** Mean time of each node per run, from the runtime's profile; undefined without profiling or before any run. */
  async perfCounters(): Promise<LayerPerfCounter[] | undefined> {
    if (this.#profileDir === undefined || this.#session === undefined || this.#runs === 0) return undefined;
    // ONNX Runtime writes its per-node trace (Chrome trace format) only when profiling ends.
    this.#session.endProfiling();
    const files = (await fs.readdir(this.#profileDir)).filter((name) => name.endsWith('.json'));
    const totals = new Map<string, { type: string; microseconds: number }>();
    for (const file of files) {
      const events = JSON.parse(await fs.readFile(path.join(this.#profileDir, file), 'utf8')) as ProfileEvent[];
      for (const event of events) {
        if (event.cat !== 'Node' || event.name?.endsWith('_kernel_time') !== true) continue;
        const name = event.name.slice(0, -'_kernel_time'.length);
        const entry = totals.get(name) ?? { type: event.args?.op_name ?? '', microseconds: 0 };
        entry.microseconds += event.dur ?? 0;
        totals.set(name, entry);
      }
    }
    return [...totals].map(([name, { type, microseconds }]) => ({ name, type, realTimeMs: microseconds / 1000 / this.#runs, runs: this.#runs }));
  }

  /** Frees the session (and its profile). */
  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.release();
    if (this.#profileDir !== undefined) await fs.rm(this.#profileDir, { recursive: true, force: true });
    this.#profileDir = undefined;
  }
}
