/**
 * ONNX export of a whole model bundle: the bundle's TensorFlow.js model becomes `model.onnx` beside it and the
 * manifest records the new file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ModelBundleError, readModelManifest, writeFileAtomic, writeModelManifest, type ModelManifest } from '@brats/io';
import { loadLayersModel } from '../model-files.js';
import { exportOnnx, type ExportOnnxOptions } from './export-onnx.js';

/** File name of the ONNX graph inside a bundle. */
export const ONNX_MODEL_FILE = 'model.onnx';

/** What {@link exportBundleToOnnx} wrote. */
export interface BundleOnnxExport {
  /** Absolute path of the written ONNX file. */
  readonly path: string;
  /** Size of the file in bytes. */
  readonly bytes: number;
  /** The manifest as written, with `files.onnx` set. */
  readonly manifest: ModelManifest;
}

/**
 * Exports the TensorFlow.js model of the bundle folder `bundle` to `model.onnx` (input NHWC float32
 * [batch, H, W, C], output [batch, H, W, K] probabilities, see {@link exportOnnx}), written atomically, then
 * records it as `files.onnx` in brats-model.json. The manifest's regions, channels and threshold are copied into
 * the ONNX metadata so the file alone still says how to use it.
 * @throws {ModelBundleError} when the manifest or tfjs model is missing or invalid, or the model's input shape
 *   disagrees with the manifest.
 * @throws {OnnxExportError} when a layer has no ONNX mapping.
 */
export async function exportBundleToOnnx(bundle: string, options: Omit<ExportOnnxOptions, 'metadata'> = {}): Promise<BundleOnnxExport> {
  const manifest = await readModelManifest(bundle);
  const tfjsFile = manifest.files.tfjs;
  if (tfjsFile === undefined) throw new ModelBundleError(bundle, 'the manifest names no TensorFlow.js model (files.tfjs) to export');
  const model = await loadLayersModel(bundle, tfjsFile);
  try {
    const inputShape = model.inputs[0]?.shape.slice(1) ?? [];
    const expected = manifest.model.inputShape;
    if (inputShape.length !== 3 || inputShape.some((size, axis) => size !== expected[axis])) {
      throw new ModelBundleError(
        path.join(bundle, tfjsFile),
        `model input is [${inputShape.join(', ')}] but the manifest says [${expected.join(', ')}] (height, width, channels)`,
      );
    }
    const bytes = exportOnnx(model, {
      ...options,
      metadata: {
        brats_channels: manifest.channels.join(','),
        brats_regions: manifest.regions.join(','),
        brats_threshold: String(manifest.threshold),
      },
    });
    const target = path.resolve(bundle, ONNX_MODEL_FILE);
    // An INT8 model quantised from other weights would be stale: it goes when model.onnx changes.
    const previous = await fs.readFile(target).catch(() => undefined);
    const stale = manifest.files.onnxInt8 !== undefined && (previous === undefined || Buffer.compare(previous, bytes) !== 0) ? manifest.files.onnxInt8 : undefined;
    await writeFileAtomic(target, bytes);
    const updated: ModelManifest = { ...manifest, files: { ...manifest.files, onnx: ONNX_MODEL_FILE } };
    if (stale !== undefined) {
      delete updated.files.onnxInt8;
      delete updated.quantization;
    }
    await writeModelManifest(bundle, updated);
    if (stale !== undefined) await fs.rm(path.resolve(bundle, stale), { force: true });
    return { path: target, bytes: bytes.byteLength, manifest: updated };
  } finally {
    model.dispose();
  }
}
