/**
 * Errors of the ONNX export. Each extends BratsError from @brats/io with a stable `code` and structured fields.
 */
import { BratsError } from '@brats/io';

/** A model cannot be written as ONNX: a layer or a layer option has no ONNX equivalent here. */
export class OnnxExportError extends BratsError {
  /** The layer that could not be exported (its tfjs name), or undefined for a model-level problem. */
  readonly layer: string | undefined;
  /** What is unsupported or wrong, one line. */
  readonly reason: string;

  constructor(layer: string | undefined, reason: string) {
    super('ONNX_EXPORT', layer === undefined ? `ONNX export: ${reason}` : `ONNX export of layer '${layer}': ${reason}`);
    this.layer = layer;
    this.reason = reason;
  }
}
