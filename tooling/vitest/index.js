// Shared vitest project settings. Tests import workspace packages from their TypeScript
// sources (not dist/), so a change in one package is seen by the tests of another at once.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Maps every `@brats/<name>` workspace package to its `src/index.ts`. */
export const workspaceAliases = {
  // Subpath entries before their package, which would otherwise take them for paths under its index.
  '@brats/io/browser': path.join(root, 'packages/io/src/browser.ts'),
  '@brats/io': path.join(root, 'packages/io/src/index.ts'),
  '@brats/metrics': path.join(root, 'packages/metrics/src/index.ts'),
  // Before '@brats/unet', which would otherwise take '@brats/unet/tf' for a path under its index.
  '@brats/unet/tf': path.join(root, 'packages/unet/src/tf.ts'),
  '@brats/unet': path.join(root, 'packages/unet/src/index.ts'),
  '@brats/ncs2-runtime/browser': path.join(root, 'packages/ncs2-runtime/src/browser.ts'),
  '@brats/ncs2-runtime/ort-prestart': path.join(root, 'packages/ncs2-runtime/src/ort-prestart.ts'),
  '@brats/ncs2-runtime': path.join(root, 'packages/ncs2-runtime/src/index.ts'),
  '@brats/queue': path.join(root, 'packages/queue/src/index.ts'),
  '@brats/server': path.join(root, 'apps/server/src/index.ts'),
};

/**
 * Vitest project options for one workspace package.
 * @param {string} name the project name shown in the summary
 */
export function bratsProject(name) {
  return {
    resolve: { alias: workspaceAliases },
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 120_000,
      hookTimeout: 120_000,
      pool: 'forks',
    },
  };
}
