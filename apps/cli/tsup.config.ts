import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // tsup leaves dependencies and peerDependencies external but bundles optionalDependencies: @brats/unet is
  // optional (an inference-only install has none) and must stay a run-time import.
  external: ['@brats/unet', 'openvino-node'],
});
