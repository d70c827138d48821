/**
 * A small builder over the ONNX protobuf messages of `onnx-proto` (generated protobufjs code from the official
 * onnx.proto): nodes, float initialisers and typed attributes, then encoding to ModelProto bytes.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxMessages } from 'onnx-proto';

// The package is CommonJS assigning its root to module.exports, so only the default import works from ESM.
const { onnx } = onnxProto;

/** An attribute value: a number is an INT, a float written with {@link floatAttribute} is a FLOAT. */
export type AttributeValue = number | readonly number[] | string | { readonly float: number };

/** Marks a number as an ONNX FLOAT attribute (plain numbers are INTs). */
export function floatAttribute(value: number): { readonly float: number } {
  return { float: value };
}

function toAttribute(name: string, value: AttributeValue): OnnxMessages.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'number') return { name, type: AttributeType.INT, i: value };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: [...(value as number[])] };
  return { name, type: AttributeType.FLOAT, f: (value as { float: number }).float };
}

/** A dimension of a graph input or output: a fixed size or a named symbolic one (e.g. `batch`). */
export type GraphDimension = number | string;

/** Collects the nodes and initialisers of one ONNX graph, in topological order. */
export class OnnxGraphBuilder {
  private readonly nodes: OnnxMessages.INodeProto[] = [];
  private readonly initializers: OnnxMessages.ITensorProto[] = [];
  private readonly usedNames = new Set<string>();

  /** Claims `name` exactly (for graph inputs and outputs); later derived names avoid it. */
  reserveName(name: string): string {
    if (this.usedNames.has(name)) throw new RangeError(`tensor name ${name} is already used`);
    this.usedNames.add(name);
    return name;
  }

  /** A tensor name not used yet in this graph, derived from `base`. */
  uniqueName(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./-]/g, '_');
    let name = clean;
    for (let index = 1; this.usedNames.has(name); index += 1) name = `${clean}_${index}`;
    this.usedNames.add(name);
    return name;
  }

  /** Adds a float32 constant of shape `dims` (row-major) and returns its name. */
  addFloatInitializer(base: string, dims: readonly number[], values: Float32Array): string {
    const count = dims.reduce((product, size) => product * size, 1);
    if (count !== values.length) throw new RangeError(`initializer ${base}: ${values.length} values for dims [${dims.join(', ')}]`);
    const name = this.uniqueName(base);
    // rawData is little-endian IEEE 754, the byte order of every platform Node runs on.
    const bytes = new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes });
    return name;
  }

  /**
   * Adds a node of `opType` reading `inputs` (an empty string is an omitted optional input) and returns its
   * output name: `reservedOutput` when given (a name from {@link reserveName}), else one derived from `outputBase`.
   */
  addNode(
    opType: string,
    inputs: readonly string[],
    outputBase: string,
    attributes: Record<string, AttributeValue> = {},
    reservedOutput?: string,
  ): string {
    const output = reservedOutput ?? this.uniqueName(outputBase);
    this.nodes.push({
      opType,
      name: this.uniqueName(`${outputBase}/${opType}`),
      input: [...inputs],
      output: [output],
      attribute: Object.entries(attributes).map(([name, value]) => toAttribute(name, value)),
    });
    return output;
  }

  /**
   * Encodes the graph as an ONNX ModelProto.
   * @param input graph input name, float32 of `inputShape`; @param output graph output name, float32 of `outputShape`.
   */
  encode(options: {
    graphName: string;
    input: string;
    inputShape: readonly GraphDimension[];
    output: string;
    outputShape: readonly GraphDimension[];
    opset: number;
    producerVersion: string;
    docString: string;
    metadata: Record<string, string>;
  }): Uint8Array {
    const valueInfo = (name: string, shape: readonly GraphDimension[]): OnnxMessages.IValueInfoProto => ({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: shape.map((size) => (typeof size === 'number' ? { dimValue: size } : { dimParam: size })) },
        },
      },
    });
    const model = onnx.ModelProto.create({
      // IR version 8 is what onnx 1.10-1.12 write for opsets up to 17.
      irVersion: 8,
      opsetImport: [{ domain: '', version: options.opset }],
      producerName: '@brats/unet',
      producerVersion: options.producerVersion,
      docString: options.docString,
      metadataProps: Object.entries(options.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: options.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(options.input, options.inputShape)],
        output: [valueInfo(options.output, options.outputShape)],
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
