/** Model bundles of the U-Net: the manifest that describes one, and an untrained bundle for tests and timings. */
import type * as tf from '@tensorflow/tfjs';
import {
  MODEL_MANIFEST_VERSION,
  resolvePreprocessing,
  writeModelManifest,
  type ModelManifest,
  type PreprocessSettings,
  type UnetArchitecture,
} from '@brats/io';
import { buildUnet, UNET_DEFAULTS, type UnetOptions } from './model.js';
import { saveLayersModel, TFJS_MODEL_FILE } from './model-files.js';

/**
 * The manifest of a U-Net bundle built with `options` and fed by `preprocessing`: architecture, channels, regions
 * (WT, or WT/TC/ET for three outputs), threshold and the tfjs model file. Training provenance is added by the trainer.
 */
export function createUnetManifest(model: tf.LayersModel, options: UnetOptions, preprocessing: PreprocessSettings, threshold = 0.5): ModelManifest {
  const outputChannels = options.outputChannels ?? UNET_DEFAULTS.outputChannels;
  const architecture: UnetArchitecture = {
    architecture: 'unet2d',
    inputShape: options.inputShape ?? UNET_DEFAULTS.inputShape,
    filters: options.filters ?? UNET_DEFAULTS.filters,
    depth: options.depth ?? UNET_DEFAULTS.depth,
    upsampling: options.upsampling ?? UNET_DEFAULTS.upsampling,
    batchNorm: options.batchNorm ?? UNET_DEFAULTS.batchNorm,
    dropout: options.dropout ?? UNET_DEFAULTS.dropout,
    outputChannels,
    parameters: model.countParams(),
  };
  return {
    format: 'brats-model',
    formatVersion: MODEL_MANIFEST_VERSION,
    createdAt: new Date().toISOString(),
    model: architecture,
    channels: preprocessing.channels,
    preprocessing,
    regions: outputChannels === 3 ? ['WT', 'TC', 'ET'] : ['WT'],
    threshold,
    inputLayout: 'NHWC',
    files: { tfjs: TFJS_MODEL_FILE },
  };
}

/** Options of {@link writeUntrainedBundle}. */
export interface UntrainedBundleOptions extends Omit<UnetOptions, 'inputShape'> {
  /** Crop [i, j, k] of the preprocessing; the model takes [i, j, 4] slices. */
  crop: readonly [number, number, number];
  /** Text for the manifest's notes. */
  notes?: string;
}

/** Options of {@link writePreparedBundle}: an untrained bundle whose model is changed before it is saved. */
export interface PreparedBundleOptions extends UntrainedBundleOptions {
  /** Changes the model before it is saved (e.g. fixed weights for a known output). */
  prepare?: (model: tf.LayersModel) => void;
}

/**
 * Writes a real but untrained U-Net bundle (seeded weights): for tests, demos of the plumbing and timings, where
 * what is checked is the pipeline around the model, not its predictions.
 */
export async function writeUntrainedBundle(bundle: string, options: UntrainedBundleOptions): Promise<ModelManifest> {
  return writePreparedBundle(bundle, options);
}

/**
 * {@link writeUntrainedBundle} with a hook that changes the TensorFlow.js model before it is saved (from
 * `@brats/unet/tf`, whose types are TensorFlow.js's).
 */
export async function writePreparedBundle(bundle: string, options: PreparedBundleOptions): Promise<ModelManifest> {
  const { crop, prepare, notes, ...unet } = options;
  const modelOptions: UnetOptions = { seed: 1, ...unet, inputShape: [crop[0], crop[1], 4] };
  const model = buildUnet(modelOptions);
  try {
    prepare?.(model);
    await saveLayersModel(bundle, model);
    const target = (modelOptions.outputChannels ?? 1) === 3 ? 'regions' : 'wt';
    const manifest = createUnetManifest(model, modelOptions, resolvePreprocessing({ crop, target }));
    if (notes !== undefined) manifest.notes = notes;
    await writeModelManifest(bundle, manifest);
    return manifest;
  } finally {
    model.dispose();
  }
}
