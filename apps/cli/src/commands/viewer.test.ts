import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseModelManifest, readModelManifest } from '@brats/io';
import { repositoryRoot } from '@brats/vitest-config/fixtures';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

const BUNDLE = path.join(repositoryRoot, 'models', 'brats2018-wt-unet');
const viewerBuilt = existsSync(path.join(repositoryRoot, 'apps/server/dist/viewer/index.html'));

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-viewer-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe.skipIf(!viewerBuilt)(`brats viewer --out${viewerBuilt ? '' : ' (skipped: build @brats/server first: pnpm build)'}`, () => {
  it('writes the static site: page, ONNX Runtime Web, the ONNX model byte for byte, and the isolation headers', async () => {
    const out = path.join(dir, 'site');
    const result = await runCaptured(['viewer', '--out', out, '--model', BUNDLE]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^viewer: .*site \(\d+ files, \d+\.\d MB; model from /m);
    const files = (await fs.readdir(out, { recursive: true })).map(String).filter((name) => !name.endsWith('viewer') && !name.endsWith('ort') && !name.endsWith('model')).sort();
    expect(files).toEqual(
      [
        '_headers',
        'index.html',
        'model/brats-model.json',
        'model/model.onnx',
        'viewer/app.js',
        'viewer/app.js.map',
        'viewer/ort/ort-wasm-simd-threaded.jsep.mjs',
        'viewer/ort/ort-wasm-simd-threaded.jsep.wasm',
        'viewer/ort/ort.min.mjs',
        'viewer/style.css',
      ].map((name) => name.split('/').join(path.sep)),
    );
    expect((await fs.readFile(path.join(out, 'model/model.onnx'))).equals(await fs.readFile(path.join(BUNDLE, 'model.onnx')))).toBe(true);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'model/brats-model.json'), 'utf8')) as { files: Record<string, string>; regions: string[] };
    expect(manifest.files).toEqual({ onnx: 'model.onnx' });
    expect(manifest.regions).toEqual(['WT']);
    // The bundle has an INT8 model, which the site does not carry: its record goes with it, and the page's reader
    // (parseModelManifest) takes the served manifest.
    expect((await readModelManifest(BUNDLE)).quantization).toBeDefined();
    expect(parseModelManifest(JSON.stringify(manifest), 'site').quantization).toBeUndefined();
    expect(await fs.readFile(path.join(out, 'index.html'), 'utf8')).toContain('<body data-site="static">');
    const headers = await fs.readFile(path.join(out, '_headers'), 'utf8');
    expect(headers).toMatch(/^\/\*\n {2}content-security-policy: default-src 'self';/);
    expect(headers).toContain('  cross-origin-opener-policy: same-origin\n');
    expect(headers).toContain('  cross-origin-embedder-policy: require-corp\n');
    // No partial folder is left beside it.
    expect((await fs.readdir(dir)).filter((name) => name.includes('partial'))).toEqual([]);
  });

  it('creates the folders above --out', async () => {
    const out = path.join(dir, 'deep', 'er', 'site');
    const result = await runCaptured(['viewer', '--out', out, '--model', BUNDLE]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(path.join(out, 'index.html'))).toBe(true);
  });

  it('refuses a folder with files unless --force, and then replaces it whole', async () => {
    const out = path.join(dir, 'occupied');
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, 'notes.txt'), 'keep me');
    const refused = await runCaptured(['viewer', '--out', out, '--model', BUNDLE]);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toBe(`error: --out ${out}: exists and is not empty; choose another folder or add --force to replace it`);
    expect(await fs.readFile(path.join(out, 'notes.txt'), 'utf8')).toBe('keep me');
    const forced = await runCaptured(['viewer', '--out', out, '--model', BUNDLE, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(path.join(out, 'notes.txt'))).toBe(false);
    expect(existsSync(path.join(out, 'model', 'model.onnx'))).toBe(true);
  });

  it('needs --out, and a bundle with an ONNX model (exit 2, nothing written)', async () => {
    const missing = await runCaptured(['viewer', '--model', BUNDLE]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('error: --out <dir> is required: the folder to write the site into');
    const tfjsOnly = path.join(dir, 'tfjs-only');
    await writeUntrainedBundle(tfjsOnly, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0, seed: 1 });
    const out = path.join(dir, 'no-onnx-site');
    const refused = await runCaptured(['viewer', '--out', out, '--model', tfjsOnly]);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim()).toBe(`error: ${tfjsOnly}: has no ONNX model (files.onnx in brats-model.json), which the browser runs; export it first with \`brats export\``);
    expect(existsSync(out)).toBe(false);
  });
});
