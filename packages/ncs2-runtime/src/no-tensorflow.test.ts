import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const source = path.dirname(fileURLToPath(import.meta.url));

describe('@brats/ncs2-runtime dependencies', () => {
  it('its benchmarks import neither TensorFlow.js nor @brats/unet', async () => {
    const bench = path.join(source, '..', 'bench');
    const files = (await fs.readdir(bench)).filter((name) => /\.(mjs|js|ts)$/.test(name));
    expect(files).toContain('infer-bench.mjs');
    for (const file of files) expect(await fs.readFile(path.join(bench, file), 'utf8'), file).not.toMatch(/['"]@tensorflow\/|['"]@brats\/unet['"]/);
  });

  it('no source file imports TensorFlow.js (deployment runs without it)', async () => {
    const files = (await fs.readdir(source, { recursive: true })).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));
    // The engines and the whole-scan segmentation path (segment/) are all checked.
    expect(files).toContain(path.join('segment', 'segment-case.ts'));
    const offenders: string[] = [];
    for (const file of files) {
      const text = await fs.readFile(path.join(source, file), 'utf8');
      if (/from ['"]@tensorflow\/|import\(['"]@tensorflow\/|from ['"]@brats\/unet['"]/.test(text)) offenders.push(file);
    }
    expect(offenders).toEqual([]);
  });

  it('does not list TensorFlow.js or @brats/unet among any of its dependencies, dev ones included', async () => {
    const manifest = JSON.parse(await fs.readFile(path.join(source, '..', 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    const declared = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies, ...manifest.devDependencies });
    expect(declared.filter((name) => name.startsWith('@tensorflow/') || name === '@brats/unet')).toEqual([]);
  });
});
