/**
 * Which engine runs a bundle: `tfjs` (always installed), `onnxruntime` or `openvino` (from
 * @brats/ncs2-runtime), or `auto`, which prefers the runtime engines when the bundle has an exported model.
 */
import { ModelBundleError, readModelManifest } from '@brats/io';
import { EngineUnavailableError, createEngine } from '@brats/ncs2-runtime';
import { UsageError } from './errors.js';
import { TfjsEngine, type SliceRunner } from '@brats/unet';

/** Engine names the commands accept. */
export const ENGINE_CHOICES = ['auto', 'tfjs', 'onnxruntime', 'openvino'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** A loaded engine and why it was chosen. */
export interface OpenedEngine {
  runner: SliceRunner & { dispose(): Promise<void> };
  name: string;
  device: string;
  reason: string;
}

/**
 * Creates and loads the engine for `bundle`.
 * @throws {ModelBundleError} for a bad bundle; the engines' errors when a named engine cannot run here.
 */
export async function openEngine(
  bundle: string,
  choice: EngineChoice,
  options: { device?: string; threads?: number; runtimeOnly?: boolean } = {},
): Promise<OpenedEngine> {
  const manifest = await readModelManifest(bundle);
  if (options.runtimeOnly === true) {
    if (choice === 'tfjs') throw new UsageError("--engine tfjs is not a runtime engine: use brats predict, or --engine auto, onnxruntime or openvino");
    if (manifest.files.onnx === undefined) throw new ModelBundleError(bundle, 'has no model.onnx for the runtime engines; run brats export first');
  }
  let fallback = '';
  if (choice === 'onnxruntime' || choice === 'openvino' || (choice === 'auto' && manifest.files.onnx !== undefined)) {
    const engineOptions = { ...(options.device === undefined ? {} : { device: options.device }), ...(options.threads === undefined ? {} : { threads: options.threads }) };
    try {
      const selection = await createEngine(choice, engineOptions);
      await selection.engine.load(bundle);
      return { runner: selection.engine, name: selection.engine.name, device: selection.engine.device, reason: selection.reason };
    } catch (error) {
      // Only auto may fall back, and only when no runtime engine is installed; a named engine's failure stands.
      if (choice !== 'auto' || options.runtimeOnly === true || !(error instanceof EngineUnavailableError)) throw error;
      fallback = `no runtime engine can run here (${error.message})`;
    }
  }
  const engine = new TfjsEngine();
  await engine.load(bundle);
  const reason =
    choice === 'tfjs'
      ? `engine 'tfjs' was asked for (backend ${engine.device}: ${engine.backend?.reason ?? ''})`
      : `auto: tfjs on ${engine.device}, because ${fallback || 'the bundle has no model.onnx (run brats export for the faster engines)'}`;
  return { runner: engine, name: 'tfjs', device: engine.device, reason };
}
