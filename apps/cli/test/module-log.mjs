// Preload (node --import) that records every module a process loads, ES modules and CommonJS alike, into the
// file named by BRATS_MODULE_LOG, one resolved URL or path per line. The tests use it to prove from the real
// module list (not from a mock) which packages a command loads.
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';

const log = process.env.BRATS_MODULE_LOG;
if (log !== undefined) {
  // ES modules: a resolve hook, which runs on the loader thread and appends each URL it resolves.
  register('./module-log-hooks.mjs', import.meta.url, { data: { log } });
  // CommonJS: every require() in the main thread (native addons and their CommonJS wrappers included).
  const load = Module._load;
  Module._load = function recordedLoad(request, parent, isMain) {
    try {
      appendFileSync(log, `${Module._resolveFilename(request, parent, isMain)}\n`);
    } catch {
      appendFileSync(log, `${request}\n`);
    }
    return load.apply(this, arguments);
  };
}
