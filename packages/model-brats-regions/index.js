// The bundle is this package's folder: brats-model.json and the model files beside this file.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the model bundle folder (give it to `--model`, `readModelManifest` or `openBundleEngine`). */
export const bundlePath = path.dirname(fileURLToPath(import.meta.url));
