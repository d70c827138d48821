/**
 * @brats/unet (TensorFlow.js) is an optional dependency of the CLI: an inference-only install, such as the edge
 * container, has none. The commands that train or export load it here, when they run, and a missing package
 * becomes one clear line instead of a module-resolution stack.
 */
import type * as Unet from '@brats/unet';
import { UsageError } from './errors.js';

type UnetModule = typeof Unet;

/**
 * Loads @brats/unet for `command`.
 * @throws {UsageError} naming the command and what to install when the package is not installed.
 */
export async function loadTrainingPackage(command: string): Promise<UnetModule> {
  try {
    return await import('@brats/unet');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new UsageError(`brats ${command} needs @brats/unet (TensorFlow.js), which this install does not have: install it with npm install @brats/unet, or run this step where it is installed`);
  }
}
