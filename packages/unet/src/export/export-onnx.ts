/**
 * Export of a TensorFlow.js layers model (the U-Net of this package, or any model built from the same layer
 * types) to an ONNX graph that ONNX Runtime and OpenVINO read.
 *
 * Layout: the graph input is NHWC float32 `[batch, height, width, channels]` with a symbolic `batch`
 * dimension, exactly what the tfjs model takes. A Transpose to NCHW follows the input (ONNX convolutions are
 * NCHW), every layer runs in NCHW, and a final Transpose gives the output NHWC `[batch, height, width, K]`
 * probabilities, so callers feed the same arrays as to the tfjs model.
 *
 * ONNX has no ready converter in JavaScript (tf2onnx is Python), so the layer-to-node mapping is written here; the
 * protobuf encoding itself is the generated code of `onnx-proto`.
 */
import * as tf from '@tensorflow/tfjs';
import { ArgumentError } from '@brats/io';
import { OnnxExportError } from './errors.js';
import { floatAttribute, OnnxGraphBuilder, type GraphDimension } from './onnx-graph.js';

/** ONNX operator-set versions the exporter writes. */
export type OnnxOpset = 13 | 17;

/** Options of {@link exportOnnx}. */
export interface ExportOnnxOptions {
  /** Operator set to declare (default 17); the graph uses only operators identical in 13 and 17. */
  opset?: OnnxOpset;
  /** Name of the graph input (default `input`). */
  inputName?: string;
  /** Name of the graph output (default `probabilities`). */
  outputName?: string;
  /** Extra key/value metadata stored in the model (e.g. bundle provenance). */
  metadata?: Record<string, string>;
}

/** Layer class names that are the identity at inference time and are left out of the graph. */
const INFERENCE_IDENTITY = /Dropout|GaussianNoise|GaussianDropout|AlphaDropout/;

/** NHWC axis → NCHW axis. */
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1] as const;

type SymbolicTensor = tf.SymbolicTensor;
type Layer = tf.layers.Layer;
type LayerConfig = Record<string, unknown>;

interface ExportContext {
  readonly graph: OnnxGraphBuilder;
  /** ONNX tensor (NCHW) of each tfjs symbolic tensor, by its id. */
  readonly tensors: Map<number, string>;
  /** Batch-norm layers folded into the convolution before them, by the convolution's name. */
  readonly folds: Map<string, Layer>;
}

function configOf(layer: Layer): LayerConfig {
  return layer.getConfig() as unknown as LayerConfig;
}

function pairOf(layer: Layer, config: LayerConfig, key: string): [number, number] {
  const value = config[key];
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) return [value[0] as number, value[1] as number];
  throw new OnnxExportError(layer.name, `config ${key} must be one or two integers`);
}

function requireChannelsLast(layer: Layer, config: LayerConfig): void {
  if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
    throw new OnnxExportError(layer.name, `dataFormat ${String(config.dataFormat)} is not supported; models here are channelsLast`);
  }
}

/** The weights of a layer by the last part of their names (`kernel`, `bias`, `gamma`, `moving_mean`, …). */
function weightsOf(layer: Layer): Map<string, { shape: number[]; values: Float32Array }> {
  const values = layer.getWeights();
  const result = new Map<string, { shape: number[]; values: Float32Array }>();
  layer.weights.forEach((variable, index) => {
    const tensor = values[index];
    if (tensor === undefined) return;
    const key = variable.originalName.split('/').pop() ?? variable.originalName;
    result.set(key, { shape: [...tensor.shape], values: Float32Array.from(tensor.dataSync()) });
  });
  return result;
}

function requireWeight(layer: Layer, weights: ReturnType<typeof weightsOf>, key: string): { shape: number[]; values: Float32Array } {
  const weight = weights.get(key);
  if (weight === undefined) throw new OnnxExportError(layer.name, `has no '${key}' weight`);
  return weight;
}

/** Permutes a row-major 4-D array: output axis i is input axis `order[i]`. */
function permute4d(values: Float32Array, shape: readonly number[], order: readonly [number, number, number, number]): { shape: number[]; values: Float32Array } {
  const outShape = order.map((axis) => shape[axis] ?? 0);
  const inStrides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const strides = order.map((axis) => inStrides[axis] ?? 0);
  const out = new Float32Array(values.length);
  let position = 0;
  for (let a = 0; a < outShape[0]!; a += 1)
    for (let b = 0; b < outShape[1]!; b += 1)
      for (let c = 0; c < outShape[2]!; c += 1)
        for (let d = 0; d < outShape[3]!; d += 1) {
          out[position] = values[a * strides[0]! + b * strides[1]! + c * strides[2]! + d * strides[3]!]!;
          position += 1;
        }
  return { shape: outShape, values: out };
}

/**
 * TensorFlow 'same' padding of one spatial axis: total = max((ceil(n/s) - 1)·s + (k - 1)·d + 1 - n, 0), the odd
 * pixel at the end. With stride 1 it does not depend on n, so models with unknown spatial size still export.
 */
function samePadding(layer: Layer, size: number | null, kernel: number, stride: number, dilation: number): [number, number] {
  const effective = (kernel - 1) * dilation + 1;
  let total: number;
  if (stride === 1) total = effective - 1;
  else {
    if (size === null) throw new OnnxExportError(layer.name, `'same' padding with stride ${stride} needs a known spatial input size`);
    total = Math.max((Math.ceil(size / stride) - 1) * stride + effective - size, 0);
  }
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function spatialSizes(layer: Layer): [number | null, number | null] {
  const shape = layer.inboundNodes[0]?.inputTensors[0]?.shape;
  if (shape === undefined || shape.length !== 4) throw new OnnxExportError(layer.name, 'expects a 4-D [batch, height, width, channels] input');
  return [shape[1] ?? null, shape[2] ?? null];
}

/** Emits the activation `name` on `input` and returns the resulting tensor. */
function addActivation(context: ExportContext, layer: Layer, name: unknown, input: string): string {
  switch (name) {
    case undefined:
    case null:
    case 'linear':
      return input;
    case 'relu':
      return context.graph.addNode('Relu', [input], `${layer.name}/relu`);
    case 'sigmoid':
      return context.graph.addNode('Sigmoid', [input], `${layer.name}/sigmoid`);
    case 'tanh':
      return context.graph.addNode('Tanh', [input], `${layer.name}/tanh`);
    case 'softmax':
      // Channels are axis 1 inside the NCHW graph.
      return context.graph.addNode('Softmax', [input], `${layer.name}/softmax`, { axis: 1 });
    default:
      throw new OnnxExportError(layer.name, `activation '${String(name)}' is not supported (relu, sigmoid, tanh, softmax, linear are)`);
  }
}

/** Scale and shift per channel of a batch-norm layer: y = x·scale + shift. */
function batchNormAffine(layer: Layer): { scale: Float64Array; shift: Float64Array } {
  const config = configOf(layer);
  const axis = config.axis;
  if (axis !== -1 && axis !== 3) throw new OnnxExportError(layer.name, `batch norm over axis ${String(axis)}; only the channel axis (-1) is supported`);
  const weights = weightsOf(layer);
  const mean = requireWeight(layer, weights, 'moving_mean').values;
  const variance = requireWeight(layer, weights, 'moving_variance').values;
  const gamma = config.scale === false ? undefined : requireWeight(layer, weights, 'gamma').values;
  const beta = config.center === false ? undefined : requireWeight(layer, weights, 'beta').values;
  const epsilon = typeof config.epsilon === 'number' ? config.epsilon : 1e-3;
  const scale = new Float64Array(mean.length);
  const shift = new Float64Array(mean.length);
  for (let c = 0; c < mean.length; c += 1) {
    scale[c] = (gamma?.[c] ?? 1) / Math.sqrt(variance[c]! + epsilon);
    shift[c] = (beta?.[c] ?? 0) - mean[c]! * scale[c]!;
  }
  return { scale, shift };
}

function convertConv2d(context: ExportContext, layer: Layer, input: string): string {
  const config = configOf(layer);
  requireChannelsLast(layer, config);
  const [kh, kw] = pairOf(layer, config, 'kernelSize');
  const [sh, sw] = pairOf(layer, config, 'strides');
  const [dh, dw] = pairOf(layer, config, 'dilationRate');
  const weights = weightsOf(layer);
  const kernel = requireWeight(layer, weights, 'kernel');
  // tfjs kernel [kh, kw, in, out] → ONNX [out, in, kh, kw].
  const w = permute4d(kernel.values, kernel.shape, [3, 2, 0, 1]);
  const outChannels = w.shape[0]!;
  const perOut = w.values.length / outChannels;
  const bias = new Float32Array(weights.get('bias')?.values ?? new Float32Array(outChannels));
  const fold = context.folds.get(layer.name);
  if (fold !== undefined) {
    const { scale, shift } = batchNormAffine(fold);
    for (let o = 0; o < outChannels; o += 1) {
      for (let i = 0; i < perOut; i += 1) w.values[o * perOut + i] = w.values[o * perOut + i]! * scale[o]!;
      bias[o] = bias[o]! * scale[o]! + shift[o]!;
    }
  }
  let pads = [0, 0, 0, 0];
  if (config.padding === 'same') {
    const [height, width] = spatialSizes(layer);
    const [top, bottom] = samePadding(layer, height, kh, sh, dh);
    const [left, right] = samePadding(layer, width, kw, sw, dw);
    pads = [top, left, bottom, right];
  } else if (config.padding !== 'valid') {
    throw new OnnxExportError(layer.name, `padding '${String(config.padding)}' is not supported ('same', 'valid' are)`);
  }
  const graph = context.graph;
  const weightName = graph.addFloatInitializer(`${layer.name}/kernel`, w.shape, w.values);
  const biasName = graph.addFloatInitializer(`${layer.name}/bias`, [outChannels], bias);
  const output = graph.addNode('Conv', [input, weightName, biasName], `${layer.name}/conv`, {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    dilations: [dh, dw],
    pads,
    group: 1,
  });
  return addActivation(context, layer, config.activation, output);
}

function convertConv2dTranspose(context: ExportContext, layer: Layer, input: string): string {
  const config = configOf(layer);
  requireChannelsLast(layer, config);
  const [kh, kw] = pairOf(layer, config, 'kernelSize');
  const [sh, sw] = pairOf(layer, config, 'strides');
  const dilation = config.dilationRate;
  if (dilation !== undefined && dilation !== null && pairOf(layer, config, 'dilationRate').some((d) => d !== 1)) {
    throw new OnnxExportError(layer.name, 'dilated transposed convolutions are not supported');
  }
  const weights = weightsOf(layer);
  const kernel = requireWeight(layer, weights, 'kernel');
  // tfjs kernel [kh, kw, out, in] → ONNX ConvTranspose [in, out, kh, kw].
  const w = permute4d(kernel.values, kernel.shape, [3, 2, 0, 1]);
  const inChannels = w.shape[0]!;
  const outChannels = w.shape[1]!;
  const bias = new Float32Array(weights.get('bias')?.values ?? new Float32Array(outChannels));
  const fold = context.folds.get(layer.name);
  if (fold !== undefined) {
    const { scale, shift } = batchNormAffine(fold);
    const perOut = kh * kw;
    for (let i = 0; i < inChannels; i += 1)
      for (let o = 0; o < outChannels; o += 1)
        for (let p = 0; p < perOut; p += 1) {
          const index = (i * outChannels + o) * perOut + p;
          w.values[index] = w.values[index]! * scale[o]!;
        }
    for (let o = 0; o < outChannels; o += 1) bias[o] = bias[o]! * scale[o]! + shift[o]!;
  }
  // tfjs output size: n·s for 'same', n·s + max(k - s, 0) for 'valid'. ONNX gives s·(n - 1) + k - pads + output_padding,
  // and crops `pads` like TensorFlow does: the smaller half before, the larger after.
  const axis = (k: number, s: number): { before: number; after: number; extra: number } => {
    if (config.padding === 'same') {
      if (k >= s) return { before: Math.floor((k - s) / 2), after: k - s - Math.floor((k - s) / 2), extra: 0 };
      return { before: 0, after: 0, extra: s - k };
    }
    if (config.padding === 'valid') return { before: 0, after: 0, extra: Math.max(s - k, 0) };
    throw new OnnxExportError(layer.name, `padding '${String(config.padding)}' is not supported ('same', 'valid' are)`);
  };
  const vertical = axis(kh, sh);
  const horizontal = axis(kw, sw);
  const graph = context.graph;
  const weightName = graph.addFloatInitializer(`${layer.name}/kernel`, w.shape, w.values);
  const biasName = graph.addFloatInitializer(`${layer.name}/bias`, [outChannels], bias);
  const output = graph.addNode('ConvTranspose', [input, weightName, biasName], `${layer.name}/conv_transpose`, {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    pads: [vertical.before, horizontal.before, vertical.after, horizontal.after],
    output_padding: [vertical.extra, horizontal.extra],
    group: 1,
  });
  return addActivation(context, layer, config.activation, output);
}

function convertMaxPooling(context: ExportContext, layer: Layer, input: string): string {
  const config = configOf(layer);
  requireChannelsLast(layer, config);
  const [kh, kw] = pairOf(layer, config, 'poolSize');
  const [sh, sw] = config.strides === null || config.strides === undefined ? [kh, kw] : pairOf(layer, config, 'strides');
  let pads = [0, 0, 0, 0];
  if (config.padding === 'same') {
    const [height, width] = spatialSizes(layer);
    const [top, bottom] = samePadding(layer, height, kh, sh, 1);
    const [left, right] = samePadding(layer, width, kw, sw, 1);
    pads = [top, left, bottom, right];
  } else if (config.padding !== 'valid') {
    throw new OnnxExportError(layer.name, `padding '${String(config.padding)}' is not supported ('same', 'valid' are)`);
  }
  return context.graph.addNode('MaxPool', [input], `${layer.name}/max_pool`, { kernel_shape: [kh, kw], strides: [sh, sw], pads });
}

function convertUpSampling(context: ExportContext, layer: Layer, input: string): string {
  const config = configOf(layer);
  requireChannelsLast(layer, config);
  const [sh, sw] = pairOf(layer, config, 'size');
  const interpolation = config.interpolation ?? 'nearest';
  if (interpolation !== 'bilinear' && interpolation !== 'nearest') {
    throw new OnnxExportError(layer.name, `interpolation '${String(interpolation)}' is not supported (bilinear, nearest are)`);
  }
  const scales = context.graph.addFloatInitializer(`${layer.name}/scales`, [4], Float32Array.from([1, 1, sh, sw]));
  // tfjs resizeBilinear/resizeNearestNeighbor with alignCorners = false and halfPixelCenters = false sample the
  // source at x_out / scale, clamped at the last pixel: ONNX 'asymmetric' (nearest rounds down: 'floor').
  return context.graph.addNode('Resize', [input, '', scales], `${layer.name}/resize`, {
    mode: interpolation === 'bilinear' ? 'linear' : 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
}

function convertConcatenate(context: ExportContext, layer: Layer, inputs: readonly string[]): string {
  const axis = configOf(layer).axis ?? -1;
  if (typeof axis !== 'number' || axis < -4 || axis > 3) throw new OnnxExportError(layer.name, `concatenation axis ${String(axis)} is not an axis of a 4-D tensor`);
  return context.graph.addNode('Concat', inputs, `${layer.name}/concat`, { axis: NHWC_TO_NCHW_AXIS[(axis + 4) % 4]! });
}

function convertBatchNorm(context: ExportContext, layer: Layer, input: string): string {
  // Validates the axis; the node itself takes the layer's own statistics.
  const { scale } = batchNormAffine(layer);
  const channels = scale.length;
  const config = configOf(layer);
  const weights = weightsOf(layer);
  const graph = context.graph;
  const parameter = (key: string, enabled: boolean, fallback: number): string =>
    graph.addFloatInitializer(
      `${layer.name}/${key}`,
      [channels],
      enabled ? requireWeight(layer, weights, key).values : new Float32Array(channels).fill(fallback),
    );
  const inputs = [
    input,
    parameter('gamma', config.scale !== false, 1),
    parameter('beta', config.center !== false, 0),
    parameter('moving_mean', true, 0),
    parameter('moving_variance', true, 1),
  ];
  const epsilon = typeof config.epsilon === 'number' ? config.epsilon : 1e-3;
  return graph.addNode('BatchNormalization', inputs, `${layer.name}/batch_norm`, { epsilon: floatAttribute(epsilon) });
}

/** Batch-norm layers that directly follow a linear convolution used by nothing else fold into it. */
function planFolds(model: tf.LayersModel): Map<string, Layer> {
  const folds = new Map<string, Layer>();
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization' || layer.inboundNodes.length !== 1) continue;
    const source = layer.inboundNodes[0]?.inputTensors[0]?.sourceLayer;
    if (source === undefined) continue;
    const className = source.getClassName();
    if (className !== 'Conv2D' && className !== 'Conv2DTranspose') continue;
    const activation = configOf(source).activation;
    if (activation !== 'linear' && activation !== undefined && activation !== null) continue;
    if (source.outboundNodes.length !== 1) continue;
    folds.set(source.name, layer);
  }
  return folds;
}

function convertLayer(context: ExportContext, layer: Layer, inputs: readonly string[]): string {
  const className = layer.getClassName();
  const single = (): string => {
    if (inputs.length !== 1) throw new OnnxExportError(layer.name, `${className} expects one input, found ${inputs.length}`);
    return inputs[0]!;
  };
  if (INFERENCE_IDENTITY.test(className)) return single();
  switch (className) {
    case 'Conv2D':
      return convertConv2d(context, layer, single());
    case 'Conv2DTranspose':
      return convertConv2dTranspose(context, layer, single());
    case 'MaxPooling2D':
      return convertMaxPooling(context, layer, single());
    case 'UpSampling2D':
      return convertUpSampling(context, layer, single());
    case 'Concatenate':
      return convertConcatenate(context, layer, inputs);
    case 'BatchNormalization': {
      const input = single();
      const source = layer.inboundNodes[0]?.inputTensors[0]?.sourceLayer;
      if (source !== undefined && context.folds.get(source.name) === layer) return input;
      return convertBatchNorm(context, layer, input);
    }
    case 'Activation':
      return addActivation(context, layer, configOf(layer).activation, single());
    case 'ReLU':
      if (configOf(layer).maxValue !== null && configOf(layer).maxValue !== undefined) {
        throw new OnnxExportError(layer.name, 'ReLU with maxValue is not supported');
      }
      return addActivation(context, layer, 'relu', single());
    default:
      throw new OnnxExportError(
        layer.name,
        `layer class ${className} has no ONNX mapping here (supported: Conv2D, Conv2DTranspose, MaxPooling2D, UpSampling2D, Concatenate, BatchNormalization, Activation, ReLU, dropout layers)`,
      );
  }
}

function singleTensor(model: tf.LayersModel, tensors: readonly SymbolicTensor[], what: 'input' | 'output'): SymbolicTensor {
  const tensor = tensors[0];
  if (tensors.length !== 1 || tensor === undefined) throw new OnnxExportError(undefined, `the model has ${tensors.length} ${what}s; one is supported`);
  if (tensor.shape.length !== 4) {
    throw new OnnxExportError(undefined, `the model ${what} ${model.name} has shape [${tensor.shape.join(', ')}]; expected [batch, height, width, channels]`);
  }
  return tensor;
}

/**
 * Writes a tfjs layers model as ONNX ModelProto bytes (float32, IR version 8, opset 13 or 17). The graph input
 * is NHWC float32 `[batch, height, width, channels]` (batch symbolic), the output NHWC `[batch, height, width, K]`;
 * inside, the graph runs NCHW between two Transpose nodes. Dropout layers are left out, batch norm after a linear
 * convolution is folded into its weights, bilinear UpSampling2D becomes Resize with the tfjs pixel convention.
 * @throws {OnnxExportError} when a layer, activation, padding or data format has no mapping, or the model has
 *   more than one input or output, or a shared layer.
 * @throws {ArgumentError} for an opset other than 13 or 17.
 * @example
 *   const bytes = exportOnnx(model, { opset: 17 });
 *   await writeFileAtomic('model.onnx', bytes);
 */
export function exportOnnx(model: tf.LayersModel, options: ExportOnnxOptions = {}): Uint8Array {
  const opset = options.opset ?? 17;
  if (opset !== 13 && opset !== 17) throw new ArgumentError('exportOnnx', 'options.opset', `must be 13 or 17, found ${String(opset)}`);
  const inputTensor = singleTensor(model, model.inputs, 'input');
  const outputTensor = singleTensor(model, model.outputs, 'output');
  const graph = new OnnxGraphBuilder();
  const inputName = graph.reserveName(options.inputName ?? 'input');
  const outputName = graph.reserveName(options.outputName ?? 'probabilities');
  const context: ExportContext = { graph, tensors: new Map(), folds: planFolds(model) };
  context.tensors.set(inputTensor.id, graph.addNode('Transpose', [inputName], 'input_nchw', { perm: [0, 3, 1, 2] }));

  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    if (layer.inboundNodes.length !== 1) {
      throw new OnnxExportError(layer.name, `is called ${layer.inboundNodes.length} times; shared layers are not supported`);
    }
    const node = layer.inboundNodes[0]!;
    const inputs = node.inputTensors.map((tensor) => {
      const name = context.tensors.get(tensor.id);
      if (name === undefined) throw new OnnxExportError(layer.name, `input ${tensor.name} is not produced by an earlier layer`);
      return name;
    });
    if (node.outputTensors.length !== 1) throw new OnnxExportError(layer.name, `has ${node.outputTensors.length} outputs; one is supported`);
    context.tensors.set(node.outputTensors[0]!.id, convertLayer(context, layer, inputs));
  }
  const last = context.tensors.get(outputTensor.id);
  if (last === undefined) throw new OnnxExportError(undefined, 'the model output is not produced by any layer');
  graph.addNode('Transpose', [last], 'output_nhwc', { perm: [0, 2, 3, 1] }, outputName);

  const dimension = (size: number | null, symbol: string): GraphDimension => size ?? symbol;
  const [, height, width, channels] = inputTensor.shape;
  const [, outHeight, outWidth, outChannels] = outputTensor.shape;
  return graph.encode({
    graphName: model.name,
    input: inputName,
    inputShape: ['batch', dimension(height ?? null, 'height'), dimension(width ?? null, 'width'), dimension(channels ?? null, 'channels')],
    output: outputName,
    outputShape: ['batch', dimension(outHeight ?? null, 'height'), dimension(outWidth ?? null, 'width'), dimension(outChannels ?? null, 'classes')],
    opset,
    producerVersion: `tfjs ${tf.version.tfjs}`,
    docString:
      'Input NHWC float32 [batch, height, width, channels] (preprocessed slices); output NHWC float32 [batch, height, width, K] probabilities. The graph transposes to NCHW inside.',
    metadata: { input_layout: 'NHWC', output_layout: 'NHWC', ...options.metadata },
  });
}
