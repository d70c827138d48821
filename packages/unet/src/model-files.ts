/**
 * Saving and loading the TensorFlow.js layers model of a bundle with plain file I/O, so it works with the
 * wasm and cpu backends (tf.io's file:// handler comes only with @tensorflow/tfjs-node).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelBundleError, writeFileAtomic } from '@brats/io';
import './spatial-dropout.js';

/** File names of the TensorFlow.js model inside a bundle. */
export const TFJS_MODEL_FILE = 'model.json';
export const TFJS_WEIGHTS_FILE = 'weights.bin';

function concatenateWeights(weightData: tf.io.WeightData): Uint8Array {
  const parts = Array.isArray(weightData) ? weightData : [weightData];
  const total = parts.reduce((sum, part) => sum + part.byteLength, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return bytes;
}

/**
 * Writes `model` into folder `dir` as `model.json` + `weights.bin` (the standard tfjs layers format, readable
 * by tf.loadLayersModel and the tfjs converter). Both files are written atomically, weights first.
 */
export async function saveLayersModel(dir: string, model: tf.LayersModel): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      if (artifacts.weightData === undefined || artifacts.weightSpecs === undefined) {
        throw new ModelBundleError(dir, 'the model has no weights to save');
      }
      const weights = concatenateWeights(artifacts.weightData);
      await writeFileAtomic(path.join(dir, TFJS_WEIGHTS_FILE), weights);
      const manifest = {
        modelTopology: artifacts.modelTopology,
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        weightsManifest: [{ paths: [`./${TFJS_WEIGHTS_FILE}`], weights: artifacts.weightSpecs }],
      };
      await writeFileAtomic(path.join(dir, TFJS_MODEL_FILE), JSON.stringify(manifest));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/**
 * Loads the layers model saved in folder `dir` by {@link saveLayersModel} (or by any tfjs tool writing one
 * weights file per manifest group).
 * @throws {ModelBundleError} when model.json or a weights file is missing or unreadable.
 */
export async function loadLayersModel(dir: string, modelFile = TFJS_MODEL_FILE): Promise<tf.LayersModel> {
  const jsonPath = path.join(dir, modelFile);
  let json: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format?: string };
  try {
    json = JSON.parse(await fs.readFile(jsonPath, 'utf8'));
  } catch {
    throw new ModelBundleError(jsonPath, 'missing or not a TensorFlow.js model.json');
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const relative of group.paths) {
      const file = path.join(path.dirname(jsonPath), relative);
      try {
        buffers.push(new Uint8Array(await fs.readFile(file)));
      } catch {
        throw new ModelBundleError(file, 'weights file missing or unreadable');
      }
    }
  }
  const weightData = concatenateWeights(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer)).buffer as ArrayBuffer;
  const artifacts: tf.io.ModelArtifacts = { modelTopology: json.modelTopology, weightSpecs: specs, weightData };
  if (json.format !== undefined) artifacts.format = json.format;
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}
