/**
 * The model bundle: a folder that every step after training passes on. Its manifest `brats-model.json`
 * says how the model was trained and how to feed it, so whoever loads a bundle never guesses.
 */
import path from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { MODEL_MANIFEST_FILE, ModelBundleError, parseModelManifest, type ModelManifest } from './manifest.js';
import { MAX_JSON_BYTES, readRegularFile } from './safe-read.js';

export * from './manifest.js';

/**
 * Reads and validates the manifest of a bundle folder (or of the manifest file itself).
 * @throws {ModelBundleError} when the folder or manifest is missing, not JSON, or of another format or version.
 */
export async function readModelManifest(bundle: string): Promise<ModelManifest> {
  const file = bundle.endsWith('.json') ? bundle : path.join(bundle, MODEL_MANIFEST_FILE);
  const read = await readRegularFile(file, MAX_JSON_BYTES);
  if (!read.ok) {
    throw new ModelBundleError(file, read.reason === 'file not found' ? 'no model manifest here; a model bundle folder holds brats-model.json' : read.reason);
  }
  const text = read.bytes.toString('utf8');
  return parseModelManifest(text, file);
}

/** Writes a manifest into a bundle folder atomically (the folder is created if needed). */
export async function writeModelManifest(bundle: string, manifest: ModelManifest): Promise<void> {
  await writeFileAtomic(path.join(bundle, MODEL_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Absolute path of a file named in a bundle's manifest. */
export function bundlePath(bundle: string, relative: string): string {
  return path.resolve(bundle, relative);
}
