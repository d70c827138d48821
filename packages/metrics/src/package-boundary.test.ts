/**
 * The promise of this package: installed alone, it pulls nothing (no HDF5, fonts or archives through @brats/io),
 * and its code runs anywhere, a browser included, because it imports no Node module.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runtime dependencies this package may have. Empty: grow it only for a small pure package, never for @brats/*. */
const ALLOWED_RUNTIME_DEPENDENCIES: readonly string[] = [];

/** Workspace packages allowed as development dependencies: the shared tooling, never a package of the toolkit. */
const ALLOWED_WORKSPACE_DEV_DEPENDENCIES = ['@brats/eslint-config', '@brats/tsconfig', '@brats/vitest-config'];

interface PackageJson {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const manifest = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as PackageJson;

/** The module specifiers a TypeScript file imports or re-exports, statically or dynamically. */
function importedSpecifiers(source: string): string[] {
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;
  return [...source.matchAll(pattern)].map((match) => match[1]!);
}

const nodeBuiltins = new Set(builtinModules);

describe('package boundary', () => {
  it('declares no runtime dependency outside the allow-list, and none on another @brats package', () => {
    const runtime = {
      ...manifest.dependencies,
      ...manifest.peerDependencies,
      ...manifest.optionalDependencies,
    };
    expect(Object.keys(runtime).filter((name) => name.startsWith('@brats/'))).toEqual([]);
    expect(Object.keys(runtime).filter((name) => !ALLOWED_RUNTIME_DEPENDENCIES.includes(name))).toEqual([]);
  });

  it('develops against the shared tooling only', () => {
    const workspace = Object.keys(manifest.devDependencies ?? {}).filter((name) => name.startsWith('@brats/'));
    expect(workspace.filter((name) => !ALLOWED_WORKSPACE_DEV_DEPENDENCIES.includes(name))).toEqual([]);
  });

  const sources = readdirSync(path.join(packageRoot, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .sort();

  it('finds the sources it checks', () => {
    expect(sources).toContain('index.ts');
    expect(sources).toContain('evaluate-cases.ts');
  });

  it.each(sources)('%s imports no Node module and no other @brats package', (file) => {
    const specifiers = importedSpecifiers(readFileSync(path.join(packageRoot, 'src', file), 'utf8'));
    const offending = specifiers.filter(
      (specifier) => specifier.startsWith('node:') || nodeBuiltins.has(specifier) || specifier.startsWith('@brats/'),
    );
    expect(offending).toEqual([]);
    // Only relative imports remain: the package has no dependency to import from.
    expect(specifiers.filter((specifier) => !specifier.startsWith('./') && !specifier.startsWith('../'))).toEqual([]);
  });

  it('recognises the imports it forbids', () => {
    expect(importedSpecifiers("import { readFile } from 'node:fs';\nexport * from '@brats/io';\nconst z = await import(\"zlib\");")).toEqual([
      'node:fs',
      '@brats/io',
      'zlib',
    ]);
  });
});
