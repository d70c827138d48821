// Development only: when @brats/io runs from its TypeScript sources (tests), a worker thread cannot load
// .ts files by itself (Node 20 has no type stripping), so this bootstrap installs a loader that transpiles
// them with the TypeScript compiler, then loads the worker module. Built packages never use it.
import { register } from 'node:module';
import { workerData } from 'node:worker_threads';

register('./typescript-hooks.mjs', import.meta.url);
await import(workerData.entry);
