/**
 * Which engine runs a bundle: the runtime engines of @brats/ncs2-runtime (OpenVINO, ONNX Runtime) and the
 * TensorFlow.js engine of @brats/unet. TensorFlow.js is registered here, once, at the lowest priority and lazily:
 * its code loads only when `auto` finds no runtime engine that can run the bundle (not installed, or no
 * model.onnx yet) or when it is asked for by name, so inference on a runtime engine never loads it.
 */
import { ModelBundleError, readModelManifest } from '@brats/io';
import { EngineUnavailableError, lazyEngineFactory, openBundleEngine, registerEngine, type EngineFactory, type InferenceEngine } from '@brats/ncs2-runtime';
import { UsageError } from './errors.js';

const TFJS_REMEDY = 'Install @brats/unet (npm install @brats/unet) to run TensorFlow.js models, or run brats export on a machine that has it';

registerEngine(
  'tfjs',
  lazyEngineFactory('tfjs', async (): Promise<EngineFactory> => (await import('@brats/unet')).tfjsEngineFactory, TFJS_REMEDY),
  0,
);

/** Engine names the commands accept. */
export const ENGINE_CHOICES = ['auto', 'tfjs', 'onnxruntime', 'onnxruntime-web', 'openvino'] as const;
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
  options: { device?: string; threads?: number; runtimeOnly?: boolean; int8?: boolean } = {},
): Promise<OpenedEngine> {
  const manifest = await readModelManifest(bundle);
  if (options.runtimeOnly === true) {
    if (choice === 'tfjs') throw new UsageError('--engine tfjs is not a runtime engine: use brats predict, or --engine auto, onnxruntime, onnxruntime-web or openvino');
    if (manifest.files.onnx === undefined) throw new ModelBundleError(bundle, 'has no model.onnx for the runtime engines; run brats export first');
  }
  let selection;
  try {
    selection = await openBundleEngine(
      bundle,
      choice,
      {
        ...(options.device === undefined ? {} : { device: options.device }),
        ...(options.threads === undefined ? {} : { threads: options.threads }),
        ...(options.int8 === true ? { int8: true } : {}),
      },
      // brats infer never falls back to TensorFlow.js (and never loads it); nor does INT8, which tfjs cannot run.
      options.runtimeOnly === true || options.int8 === true ? { except: ['tfjs'] } : {},
    );
  } catch (error) {
    if (options.runtimeOnly === true && error instanceof EngineUnavailableError && error.engine === 'auto') {
      throw new EngineUnavailableError('auto', `no runtime engine can run here (${error.reason})`, 'Reinstall @brats/ncs2-runtime (its onnxruntime-web runs everywhere), or install onnxruntime-node or openvino-node', { cause: error });
    }
    throw error;
  }
  return { runner: selection.engine, name: selection.engine.name, device: selection.engine.device, reason: selection.reason };
}
