/**
 * Builds the browser viewer: `viewer/app.ts` with niivue and the @brats browser entries bundled into one ES module
 * (no CDN, no requests beyond the page's own origin), plus `index.html` and `style.css`, laid out as the site is
 * served (`index.html`, `viewer/app.js`, `viewer/style.css`). ONNX Runtime Web stays outside the bundle: the page
 * loads it from `viewer/ort/` (see static-site.ts). Used by the package build and by the browser tests.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VIEWER_SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'viewer');

/**
 * Writes `index.html`, `viewer/style.css` and `viewer/app.js` (minified, with a source map) into `outDir`.
 * @throws the bundler's error when the viewer source does not compile.
 */
export async function buildViewer(outDir: string): Promise<void> {
  // esbuild is a build-time tool (a dev dependency): loaded only when the viewer is built.
  const { build } = await import('esbuild');
  await fs.mkdir(path.join(outDir, 'viewer'), { recursive: true });
  await build({
    entryPoints: [path.join(VIEWER_SOURCE, 'app.ts')],
    outfile: path.join(outDir, 'viewer', 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'silent',
  });
  await fs.copyFile(path.join(VIEWER_SOURCE, 'index.html'), path.join(outDir, 'index.html'));
  await fs.copyFile(path.join(VIEWER_SOURCE, 'style.css'), path.join(outDir, 'viewer', 'style.css'));
}
