import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './errors.js';

/** Name of the pretrained bundle that ships in the repository's models/ folder. */
export const PRETRAINED_MODEL = 'brats2018-wt-unet';

/**
 * The bundled pretrained model (models/brats2018-wt-unet beside the apps folder), used when --model is not given.
 * @throws {UsageError} when it is not there (e.g. a CLI installed without the repository).
 */
export async function defaultModelPath(): Promise<string> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.resolve(here, '../../../models', PRETRAINED_MODEL), path.resolve(here, '../../../../models', PRETRAINED_MODEL)]) {
    if (existsSync(path.join(candidate, 'brats-model.json'))) return candidate;
  }
  throw new UsageError(`no --model given and the pretrained bundle models/${PRETRAINED_MODEL} is not installed here`);
}
