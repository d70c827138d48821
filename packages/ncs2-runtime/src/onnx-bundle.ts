/**
 * The ONNX model of a bundle, as its manifest lists it: what the ONNX Runtime and OpenVINO engines load, and what the
 * native engine's calling thread resolves before its worker thread opens the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { MODEL_MANIFEST_FILE, ModelBundleError, bundlePath, parseModelManifest, readModelManifest, type ModelManifest } from '@brats/io';
import type { ModelLayout } from './engine.js';

/** The `brats export` command line that writes the INT8 model of `bundle`. */
function int8ExportCommand(bundle: string): string {
  return `brats export ${bundle} --precision int8 --data DATASET`;
}

/**
 * The ONNX file of a bundle, as its manifest lists it: `files.onnx`, or with `int8` the INT8 model `files.onnxInt8`
 * (never the other one in its place: INT8 asked and FP32 run would mislabel every figure). The ONNX Runtime and
 * OpenVINO engines both load through it.
 * @throws {ModelBundleError} when the bundle has no such model, or its folder lost the file.
 */
export function onnxModelFile(bundle: string, manifest: ModelManifest, options: { int8?: boolean } = {}): string {
  const int8 = options.int8 === true;
  const file = int8 ? manifest.files.onnxInt8 : manifest.files.onnx;
  if (file === undefined) {
    throw new ModelBundleError(
      bundle,
      int8
        ? `has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`${int8ExportCommand(bundle)}\`, or leave --precision at fp32`
        : 'has no ONNX model (files.onnx in brats-model.json); export it first with exportBundleToOnnx from @brats/unet',
    );
  }
  const absolute = bundlePath(bundle, file);
  if (!existsSync(absolute)) {
    throw new ModelBundleError(
      bundle,
      int8
        ? `brats-model.json lists the INT8 model ${file}, which is missing; write it again with \`${int8ExportCommand(bundle)}\``
        : `brats-model.json lists the ONNX model ${file}, which is missing; export it again with \`brats export ${bundle}\``,
    );
  }
  return absolute;
}

/**
 * Reads the ONNX file ({@link onnxModelFile}) and layout of a bundle from its manifest.
 * @throws {ModelBundleError} when the bundle has no such model.
 */
export async function readOnnxLayout(bundle: string, options: { int8?: boolean } = {}): Promise<ModelLayout> {
  const manifest = await readModelManifest(bundle);
  return {
    layout: 'NHWC',
    input: manifest.model.inputShape,
    outputChannels: manifest.model.outputChannels,
    file: onnxModelFile(bundle, manifest, options),
    format: 'onnx',
  };
}

/**
 * The ONNX file and slice shape {@link readOnnxLayout} gives, read at once (synchronously) so that a worker thread
 * can start opening (and warming up) the model before the calling thread turns again; undefined where the bundle
 * does not tell (then readOnnxLayout says why).
 */
export function onnxModelNow(bundle: string, options: { int8?: boolean } = {}): { file: string; input: readonly [number, number, number] } | undefined {
  try {
    const file = bundle.endsWith('.json') ? bundle : path.join(bundle, MODEL_MANIFEST_FILE);
    const manifest = parseModelManifest(readFileSync(file, 'utf8'), file);
    return { file: onnxModelFile(bundle, manifest, options), input: manifest.model.inputShape };
  } catch {
    return undefined;
  }
}
