// A registry on loopback that serves packed tarballs, and nothing else: `npm install` of those packages by name
// works as it does from npm, and none of them can come from anywhere else (point their scope here). Used by the
// tarball test and the install bench.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

/**
 * Serves each tarball of `packed` (package name → .tgz path) at its name, with the package.json it holds as the
 * version's manifest and its sha512 as the integrity npm checks.
 * @param {ReadonlyMap<string, string>} packed
 * @returns {Promise<{ url: string, close: () => Promise<void> }>}
 */
export async function startTarballRegistry(packed) {
  const manifests = new Map();
  for (const [name, tarball] of packed) {
    manifests.set(name, JSON.parse(execFileSync('tar', ['xzf', tarball, '-O', 'package/package.json'], { encoding: 'utf8' })));
  }
  const server = http.createServer((request, response) => {
    // One request per connection: a client that reuses a kept-alive socket just as the server's idle timer closes it
    // gets ECONNRESET ("socket hang up"), and the installs run with no retries.
    response.setHeader('connection', 'close');
    const url = new URL(request.url ?? '/', 'http://registry');
    if (url.pathname.startsWith('/-/')) {
      const file = [...packed.values()].find((tarball) => path.basename(tarball) === decodeURIComponent(url.pathname.slice(3)));
      if (file === undefined) return void response.writeHead(404).end();
      return void response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(file));
    }
    const name = decodeURIComponent(url.pathname.slice(1));
    const manifest = manifests.get(name);
    if (manifest === undefined) return void response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    const tarball = packed.get(name);
    const dist = {
      tarball: `http://${request.headers.host}/-/${encodeURIComponent(path.basename(tarball))}`,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
    };
    const body = { name, 'dist-tags': { latest: manifest.version }, versions: { [manifest.version]: { ...manifest, dist } } };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
}
