import os from 'node:os';
import { defineConfig } from 'vitest/config';

// One run over every package and app; each has its own vitest.config.ts (a project).
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    // At least two test files at a time. Vitest's default in a run is one worker fewer than the CPUs: a single file at
    // a time on a 2-core machine, while much of this suite waits on child processes (npm and pnpm installs, servers, a
    // browser, image builds). On a clean clone on 2 cores, beside a training run: 718 s instead of 1064 s, the same
    // results. Larger machines keep the default.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
