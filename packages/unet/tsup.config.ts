import { defineConfig } from 'tsup';

export default defineConfig({
  // The gradient worker is its own entry: worker threads load it by path (dist/gradient-worker.js).
  entry: { index: 'src/index.ts', 'gradient-worker': 'src/parallel/gradient-worker.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
