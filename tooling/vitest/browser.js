// Browser test tools shared by the viewer tests and benches: Debian Chromium driven by playwright-core, and a
// loopback static host that applies a site's `_headers` file (as Netlify or Cloudflare Pages do) and records
// every request it answers.
import { existsSync, promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export const CHROMIUM = process.env.BRATS_CHROMIUM ?? '/usr/bin/chromium';

/** Flags of a reproducible, offline headless Chromium; SwiftShader gives WebGL2 without a GPU. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

export function hasChromium() {
  return existsSync(CHROMIUM);
}

/** Starts Chromium with a fresh profile folder (playwright passes it as --user-data-dir). */
export async function launchChromium(profileDir, options = {}) {
  // Loaded lazily so that a machine without Chromium never loads playwright-core.
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
    ...options,
  });
}

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** The `/*` block of a `_headers` file as [name, value] pairs. */
async function readHeadersFile(root) {
  const text = await fs.readFile(path.join(root, '_headers'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => /^\s+\S+:/.test(line))
    .map((line) => {
      const at = line.indexOf(':');
      return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
    });
}

/**
 * Serves the folder `root` on 127.0.0.1 (any free port). `headers: false` leaves out `_headers` (a plain host).
 * Resolves to { url, requests, close() }: `requests` lists { method, url, bodyBytes, body } of every request.
 */
export async function serveStatic(root, options = {}) {
  const headers = options.headers === false ? [] : await readHeadersFile(root);
  const requests = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: request.method, url: request.url, bodyBytes: body.length, body });
      const pathname = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
      const file = path.join(root, pathname.endsWith('/') ? `${pathname}index.html` : pathname);
      if (request.method !== 'GET' || !file.startsWith(root) || !existsSync(file)) {
        response.writeHead(request.method === 'GET' ? 404 : 405).end();
        return;
      }
      response.writeHead(200, { 'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', ...Object.fromEntries(headers) });
      fs.readFile(file).then((bytes) => response.end(bytes), () => response.writeHead(500).end());
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
