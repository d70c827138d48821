/** Absolute path of the model bundle folder (give it to `--model`, `readModelManifest` or `openBundleEngine`). */
export declare const bundlePath: string;
