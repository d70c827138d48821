// Test-only helpers shared by every package: where the real sample data lives, and the Debian
// Python used as an independent reference (nibabel, h5py, scipy). Neither is a runtime dependency.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `../shared/data` beside the checkout (or $BRATS_SHARED_DATA), or undefined when absent. */
export function sharedDataDir() {
  const dir = process.env.BRATS_SHARED_DATA ?? path.resolve(repositoryRoot, '../shared/data');
  return existsSync(path.join(dir, 'brats2018-sample')) ? dir : undefined;
}

/** Reason used in the names of tests that skip without the shared data. */
export const NO_SHARED_DATA = 'skipped: ../shared/data (real BraTS samples) is not present';

const pythonCache = new Map();

/**
 * The Debian system python3 when it can import every module in `modules`, else undefined.
 * @param {string[]} modules e.g. ['nibabel', 'numpy']
 */
export function referencePython(modules) {
  const key = modules.join(',');
  if (pythonCache.has(key)) return pythonCache.get(key);
  let found;
  for (const candidate of ['/usr/bin/python3']) {
    try {
      execFileSync(candidate, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
      found = candidate;
      break;
    } catch {
      // not usable
    }
  }
  pythonCache.set(key, found);
  return found;
}

/**
 * Runs a Python script with the reference interpreter and parses its JSON stdout.
 * @param {string} python interpreter path from referencePython()
 * @param {string} script Python source that prints one JSON document
 * @param {string[]} args argv for the script
 */
export function runPythonJson(python, script, args = []) {
  const out = execFileSync(python, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return JSON.parse(out);
}
