import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';
import { startServeProcess } from '../../test/serve-process.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/bin.js');
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-serve-'));
  const bundle = path.join(dir, 'wt');
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats serve', () => {
  it.skipIf(!existsSync(BIN))(`serves the API until SIGTERM, then exits 0${existsSync(BIN) ? '' : ' (skipped: build the CLI first)'}`, async () => {
    const server = await startServeProcess(process.execPath, [BIN, 'serve', '--model', path.join(dir, 'wt'), '--port', '0', '--data-dir', path.join(dir, 'data'), '--engine', 'tfjs', '--quiet']);
    const { url } = server;
    try {
      expect(server.stdout()).toMatch(/^brats server: http:\/\/127\.0\.0\.1:\d+ \(engine tfjs on /m);
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const model = (await (await fetch(`${url}/v1/model`)).json()) as { manifest: { regions: string[] }; engine: { name: string } };
      expect(model.manifest.regions).toEqual(['WT']);
      expect(model.engine.name).toBe('tfjs');
      expect(server.stdout()).toContain(`data: ${path.join(dir, 'data')}`);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toContain('stopping: waiting for running jobs');
    // The data folder holds the job store.
    expect(await fs.readdir(path.join(dir, 'data'))).toEqual(['jobs']);
  });

  it.each([
    // A --model that names neither a folder nor an installed model package is a mistyped argument.
    [['serve', '--model', 'no-such-bundle', '--port', '0'], 1, '--model no-such-bundle: no such folder, and no installed package of that name'],
    [['serve', '--model', './no-such-bundle', '--port', '0'], 2, 'no-such-bundle'],
    [['serve', '--model', 'no-such-bundle', '--port', '70000'], 1, '--port must be an integer in [0, 65535]'],
  ])('brats %j exits %i', async (argv, code, text) => {
    const result = await runCaptured(argv);
    expect(result.code).toBe(code);
    expect(result.stderr).toContain(text);
  });
});
