import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/browser.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // nifti-reader-js (MIT, its notice in NOTICE.md) is built into this package rather than imported at run time: its
  // entry module imports fflate, whose module set-up builds inflate tables (importing @brats/io: 33 → 21 ms here),
  // for gzip code this package never calls (Node's zlib or the browser's DecompressionStream inflate instead).
  // Bundled, only the header code that decode.ts uses is kept.
  noExternal: ['nifti-reader-js'],
});
