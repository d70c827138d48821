import path from 'node:path';
import { defineConfig } from 'tsup';
import { buildViewer } from './src/viewer-build.js';

export default defineConfig({
  entry: ['src/index.ts', 'src/main.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  async onSuccess() {
    await buildViewer(path.resolve('dist/viewer'));
  },
});
