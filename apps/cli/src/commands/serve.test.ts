import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

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
    const child = spawn(process.execPath, [BIN, 'serve', '--model', path.join(dir, 'wt'), '--port', '0', '--data-dir', path.join(dir, 'data'), '--engine', 'tfjs', '--quiet'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', () => {
          const match = /^brats server: (http:\/\/127\.0\.0\.1:\d+) \(engine tfjs on /m.exec(stdout);
          if (match !== null) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`brats serve exited with ${code} before listening: ${stdout}`)));
      });
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const model = (await (await fetch(`${url}/v1/model`)).json()) as { manifest: { regions: string[] }; engine: { name: string } };
      expect(model.manifest.regions).toEqual(['WT']);
      expect(model.engine.name).toBe('tfjs');
      expect(stdout).toContain(`data: ${path.join(dir, 'data')}`);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain('stopping: waiting for running jobs');
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
