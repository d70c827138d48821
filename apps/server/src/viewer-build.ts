/**
 * Builds the browser viewer: `viewer/app.ts` with niivue bundled into one ES module (no CDN, no requests
 * beyond this server), plus `index.html` and `style.css`. Used by the package build and by the browser test.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VIEWER_SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'viewer');

/**
 * Writes `index.html`, `style.css` and `app.js` (minified, with a source map) into `outDir`.
 * @throws the bundler's error when the viewer source does not compile.
 */
export async function buildViewer(outDir: string): Promise<void> {
  // esbuild is a build-time tool (a dev dependency): loaded only when the viewer is built.
  const { build } = await import('esbuild');
  await fs.mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(VIEWER_SOURCE, 'app.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'silent',
  });
  for (const name of ['index.html', 'style.css']) await fs.copyFile(path.join(VIEWER_SOURCE, name), path.join(outDir, name));
}
