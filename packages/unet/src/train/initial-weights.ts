/**
 * Fine-tuning: a training run that starts from the weights of an existing model bundle (a shipped model, or one's
 * own) instead of a random initialisation, as nnU-Net's `-pretrained_weights` and MONAI's `CheckpointLoader` do.
 * The source must be the same network fed the same way: same layers and weight shapes, same channels in the same
 * order, same normalisation and crop placement, same regions. Anything else would train on inputs the weights
 * were never fitted to, so it is refused rather than silently accepted.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_MODEL_ORIENTATION, DEFAULT_MODEL_SPACING, ModelBundleError, formatSpacing, readModelManifest, sameSpacing, type InitialWeightsRecord, type PreprocessSettings, type RegionName, type UnetArchitecture } from '@brats/io';
import { loadLayersModel } from '../model-files.js';
import { TrainingError } from '../errors.js';

/** Weights read from a source bundle, ready for {@link applyInitialWeights}. */
export interface InitialWeights {
  readonly bundle: string;
  readonly record: InitialWeightsRecord;
  /** The source's architecture, as its manifest records it: the defaults of a run that starts from it. */
  readonly architecture: UnetArchitecture;
  /** The source's weights in layer order; owned here until disposed by applyInitialWeights. */
  readonly tensors: tf.Tensor[];
}

/** The package name of an installed model package (its package.json), else the folder's name. */
async function sourceName(bundle: string): Promise<string> {
  try {
    const name = (JSON.parse(await fs.readFile(path.join(bundle, 'package.json'), 'utf8')) as { name?: unknown }).name;
    if (typeof name === 'string' && name.length > 0) return name;
  } catch {
    // A plain bundle folder has no package.json: its name stands for it.
  }
  return path.basename(path.resolve(bundle));
}

function describeSettings(settings: Pick<PreprocessSettings, 'channels' | 'normalize' | 'cropMode'>): string {
  return `channels ${settings.channels.join(',')}, normalisation ${settings.normalize}, crop ${settings.cropMode}`;
}

/**
 * Reads the model of bundle `bundle` and checks that it is fed like the run that will start from it.
 * @param expected the run's preprocessing (from the slice store) and regions.
 * @throws {TrainingError} when the bundle has no readable model, or its channels, normalisation, crop placement,
 *   spacing, orientation or regions differ from the run's.
 */
export async function readInitialWeights(
  bundle: string,
  expected: { preprocessing: PreprocessSettings; regions: readonly RegionName[]; spacing?: readonly [number, number, number] | undefined; orientation?: string | undefined },
): Promise<InitialWeights> {
  let createdAt: string;
  let architecture: UnetArchitecture;
  let bestEpoch: number | undefined;
  let model: tf.LayersModel;
  try {
    const manifest = await readModelManifest(bundle);
    const source = manifest.preprocessing;
    const wanted = expected.preprocessing;
    const sameFeed =
      source.normalize === wanted.normalize &&
      source.cropMode === wanted.cropMode &&
      source.channels.length === wanted.channels.length &&
      source.channels.every((channel, k) => channel === wanted.channels[k]);
    if (!sameFeed) {
      throw new TrainingError(`${bundle}: its model was trained on ${describeSettings(source)}; this run has ${describeSettings(wanted)}`);
    }
    // A bundle or a store without a spacing is 1 mm, as BraTS and the Decathlon are.
    const [sourceSpacing, wantedSpacing] = [manifest.spacing ?? DEFAULT_MODEL_SPACING, expected.spacing ?? DEFAULT_MODEL_SPACING];
    if (!sameSpacing(sourceSpacing, wantedSpacing)) {
      throw new TrainingError(`${bundle}: its model learnt scans of ${formatSpacing(sourceSpacing)} mm; this run's slices are ${formatSpacing(wantedSpacing)} mm`);
    }
    // A bundle or a store without an orientation holds LPS slices, as BraTS and the Decathlon store scans.
    const [sourceOrientation, wantedOrientation] = [manifest.orientation ?? DEFAULT_MODEL_ORIENTATION, expected.orientation ?? DEFAULT_MODEL_ORIENTATION];
    if (sourceOrientation !== wantedOrientation) {
      throw new TrainingError(`${bundle}: its model learnt slices in orientation ${sourceOrientation}; this run's slices are ${wantedOrientation}`);
    }
    if (manifest.regions.join(',') !== expected.regions.join(',')) {
      throw new TrainingError(`${bundle}: its model predicts ${manifest.regions.join(', ')}; this run trains ${expected.regions.join(', ')}`);
    }
    createdAt = manifest.createdAt;
    architecture = manifest.model;
    bestEpoch = manifest.training?.bestEpoch;
    model = await loadLayersModel(bundle);
  } catch (error) {
    if (error instanceof ModelBundleError) throw new TrainingError(`cannot start from ${bundle}: ${error.message}`);
    throw error;
  }
  const tensors = model.getWeights().map((weight) => weight.clone());
  model.dispose();
  const hash = createHash('sha256');
  for (const tensor of tensors) {
    const values = tensor.dataSync();
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return {
    bundle,
    tensors,
    architecture,
    record: { source: await sourceName(bundle), createdAt, ...(bestEpoch === undefined ? {} : { bestEpoch }), weightsSha256: hash.digest('hex') },
  };
}

/**
 * Sets `model`'s weights to the source's and disposes the source tensors.
 * @throws {TrainingError} (after disposing them) when the number or the shapes of the weights differ: another
 *   filter count, depth, upsampling or normalisation layer, or another input size.
 */
export function applyInitialWeights(model: tf.LayersModel, initial: InitialWeights): void {
  try {
    const targets = model.getWeights();
    if (targets.length !== initial.tensors.length) {
      throw new TrainingError(`${initial.bundle}: its model has ${initial.tensors.length} weight tensors, this U-Net ${targets.length}; start from a bundle of the same architecture`);
    }
    targets.forEach((target, k) => {
      const source = initial.tensors[k]!;
      if (source.shape.join('x') !== target.shape.join('x')) {
        throw new TrainingError(
          `${initial.bundle}: weight ${k + 1} (${model.weights[k]?.originalName ?? '?'}) has shape [${source.shape.join(', ')}] there and [${target.shape.join(', ')}] in this U-Net; start from a bundle of the same architecture`,
        );
      }
    });
    model.setWeights(initial.tensors);
  } finally {
    tf.dispose(initial.tensors);
  }
}
