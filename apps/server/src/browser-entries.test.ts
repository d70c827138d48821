// The browser entries of @brats/io and @brats/ncs2-runtime, as built and published, bundle for a browser: esbuild
// with platform 'browser' fails on any `node:` module (or Node.js built-in) reachable from them.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const built = ['packages/io/dist/browser.js', 'packages/ncs2-runtime/dist/browser.js'].every((file) => existsSync(path.join(root, file)));

describe.skipIf(!built)(`browser entries${built ? '' : ' (skipped: build the packages first)'}`, () => {
  it.each([['@brats/io/browser'], ['@brats/ncs2-runtime/browser']])('%s bundles for a browser with no Node.js module', async (entry) => {
    const { build } = await import('esbuild');
    const result = await build({
      stdin: { contents: `export * from '${entry}';`, resolveDir: path.join(root, 'apps/server'), loader: 'js' },
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      logLevel: 'silent',
      metafile: true,
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((input) => input.startsWith('node:') || /^(fs|path|zlib|os|stream|util)$/.test(input))).toEqual([]);
    // It holds the code that matters: the segmentation path, and the NIfTI decoder (nifti-reader-js's header classes,
    // built into @brats/io), without the gzip code of fflate that nifti-reader-js imports and nothing here calls.
    const code = result.outputFiles[0]!.text;
    if (entry === '@brats/ncs2-runtime/browser') expect(inputs.some((input) => input.includes('ncs2-runtime/dist'))).toBe(true);
    else expect(code).toMatch(/NIFTI1 = class\b[\s\S]*NIFTI2 = class\b/);
    expect(code).not.toMatch(/fflate|decompressSync/);
  });

  it('the main entry of @brats/io does not (it reads files): the check can fail', async () => {
    const { build } = await import('esbuild');
    await expect(
      build({ stdin: { contents: `export * from '@brats/io';`, resolveDir: path.join(root, 'apps/server'), loader: 'js' }, bundle: true, write: false, format: 'esm', platform: 'browser', logLevel: 'silent' }),
    ).rejects.toThrow(/Could not resolve "node:/);
  });
});
