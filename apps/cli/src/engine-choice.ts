/**
 * Which engine runs a bundle: the runtime engines of @brats/ncs2-runtime (OpenVINO, ONNX Runtime) and the
 * TensorFlow.js engine of @brats/unet, registered here at the lowest priority so that `auto` uses it only when
 * no runtime engine can run the bundle (not installed, or no model.onnx yet).
 */
import { ModelBundleError, readModelManifest } from '@brats/io';
import { EngineUnavailableError, openBundleEngine, registerEngine, type InferenceEngine } from '@brats/ncs2-runtime';
import { tfjsEngineFactory } from '@brats/unet';
import { UsageError } from './errors.js';

registerEngine('tfjs', tfjsEngineFactory, 0);

/** Engine names the commands accept. */
export const ENGINE_CHOICES = ['auto', 'tfjs', 'onnxruntime', 'openvino'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** A loaded engine and why it was chosen. */
export interface OpenedEngine {
  runner: InferenceEngine;
  name: string;
  device: string;
  reason: string;
}

/**
 * Creates the engine for `bundle` and loads it. With `runtimeOnly` (`brats infer`) the bundle must have an
 * exported model and the engine must be a runtime engine.
 * @throws {UsageError} for `tfjs` with `runtimeOnly`; {@link ModelBundleError} for a bad bundle or one without
 *   model.onnx under `runtimeOnly`; {@link EngineUnavailableError} when the engine cannot run here.
 */
export async function openEngine(
  bundle: string,
  choice: EngineChoice,
  options: { device?: string; threads?: number; runtimeOnly?: boolean } = {},
): Promise<OpenedEngine> {
  const manifest = await readModelManifest(bundle);
  if (options.runtimeOnly === true) {
    if (choice === 'tfjs') throw new UsageError('--engine tfjs is not a runtime engine: use brats predict, or --engine auto, onnxruntime or openvino');
    if (manifest.files.onnx === undefined) throw new ModelBundleError(bundle, 'has no model.onnx for the runtime engines; run brats export first');
  }
  const selection = await openBundleEngine(bundle, choice, {
    ...(options.device === undefined ? {} : { device: options.device }),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  });
  if (options.runtimeOnly === true && selection.engine.name === 'tfjs') {
    await selection.engine.dispose();
    throw new EngineUnavailableError('auto', 'neither OpenVINO nor ONNX Runtime can run here', 'Install onnxruntime-node or openvino-node');
  }
  return { runner: selection.engine, name: selection.engine.name, device: selection.engine.device, reason: selection.reason };
}
