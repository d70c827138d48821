/**
 * Static INT8 quantisation of an exported U-Net in the QDQ form of ONNX: QuantizeLinear/DequantizeLinear pairs on
 * the activations that convolutions read and that their ReLUs write, int8 weights per output channel and int32
 * biases behind DequantizeLinear. ONNX Runtime fuses each DequantizeLinear → Conv → ReLU → QuantizeLinear chain into
 * one integer QLinearConv.
 *
 * Written here because no JavaScript library quantises ONNX graphs (ONNX Runtime's quantiser is Python); the graph is
 * read and written with the generated protobuf code of `onnx-proto`, as the exporter does. Activation ranges come
 * from the caller's calibration run ({@link ActivationRanges}); the graph rewrite itself is pure.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxMessages } from 'onnx-proto';
import { ArgumentError } from '@brats/io';
import { OnnxExportError } from './errors.js';

// The package is CommonJS assigning its root to module.exports, so only the default import works from ESM.
const { onnx } = onnxProto;
const { DataType } = onnx.TensorProto;

/**
 * Weight levels each side of zero: 7 bits (±63), not 8. x86 CPUs without VNNI multiply uint8 activations by int8
 * weights with an instruction (vpmaddubsw) that adds pairs of products into int16 and saturates: 255 × 127 × 2
 * overflows it, 255 × 63 × 2 does not. ONNX Runtime's own quantiser calls this `reduce_range`.
 */
const WEIGHT_LEVELS = 63;

/** The observed range of one activation tensor over the calibration inputs. */
export interface ActivationRange {
  min: number;
  max: number;
}

/** Collects the minimum and maximum of each named activation over calibration batches (MinMax calibration). */
export class ActivationRanges {
  private readonly ranges = new Map<string, ActivationRange>();

  /** Widens the range of `name` to cover `values`. */
  observe(name: string, values: Float32Array): void {
    let min = Infinity;
    let max = -Infinity;
    for (let index = 0; index < values.length; index++) {
      const value = values[index]!;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    if (!Number.isFinite(min) || !Number.isFinite(max)) {
      if (values.length === 0) return;
      throw new ArgumentError('ActivationRanges.observe', name, 'holds a value that is not finite');
    }
    const known = this.ranges.get(name);
    this.ranges.set(name, known === undefined ? { min, max } : { min: Math.min(known.min, min), max: Math.max(known.max, max) });
  }

  /** The range of `name`, or undefined before any batch was observed. */
  get(name: string): ActivationRange | undefined {
    return this.ranges.get(name);
  }

  /** Number of tensors with a range so far. */
  get size(): number {
    return this.ranges.size;
  }
}

function decode(model: Uint8Array): OnnxMessages.ModelProto {
  try {
    return onnx.ModelProto.decode(model);
  } catch (error) {
    throw new OnnxExportError(undefined, `cannot read the ONNX model: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The activation tensors that {@link quantizeQdq} quantises, in graph order: the data input of every convolution and
 * the output of every ReLU. These are the tensors a calibration run has to observe.
 */
export function quantizableActivations(model: Uint8Array): string[] {
  const graph = decode(model).graph;
  if (graph?.node == null) throw new OnnxExportError(undefined, 'the ONNX model has no graph');
  const names = new Set<string>();
  for (const node of graph.node) {
    if (node.opType === 'Conv' && node.input?.[0] !== undefined) names.add(node.input[0]);
    if (node.opType === 'Relu' && node.output?.[0] !== undefined) names.add(node.output[0]);
  }
  const graphInputs = new Set((graph.input ?? []).map((input) => input.name));
  // A graph input has no producer to put a QuantizeLinear after (the U-Net's is transposed first anyway).
  return [...names].filter((name) => !graphInputs.has(name));
}

/** The model with `names` added as float32 graph outputs, after its own: what a calibration run reads. */
export function withActivationOutputs(model: Uint8Array, names: readonly string[]): Uint8Array {
  const proto = decode(model);
  const graph = proto.graph!;
  for (const name of names) {
    (graph.output ??= []).push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DataType.FLOAT } } }));
  }
  return onnx.ModelProto.encode(proto).finish();
}

function floatValues(tensor: OnnxMessages.ITensorProto): Float32Array {
  if (tensor.dataType !== DataType.FLOAT) throw new OnnxExportError(undefined, `initializer ${tensor.name} is not float32`);
  if (tensor.rawData != null && tensor.rawData.length > 0) {
    const bytes = tensor.rawData;
    // Copied so the view is aligned whatever the protobuf buffer's offset.
    return new Float32Array(new Uint8Array(bytes).buffer, 0, bytes.length / 4);
  }
  return Float32Array.from(tensor.floatData ?? []);
}

function rawTensor(name: string, dims: readonly number[], dataType: number, values: Int8Array | Uint8Array | Int32Array | Float32Array): OnnxMessages.ITensorProto {
  // rawData is little-endian, the byte order of every platform Node runs on.
  const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  return { name, dims: [...dims], dataType, rawData: bytes };
}

/** uint8 affine parameters of a range widened to hold 0 (so that zero, ReLU's floor and padding, is exact). */
export function uint8Parameters(range: ActivationRange): { scale: number; zeroPoint: number } {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  const scale = max > min ? (max - min) / 255 : 1;
  // float32 scale, as stored: the zero point and the bias scales below are computed from the stored value.
  const stored = Math.fround(scale);
  return { scale: stored, zeroPoint: Math.min(255, Math.max(0, Math.round(-min / stored))) };
}

/** What {@link quantizeQdq} did. */
export interface QdqSummary {
  /** Convolutions given int8 weights (per output channel) and int32 biases. */
  convolutions: number;
  /** Activation tensors given a QuantizeLinear/DequantizeLinear pair (uint8, per tensor). */
  activations: number;
}

/**
 * The QDQ INT8 form of `model`: each tensor of {@link quantizableActivations} passes through
 * QuantizeLinear → DequantizeLinear (uint8, asymmetric, from its calibrated range); each convolution's weights become
 * int8 per output channel (symmetric over ±63, see WEIGHT_LEVELS) and its bias int32 with scale (input scale × weight scale),
 * both behind DequantizeLinear. Everything else (pooling, resize, concatenation, the sigmoid) stays as it was.
 * @throws {ArgumentError} when a tensor to quantise has no range; {OnnxExportError} for a graph it cannot rewrite.
 */
export function quantizeQdq(model: Uint8Array, ranges: { get(name: string): ActivationRange | undefined }): { model: Uint8Array; summary: QdqSummary } {
  const proto = decode(model);
  const graph = proto.graph!;
  const activations = quantizableActivations(model);
  const initializers = new Map((graph.initializer ?? []).map((tensor) => [tensor.name!, tensor]));
  const parameters = new Map<string, { scale: number; zeroPoint: number }>();
  const added: OnnxMessages.ITensorProto[] = [];
  for (const name of activations) {
    const range = ranges.get(name);
    if (range === undefined) throw new ArgumentError('quantizeQdq', 'ranges', `has no calibrated range for activation ${name}`);
    const { scale, zeroPoint } = uint8Parameters(range);
    parameters.set(name, { scale, zeroPoint });
    added.push(rawTensor(`${name}/qdq_scale`, [], DataType.FLOAT, Float32Array.of(scale)));
    added.push(rawTensor(`${name}/qdq_zero_point`, [], DataType.UINT8, Uint8Array.of(zeroPoint)));
  }
  const dequantized = (name: string): string => (parameters.has(name) ? `${name}/dequantized` : name);
  const graphOutputs = new Set((graph.output ?? []).map((output) => output.name));
  const replaced = new Set<string>();
  const nodes: OnnxMessages.INodeProto[] = [];
  let convolutions = 0;
  for (const node of graph.node ?? []) {
    let current = node;
    if (node.opType === 'Conv') {
      const [input, weightName, biasName] = node.input ?? [];
      const weight = initializers.get(weightName ?? '');
      if (input === undefined || weight === undefined) throw new OnnxExportError(undefined, `convolution ${node.name} has no weight initializer`);
      const dims = (weight.dims ?? []).map(Number);
      const outputs = dims[0]!;
      const values = floatValues(weight);
      const perChannel = values.length / outputs;
      const weightScales = new Float32Array(outputs);
      const quantized = new Int8Array(values.length);
      for (let o = 0; o < outputs; o++) {
        let largest = 0;
        for (let k = 0; k < perChannel; k++) largest = Math.max(largest, Math.abs(values[o * perChannel + k]!));
        const scale = Math.fround(largest > 0 ? largest / WEIGHT_LEVELS : 1);
        weightScales[o] = scale;
        for (let k = 0; k < perChannel; k++) quantized[o * perChannel + k] = Math.max(-WEIGHT_LEVELS, Math.min(WEIGHT_LEVELS, Math.round(values[o * perChannel + k]! / scale)));
      }
      added.push(rawTensor(`${weightName}/int8`, dims, DataType.INT8, quantized));
      added.push(rawTensor(`${weightName}/scale`, [outputs], DataType.FLOAT, weightScales));
      added.push(rawTensor(`${weightName}/zero_point`, [outputs], DataType.INT8, new Int8Array(outputs)));
      nodes.push({ opType: 'DequantizeLinear', name: `${weightName}/DequantizeLinear`, input: [`${weightName}/int8`, `${weightName}/scale`, `${weightName}/zero_point`], output: [`${weightName}/dequantized`], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
      const newInputs = [dequantized(input), `${weightName}/dequantized`];
      replaced.add(weightName!);
      const inputParameters = parameters.get(input);
      if (biasName !== undefined && biasName !== '') {
        const bias = initializers.get(biasName);
        if (bias === undefined) throw new OnnxExportError(undefined, `convolution ${node.name} has no bias initializer`);
        if (inputParameters === undefined) {
          newInputs.push(biasName);
        } else {
          const biasValues = floatValues(bias);
          const biasScales = new Float32Array(outputs);
          const biasQuantized = new Int32Array(outputs);
          for (let o = 0; o < outputs; o++) {
            biasScales[o] = Math.fround(inputParameters.scale * weightScales[o]!);
            biasQuantized[o] = Math.round(biasValues[o]! / biasScales[o]!);
          }
          added.push(rawTensor(`${biasName}/int32`, [outputs], DataType.INT32, biasQuantized));
          added.push(rawTensor(`${biasName}/scale`, [outputs], DataType.FLOAT, biasScales));
          added.push(rawTensor(`${biasName}/zero_point`, [outputs], DataType.INT32, new Int32Array(outputs)));
          nodes.push({ opType: 'DequantizeLinear', name: `${biasName}/DequantizeLinear`, input: [`${biasName}/int32`, `${biasName}/scale`, `${biasName}/zero_point`], output: [`${biasName}/dequantized`], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] });
          newInputs.push(`${biasName}/dequantized`);
          replaced.add(biasName);
        }
      }
      current = { ...node, input: newInputs };
      convolutions++;
    } else {
      current = { ...node, input: (node.input ?? []).map(dequantized) };
    }
    nodes.push(current);
    for (const output of current.output ?? []) {
      const quantization = parameters.get(output);
      if (quantization === undefined) continue;
      if (graphOutputs.has(output)) throw new OnnxExportError(undefined, `activation ${output} is a graph output; it cannot be quantised in place`);
      const scale = `${output}/qdq_scale`;
      const zeroPoint = `${output}/qdq_zero_point`;
      nodes.push({ opType: 'QuantizeLinear', name: `${output}/QuantizeLinear`, input: [output, scale, zeroPoint], output: [`${output}/quantized`] });
      nodes.push({ opType: 'DequantizeLinear', name: `${output}/DequantizeLinear`, input: [`${output}/quantized`, scale, zeroPoint], output: [`${output}/dequantized`] });
    }
  }
  graph.node = nodes as OnnxMessages.NodeProto[];
  graph.initializer = [...(graph.initializer ?? []).filter((tensor) => !replaced.has(tensor.name!)), ...added] as OnnxMessages.TensorProto[];
  proto.docString = `${proto.docString ?? ''}${proto.docString ? ' ' : ''}INT8: static QDQ quantisation (uint8 activations per tensor, int8 weights per output channel).`;
  return { model: onnx.ModelProto.encode(proto).finish(), summary: { convolutions, activations: activations.length } };
}
