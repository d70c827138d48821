#!/usr/bin/env node
import module from 'node:module';

// Node.js 22 and later keep V8's compiled code of the modules a process loads in a cache folder (the system's
// temporary folder, or NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns it off), so that each later start skips
// compiling them: `brats infer --help` 114 → 93 ms (median of 5) on Node 22 here. Node 20 has no such cache (the
// call is absent). It must come before the CLI's own modules load, so they are imported here, after it.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
const { runCli } = await import('./index.js');
process.exitCode = await runCli(process.argv.slice(2));
