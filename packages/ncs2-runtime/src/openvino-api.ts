/**
 * The part of the openvino-node API (2024.x-2026.x, `require('openvino-node').addon`) this package uses, typed
 * here because openvino-node is optional and cannot be a compile-time dependency: it needs Node.js >= 21 and
 * downloads its native runtime when it installs.
 */

/** A value of an OpenVINO property. */
export type OpenvinoAny = string | number | boolean;

/** An OpenVINO tensor. */
export interface OpenvinoTensor {
  /** A copy of the tensor's memory as the typed array of its element type. */
  readonly data: Float32Array | Uint8Array | Int32Array | Float64Array;
  getShape(): number[];
}

/** A model input or output port. */
export interface OpenvinoOutput {
  readonly anyName: string;
  getAnyName(): string;
  getPartialShape(): { toString(): string };
}

/** A model read from IR or ONNX. */
export interface OpenvinoModel {
  readonly inputs: OpenvinoOutput[];
  readonly outputs: OpenvinoOutput[];
  getName(): string;
  isDynamic(): boolean;
}

/** One layer's entry of an infer request's profiling info (bindings that expose it). */
export interface OpenvinoProfilingInfo {
  nodeName: string;
  nodeType: string;
  execType?: string;
  status?: string | number;
  /** Wall time in microseconds. */
  realTime: number;
  cpuTime?: number;
}

/** An inference request: one in-flight inference at a time. */
export interface OpenvinoInferRequest {
  inferAsync(inputs: Record<string, OpenvinoTensor> | OpenvinoTensor[]): Promise<Record<string, OpenvinoTensor>>;
  /** Per-layer profiling; not every openvino-node release exposes it, hence optional. */
  getProfilingInfo?: () => OpenvinoProfilingInfo[];
}

/** A model compiled for a device. */
export interface OpenvinoCompiledModel {
  readonly inputs: OpenvinoOutput[];
  readonly outputs: OpenvinoOutput[];
  createInferRequest(): OpenvinoInferRequest;
  getProperty(name: string): OpenvinoAny;
}

/** The OpenVINO runtime core. */
export interface OpenvinoCore {
  getAvailableDevices(): string[];
  getVersions(deviceName: string): Record<string, { buildNumber: string; description: string }>;
  getProperty(deviceName: string, propertyName: string): OpenvinoAny;
  readModel(modelPath: string, weightsPath?: string): Promise<OpenvinoModel>;
  compileModel(model: OpenvinoModel, deviceName: string, config?: Record<string, OpenvinoAny>): Promise<OpenvinoCompiledModel>;
}

/** The openvino-node addon object. */
export interface OpenvinoAddon {
  Core: new () => OpenvinoCore;
  Tensor: new (type: 'f32', shape: number[], data: Float32Array) => OpenvinoTensor;
  /** Writes IR (xml + bin beside it); floating-point weights become FP16 when `compressToFp16` (the default). */
  saveModelSync(model: OpenvinoModel, path: string, compressToFp16?: boolean): void;
}
