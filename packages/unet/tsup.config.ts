import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // One JavaScript build for every entry, so that the two public entries share their modules (one registry, one
    // TrainingError class). The gradient worker is its own entry: worker threads load it by path.
    entry: { index: 'src/index.ts', tf: 'src/tf.ts', 'gradient-worker': 'src/parallel/gradient-worker.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  // Declarations per public entry, each on its own: the main entry's must not reach TensorFlow.js's types through a
  // chunk shared with `@brats/unet/tf`.
  { entry: { index: 'src/index.ts' }, format: ['esm'], dts: { only: true }, clean: false, target: 'node20' },
  { entry: { tf: 'src/tf.ts' }, format: ['esm'], dts: { only: true }, clean: false, target: 'node20' },
]);
