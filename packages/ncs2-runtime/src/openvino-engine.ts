/**
 * OpenVINO engine (openvino-node): reads a bundle's IR (FP32/FP16) or its ONNX file, compiles it for CPU, GPU,
 * NPU or AUTO with a LATENCY or THROUGHPUT hint, runs batches through a pool of async infer requests, and converts
 * ONNX to IR. openvino-node is optional: it is imported at run time and, when absent, the engine says so and how
 * to install it.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ModelBundleError, bundlePath, readModelManifest, temporaryPathFor, writeModelManifest, type ModelManifest } from '@brats/io';
import type { EngineFactory, EngineOptions, EngineProbe, InferenceEngine, IrPrecision, LayerPerfCounter, ModelLayout } from './engine.js';
import { EngineError, EngineUnavailableError, firstLine } from './errors.js';
import { onnxModelFile } from './onnx-bundle.js';
import type { OpenvinoAddon, OpenvinoCompiledModel, OpenvinoCore, OpenvinoInferRequest } from './openvino-api.js';
import { RequestPool } from './request-pool.js';
import { checkBatch } from './shape.js';

/** Registered name of the OpenVINO engine. */
export const OPENVINO_ENGINE = 'openvino';

/** How to install openvino-node, shown whenever it is missing. */
export const OPENVINO_REMEDY =
  'Install it with `pnpm add openvino-node` on Node.js >= 21 with internet access (it downloads the OpenVINO runtime during install), or set BRATS_OPENVINO_MODULE to the path of an installed openvino-node';

/** Why MYRIAD (the Neural Compute Stick 2) cannot run here, and what to do instead. */
export const MYRIAD_EXPLANATION =
  'the MYRIAD plugin for the Intel Neural Compute Stick 2 was removed in OpenVINO 2023.0; 2022.3 LTS is the last runtime that drives the stick, and openvino-node has no release that old. Convert the bundle to IR (FP16) with this package and run openvino/FP16/model.xml with the OpenVINO 2022.3 LTS runtime (e.g. benchmark_app -d MYRIAD -m openvino/FP16/model.xml)';

/** Devices the OpenVINO engine accepts (a plugin name, an enumerated GPU, or a virtual device with its list). */
const DEVICE_PATTERN = /^(CPU|GPU(\.\d+)?|NPU|MYRIAD|AUTO(:[A-Z0-9.,]+)?|HETERO:[A-Z0-9.,]+|MULTI:[A-Z0-9.,]+)$/;

let addonPromise: Promise<OpenvinoAddon> | undefined;

/**
 * Imports openvino-node (or the module named by BRATS_OPENVINO_MODULE) once and returns its addon.
 * @throws {EngineUnavailableError} when it is not installed or its native binding does not load.
 */
export async function loadOpenvino(): Promise<OpenvinoAddon> {
  // A variable specifier keeps bundlers and the type checker from requiring the optional package.
  const specifier = process.env.BRATS_OPENVINO_MODULE ?? 'openvino-node';
  addonPromise ??= (async () => {
    const module = (await import(specifier)) as { addon?: OpenvinoAddon; default?: { addon?: OpenvinoAddon } };
    const addon = module.addon ?? module.default?.addon;
    if (addon === undefined) throw new Error(`${specifier} has no 'addon' export`);
    return addon;
  })();
  try {
    return await addonPromise;
  } catch (error) {
    addonPromise = undefined;
    // npm leaves the optional openvino-node out when its download fails (offline, or Node < 21 for recent versions).
    const missing = (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' && firstLine(error).includes(`'${specifier}'`);
    const reason = missing ? 'openvino-node is not installed (optional: npm leaves it out when its download fails)' : `openvino-node did not load (${firstLine(error)})`;
    throw new EngineUnavailableError(OPENVINO_ENGINE, reason, OPENVINO_REMEDY, { cause: error });
  }
}

/** The OpenVINO version string of a core, e.g. `2026.4.0-…`. */
function describeVersion(core: OpenvinoCore): string {
  const versions = core.getVersions('CPU');
  const cpu = Object.values(versions)[0];
  return `openvino-node ${cpu?.buildNumber ?? 'unknown'}`;
}

/** Where {@link convertBundleToIr} writes the IR of a precision, relative to the bundle. */
function irPathsOf(precision: IrPrecision): { xml: string; bin: string } {
  return { xml: `openvino/${precision}/model.xml`, bin: `openvino/${precision}/model.bin` };
}

/** The `brats export` command line that writes the IR of `precision` into `bundle`. */
function exportCommandFor(bundle: string, precision: IrPrecision): string {
  return `brats export ${bundle} --format openvino${precision === 'FP16' ? ' --fp16' : ''}`;
}

/**
 * The IR files that the manifest lists for `precision`, checked on disk.
 * @throws {ModelBundleError} when either is missing (the manifest outlived them).
 */
function irChoice(bundle: string, precision: IrPrecision, files: { xml: string; bin: string }): { file: string; weights: string; format: 'openvino-ir' } {
  for (const file of [files.xml, files.bin]) {
    if (!existsSync(bundlePath(bundle, file))) {
      throw new ModelBundleError(bundle, `brats-model.json lists the ${precision} IR file ${file}, which is missing; write it again with \`${exportCommandFor(bundle, precision)}\``);
    }
  }
  return { file: bundlePath(bundle, files.xml), weights: bundlePath(bundle, files.bin), format: 'openvino-ir' };
}

/**
 * The bundle's INT8 model (`files.onnxInt8`, a QDQ ONNX graph that OpenVINO reads as it is).
 * @throws {ModelBundleError} when an IR precision is asked as well, or the bundle has no INT8 model.
 */
function int8ModelFile(bundle: string, manifest: ModelManifest, precision: IrPrecision | undefined): { file: string; weights?: string; format: ModelLayout['format'] } {
  if (precision !== undefined) throw new ModelBundleError(bundle, `INT8 and the ${precision} IR are two different models; ask for one of them`);
  // OpenVINO reads the QDQ ONNX graph itself and runs its quantised operations in low precision.
  return { file: onnxModelFile(bundle, manifest, { int8: true }), format: 'onnx' };
}

/**
 * Picks the file to load: the IR of the asked precision; with no precision asked, the FP32 IR, else the ONNX file.
 * An asked precision is never replaced by another file: an FP16 request that loaded FP32 weights would give
 * FP32 results and timings under an FP16 label.
 * @throws {ModelBundleError} when the asked IR is not in the bundle or its files are missing, or there is no IR and no ONNX model.
 */
function chooseModelFile(bundle: string, manifest: ModelManifest, precision: IrPrecision | undefined): { file: string; weights?: string; format: ModelLayout['format'] } {
  const irs = manifest.files.openvino ?? {};
  if (precision !== undefined) {
    const wanted = irs[precision];
    if (wanted === undefined) {
      const fallback = irs.FP32 !== undefined ? 'its FP32 IR' : manifest.files.onnx !== undefined ? `its ${manifest.files.onnx}` : undefined;
      throw new ModelBundleError(
        bundle,
        `has no ${precision} OpenVINO IR (${irPathsOf(precision).xml}); write it with \`${exportCommandFor(bundle, precision)}\` (convertBundleToIr)` +
          (fallback === undefined ? '' : `, or leave the precision unset to load ${fallback}`),
      );
    }
    return irChoice(bundle, precision, wanted);
  }
  if (irs.FP32 !== undefined) return irChoice(bundle, 'FP32', irs.FP32);
  if (manifest.files.onnx !== undefined) return { file: bundlePath(bundle, manifest.files.onnx), format: 'onnx' };
  throw new ModelBundleError(bundle, `has neither an OpenVINO IR nor an ONNX model (files.openvino / files.onnx in brats-model.json); export it first with \`brats export ${bundle}\``);
}

class OpenvinoEngine implements InferenceEngine {
  readonly name = OPENVINO_ENGINE;
  readonly version: string;
  layout: ModelLayout | undefined;
  private compiled: OpenvinoCompiledModel | undefined;
  private pool: RequestPool<OpenvinoInferRequest> | undefined;
  private requests: OpenvinoInferRequest[] = [];

  constructor(
    private readonly addon: OpenvinoAddon,
    private readonly core: OpenvinoCore,
    readonly device: string,
    private readonly options: EngineOptions,
  ) {
    this.version = describeVersion(core);
  }

  async load(bundle: string): Promise<ModelLayout> {
    const manifest = await readModelManifest(bundle);
    const choice = this.options.int8 === true ? int8ModelFile(bundle, manifest, this.options.precision) : chooseModelFile(bundle, manifest, this.options.precision);
    const config: Record<string, string | number | boolean> = { PERFORMANCE_HINT: this.options.performanceHint ?? 'LATENCY' };
    if (this.options.threads !== undefined && this.device === 'CPU') config.INFERENCE_NUM_THREADS = this.options.threads;
    if (this.options.perfCounters === true) config.PERF_COUNT = true;
    try {
      const model = await this.core.readModel(choice.file, choice.weights);
      this.compiled = await this.core.compileModel(model, this.device, config);
    } catch (error) {
      throw new EngineError(this.name, `cannot compile ${choice.file} for ${this.device}: ${firstLine(error)}`, { cause: error });
    }
    const optimal = Number(this.compiled.getProperty('OPTIMAL_NUMBER_OF_INFER_REQUESTS'));
    const count = Number.isInteger(optimal) && optimal > 0 ? optimal : 1;
    this.requests = Array.from({ length: count }, () => this.compiled!.createInferRequest());
    this.pool = new RequestPool(this.requests);
    this.layout = { layout: 'NHWC', input: manifest.model.inputShape, outputChannels: manifest.model.outputChannels, file: choice.file, format: choice.format };
    return this.layout;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const shape = checkBatch(this.name, this.layout, input, batch);
    const pool = this.pool;
    const compiled = this.compiled;
    if (pool === undefined || compiled === undefined) throw new EngineError(this.name, 'the model was disposed');
    const inputName = compiled.inputs[0]!.anyName;
    const outputName = compiled.outputs[0]!.anyName;
    return pool.use(async (request) => {
      const result = await request.inferAsync({ [inputName]: new this.addon.Tensor('f32', [...shape], input) });
      const output = result[outputName];
      if (output === undefined || !(output.data instanceof Float32Array)) throw new EngineError(this.name, 'the model gave no float32 output');
      return output.data;
    });
  }

  async perfCounters(): Promise<readonly LayerPerfCounter[] | undefined> {
    if (this.options.perfCounters !== true) return undefined;
    const request = this.requests[0];
    // openvino-node releases up to 2026.4 do not expose profiling info; newer ones may.
    if (request?.getProfilingInfo === undefined) return undefined;
    return request.getProfilingInfo().map((entry) => ({ name: entry.nodeName, type: entry.nodeType, realTimeMs: entry.realTime / 1000, runs: 1 }));
  }

  async dispose(): Promise<void> {
    this.pool = undefined;
    this.requests = [];
    this.compiled = undefined;
    this.layout = undefined;
  }
}

/** Validates a device name against this engine's devices and the machine's. */
function checkDevice(core: OpenvinoCore | undefined, device: string): void {
  if (!DEVICE_PATTERN.test(device)) {
    throw new EngineError(OPENVINO_ENGINE, `device '${device}' is not an OpenVINO device name (CPU, GPU, GPU.N, NPU, AUTO, AUTO:…, HETERO:…, MULTI:…)`);
  }
  const available = core?.getAvailableDevices() ?? [];
  if (device === 'MYRIAD' && !available.includes('MYRIAD')) {
    throw new EngineUnavailableError(OPENVINO_ENGINE, `device MYRIAD: ${MYRIAD_EXPLANATION}`, 'Use --device CPU, GPU, NPU or AUTO with a current OpenVINO');
  }
  const plugin = device.split(/[.:]/)[0]!;
  if (core !== undefined && ['CPU', 'GPU', 'NPU'].includes(plugin) && !available.some((name) => name === device || name.startsWith(`${plugin}`))) {
    throw new EngineError(OPENVINO_ENGINE, `device ${device} is not available here; available: ${available.join(', ') || 'none'}`);
  }
}

/** Factory of the OpenVINO engine. */
export const openvinoFactory: EngineFactory = {
  async create(options: EngineOptions): Promise<InferenceEngine> {
    const device = (options.device ?? 'CPU').toUpperCase();
    // MYRIAD is explained even without openvino-node: no installable release drives the stick.
    if (device === 'MYRIAD') checkDevice(undefined, device);
    const addon = await loadOpenvino();
    const core = new addon.Core();
    checkDevice(core, device);
    return new OpenvinoEngine(addon, core, device, options);
  },
  async probe(): Promise<EngineProbe> {
    let addon: OpenvinoAddon;
    try {
      addon = await loadOpenvino();
    } catch (error) {
      if (!(error instanceof EngineUnavailableError)) throw error;
      return { name: OPENVINO_ENGINE, installed: false, devices: [], reason: error.reason, remedy: error.remedy };
    }
    const core = new addon.Core();
    return { name: OPENVINO_ENGINE, installed: true, version: describeVersion(core), devices: core.getAvailableDevices() };
  },
};

/** One IR written by {@link convertBundleToIr}, paths relative to the bundle. */
export interface IrFiles {
  readonly precision: IrPrecision;
  readonly xml: string;
  readonly bin: string;
}

/**
 * Converts a bundle's ONNX model to OpenVINO IR (`openvino/FP32/model.xml|bin`, `openvino/FP16/…`) with
 * saveModelSync, writing each pair through a temporary folder so a crash leaves no half IR, and records them in
 * the manifest. The FP16 IR is the file the OpenVINO 2022.3 runtime loads for MYRIAD (NCS2). Input layout stays
 * NHWC [batch, height, width, channels] as in the ONNX file.
 * @throws {EngineUnavailableError} when openvino-node is not installed.
 * @throws {ModelBundleError} when the bundle has no ONNX model.
 */
export async function convertBundleToIr(bundle: string, precisions: readonly IrPrecision[] = ['FP32', 'FP16']): Promise<IrFiles[]> {
  const manifest = await readModelManifest(bundle);
  if (manifest.files.onnx === undefined) throw new ModelBundleError(bundle, 'has no ONNX model to convert; export it first with exportBundleToOnnx');
  const addon = await loadOpenvino();
  const core = new addon.Core();
  const onnxFile = bundlePath(bundle, manifest.files.onnx);
  const written: IrFiles[] = [];
  for (const precision of precisions) {
    const model = await core.readModel(onnxFile);
    const folder = path.join(bundle, 'openvino', precision);
    const partial = temporaryPathFor(folder);
    await fs.mkdir(partial, { recursive: true });
    try {
      addon.saveModelSync(model, path.join(partial, 'model.xml'), precision === 'FP16');
      await fs.mkdir(folder, { recursive: true });
      // Weights first: an xml that exists always has its bin.
      await fs.rename(path.join(partial, 'model.bin'), path.join(folder, 'model.bin'));
      await fs.rename(path.join(partial, 'model.xml'), path.join(folder, 'model.xml'));
    } finally {
      await fs.rm(partial, { recursive: true, force: true });
    }
    written.push({ precision, ...irPathsOf(precision) });
  }
  const openvino = { ...manifest.files.openvino };
  for (const ir of written) openvino[ir.precision] = { xml: ir.xml, bin: ir.bin };
  await writeModelManifest(bundle, { ...manifest, files: { ...manifest.files, openvino } });
  return written;
}
