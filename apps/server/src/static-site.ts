/**
 * The viewer as a site of its own: the built page, ONNX Runtime Web's browser files and the model's ONNX file,
 * laid out so that any static host (or a local folder served over http) runs in-browser segmentation with no
 * server of ours behind it. The server serves the same files at the same paths.
 */
import { existsSync, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgumentError, ModelBundleError, bundlePath, readModelManifest, type ModelManifest } from '@brats/io';

/**
 * ONNX Runtime Web's browser build with WebGPU and WebAssembly (its `jsep` runtime), loaded by the page as files
 * of its own origin: its workers start from these files, so they cannot be bundled into the page's script.
 */
export const ORT_BROWSER_FILES = ['ort.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'] as const;

/** Where the page finds them, relative to the site's root. */
export const ORT_SITE_DIR = 'viewer/ort';
/** Where the page finds the model (`brats-model.json` and its ONNX file), relative to the site's root. */
export const MODEL_SITE_DIR = 'model';

/**
 * Headers every file of the site is served with. Cross-origin isolation (COOP + COEP) gives the page shared
 * memory, hence WebAssembly threads; the policy keeps every request on the site's own origin.
 */
export const SITE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; worker-src 'self' blob:; script-src 'self' 'wasm-unsafe-eval'; frame-ancestors 'none'",
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Content types of the site's files; `application/wasm` lets the browser compile while it downloads. */
export const SITE_CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** The folder of onnxruntime-web's browser files (resolved through the package's exports). */
export function ortBrowserDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm'));
}

/** The viewer this package built (`dist/viewer`; src/ and dist/ both sit one level below the package root). */
export function packageViewerDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'viewer');
}

/**
 * The manifest as the site serves it: only the FP32 ONNX file is there, under its own name, so the record of an INT8
 * model that the site does not carry goes too.
 */
export function siteManifest(manifest: ModelManifest): ModelManifest {
  const { quantization: _notServed, ...served } = manifest;
  return { ...served, files: { onnx: path.basename(manifest.files.onnx!) } };
}

/** Options of {@link writeStaticViewer}. */
export interface StaticViewerOptions {
  /** The model bundle whose ONNX file the site runs. */
  bundle: string;
  /** The built viewer to copy (default: this package's `dist/viewer`). */
  viewerDir?: string;
  /** Replace `outDir` when it exists and is not empty (default false: refuse). */
  force?: boolean;
}

/** What {@link writeStaticViewer} wrote. */
export interface StaticViewerSite {
  outDir: string;
  /** Every file, relative to `outDir`, with its size. */
  files: { path: string; bytes: number }[];
  bytes: number;
}

async function listFiles(root: string, dir = root): Promise<{ path: string; bytes: number }[]> {
  const found: { path: string; bytes: number }[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listFiles(root, full)));
    else found.push({ path: path.relative(root, full).split(path.sep).join('/'), bytes: (await fs.stat(full)).size });
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/** `_headers` (Netlify, Cloudflare Pages): the site's headers for hosts that read the file. */
function headersFile(): string {
  return ['/*', ...Object.entries(SITE_HEADERS).map(([name, value]) => `  ${name}: ${value}`), ''].join('\n');
}

/**
 * Writes the viewer as a static site into `outDir`: `index.html`, `viewer/` (the page's script and style),
 * `viewer/ort/` (ONNX Runtime Web), `model/` (manifest and ONNX file) and `_headers`. The site is assembled in a
 * sibling folder and renamed into place, so a failed write leaves no half site.
 * @throws {ModelBundleError} when the bundle has no ONNX model; {ArgumentError} when `outDir` holds files and
 *   `force` is not set; an Error when the viewer is not built.
 */
export async function writeStaticViewer(outDir: string, options: StaticViewerOptions): Promise<StaticViewerSite> {
  const out = path.resolve(outDir);
  const manifest = await readModelManifest(options.bundle);
  if (manifest.files.onnx === undefined) {
    throw new ModelBundleError(options.bundle, 'has no ONNX model (files.onnx in brats-model.json), which the browser runs; export it first with `brats export`');
  }
  const viewerDir = options.viewerDir ?? packageViewerDir();
  if (!existsSync(path.join(viewerDir, 'index.html'))) throw new Error(`${viewerDir}: the viewer is not built (index.html missing); run pnpm --filter @brats/server build`);
  const existing = await fs.readdir(out).catch(() => undefined);
  if (existing !== undefined && existing.length > 0 && options.force !== true) {
    throw new ArgumentError('writeStaticViewer', 'outDir', `${out} exists and is not empty; choose another folder or set force to replace it`);
  }

  await fs.mkdir(path.dirname(out), { recursive: true });
  const staging = await fs.mkdtemp(path.join(path.dirname(out), `.${path.basename(out)}.partial-`));
  try {
    await fs.cp(viewerDir, staging, { recursive: true });
    // The page tells the two sites apart by this mark: here there is no server API to call.
    const index = path.join(staging, 'index.html');
    const html = await fs.readFile(index, 'utf8');
    if (!html.includes('<body>')) throw new Error(`${viewerDir}/index.html: no <body> tag to mark as a static site`);
    await fs.writeFile(index, html.replace('<body>', '<body data-site="static">'));
    await fs.mkdir(path.join(staging, ORT_SITE_DIR), { recursive: true });
    for (const name of ORT_BROWSER_FILES) await fs.copyFile(path.join(ortBrowserDir(), name), path.join(staging, ORT_SITE_DIR, name));
    const served = siteManifest(manifest);
    await fs.mkdir(path.join(staging, MODEL_SITE_DIR), { recursive: true });
    await fs.copyFile(bundlePath(options.bundle, manifest.files.onnx), path.join(staging, MODEL_SITE_DIR, served.files.onnx!));
    await fs.writeFile(path.join(staging, MODEL_SITE_DIR, 'brats-model.json'), `${JSON.stringify(served, null, 2)}\n`);
    await fs.writeFile(path.join(staging, '_headers'), headersFile());

    if (existing !== undefined) {
      // --force: the old site moves aside first, and is removed only once the new one is in place.
      const old = `${staging}.old`;
      await fs.rename(out, old);
      await fs.rename(staging, out);
      await fs.rm(old, { recursive: true, force: true });
    } else {
      await fs.rename(staging, out);
    }
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
  const files = await listFiles(out);
  return { outDir: out, files, bytes: files.reduce((sum, file) => sum + file.bytes, 0) };
}
