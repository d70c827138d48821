// Test fixtures for the fetch module: a loopback HTTP server and tar archives built in code. Not exported
// from the package; tests import this file directly.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { create, Header } from 'tar';
import { createVolume } from '../volume.js';
import { writeNifti } from '../nifti/write.js';

/** How the test server answers one path. */
export type Route =
  | {
      kind: 'file';
      body: Uint8Array;
      /** Answer Range requests with 206 (default true); false answers 200 with the whole body. */
      honourRange?: boolean;
      /** On the first request only, destroy the socket after this many body bytes. */
      dropFirstAfter?: number;
    }
  | { kind: 'redirect'; location: string }
  | { kind: 'status'; status: number };

/** A request the test server saw. */
export interface SeenRequest {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
  status: number;
}

/** A running loopback server: `url(path)`, the requests it saw, and `close()`. */
export interface TestServer {
  url(pathname: string): string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

function serveFile(route: Extract<Route, { kind: 'file' }>, request: IncomingMessage, response: ServerResponse, first: boolean): number {
  const total = route.body.byteLength;
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
  let start = 0;
  response.setHeader('etag', '"fixture-1"');
  response.setHeader('accept-ranges', 'bytes');
  if (range !== null && route.honourRange !== false) {
    start = Number(range[1]);
    if (start >= total) {
      response.writeHead(416, { 'content-range': `bytes */${total}` });
      response.end();
      return 416;
    }
    response.writeHead(206, { 'content-range': `bytes ${start}-${total - 1}/${total}`, 'content-length': String(total - start) });
  } else {
    response.writeHead(200, { 'content-length': String(total) });
  }
  const body = route.body.subarray(start);
  if (first && route.dropFirstAfter !== undefined) {
    response.write(body.subarray(0, route.dropFirstAfter), () => setTimeout(() => request.socket.destroy(), 20));
    return response.statusCode;
  }
  response.end(body);
  return response.statusCode;
}

/** Starts an HTTP server on 127.0.0.1 (port chosen by the system) serving `routes`. */
export async function startTestServer(routes: Record<string, Route>): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const counts = new Map<string, number>();
  const server = createServer((request, response) => {
    const pathname = (request.url ?? '/').split('?')[0]!;
    const count = (counts.get(pathname) ?? 0) + 1;
    counts.set(pathname, count);
    const route = routes[pathname];
    let status = 404;
    if (route === undefined) {
      response.writeHead(404).end('not found');
    } else if (route.kind === 'redirect') {
      status = 302;
      response.writeHead(302, { location: route.location }).end();
    } else if (route.kind === 'status') {
      status = route.status;
      response.writeHead(route.status).end('no');
    } else {
      status = serveFile(route, request, response, count === 1);
    }
    requests.push({ path: pathname, range: request.headers.range, ifRange: request.headers['if-range'] as string | undefined, status });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (pathname) => `http://127.0.0.1:${port}${pathname}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}

/** MD5 of bytes in lower-case hex. */
export function md5Of(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}

/** One entry of a hand-built tar (see {@link buildTar}). */
export interface TarEntrySpec {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO';
  body?: string;
  linkpath?: string;
}

/**
 * Builds a ustar archive by hand from node-tar's header encoder, because node-tar's packer strips the
 * absolute paths, `..` segments and outside links the refusal tests need.
 */
export function buildTar(entries: readonly TarEntrySpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const spec of entries) {
    const type = spec.type ?? 'File';
    const body = Buffer.from(type === 'File' ? (spec.body ?? '') : '');
    const header = new Header({
      path: spec.path,
      type,
      size: body.byteLength,
      mode: type === 'Directory' ? 0o755 : 0o644,
      mtime: new Date(1_700_000_000_000),
      uid: 1000,
      gid: 1000,
      ...(spec.linkpath === undefined ? {} : { linkpath: spec.linkpath }),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.byteLength > 0) blocks.push(body, Buffer.alloc((512 - (body.byteLength % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * Writes a tiny valid Decathlon Task01 tree under `root/Task01_BrainTumour`: dataset.json, one 4D image
 * (8x8x4x4 float32) with its label (8x8x4 uint8, labels 0-3), one test image.
 */
export async function writeTinyDecathlon(root: string): Promise<string> {
  const task = path.join(root, 'Task01_BrainTumour');
  const image = new Float32Array(8 * 8 * 4 * 4).map((_, index) => (index % 97) / 7);
  const label = new Uint8Array(8 * 8 * 4).map((_, index) => index % 4);
  await writeNifti(path.join(task, 'imagesTr', 'BRATS_001.nii.gz'), createVolume('float32', image, [8, 8, 4, 4]));
  await writeNifti(path.join(task, 'labelsTr', 'BRATS_001.nii.gz'), createVolume('uint8', label, [8, 8, 4]));
  await writeNifti(path.join(task, 'imagesTs', 'BRATS_485.nii.gz'), createVolume('float32', image.slice(), [8, 8, 4, 4]));
  const datasetJson = {
    name: 'BRATS',
    description: 'Gliomas segmentation tumour and oedema in on brain images',
    reference: 'https://www.med.upenn.edu/sbia/brats2017.html',
    licence: 'CC-BY-SA 4.0',
    release: '2.0 04/05/2018',
    tensorImageSize: '4D',
    modality: { 0: 'FLAIR', 1: 'T1w', 2: 't1gd', 3: 'T2w' },
    labels: { 0: 'background', 1: 'edema', 2: 'non-enhancing tumor', 3: 'enhancing tumour' },
    numTraining: 1,
    numTest: 1,
    training: [{ image: './imagesTr/BRATS_001.nii.gz', label: './labelsTr/BRATS_001.nii.gz' }],
    test: ['./imagesTs/BRATS_485.nii.gz'],
  };
  await fs.writeFile(path.join(task, 'dataset.json'), JSON.stringify(datasetJson, null, 2));
  return task;
}

/** A tar (made by node-tar's packer) of a tiny Decathlon Task01 tree; see {@link writeTinyDecathlon}. */
export async function makeTinyDecathlonTar(workDir: string): Promise<Buffer> {
  const source = path.join(workDir, 'tar-source');
  await writeTinyDecathlon(source);
  const file = path.join(workDir, 'Task01_BrainTumour.source.tar');
  await create({ file, cwd: source, portable: true }, ['Task01_BrainTumour']);
  return fs.readFile(file);
}
