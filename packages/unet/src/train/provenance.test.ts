import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordedDataFile } from './provenance.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-provenance-'));
  await fs.mkdir(path.join(dir, 'runs', 'model'), { recursive: true });
  await fs.mkdir(path.join(dir, 'data'), { recursive: true });
  await fs.writeFile(path.join(dir, 'data', 'brats2018.h5'), '');
  await fs.writeFile(path.join(dir, 'runs', 'model', 'inside.h5'), '');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('recordedDataFile', () => {
  it.each([
    ['data/brats2018.h5', 'runs/model', '../../data/brats2018.h5'],
    ['runs/model/inside.h5', 'runs/model', 'inside.h5'],
    ['data/brats2018.h5', 'data', 'brats2018.h5'],
  ])('%s seen from bundle %s is %s', async (data, bundle, expected) => {
    expect(await recordedDataFile(path.join(dir, data), path.join(dir, bundle))).toBe(expected);
  });

  it('takes relative paths from the working folder, as the CLI passes them', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(await recordedDataFile('data/brats2018.h5', 'runs/model')).toBe('../../data/brats2018.h5');
    } finally {
      process.chdir(cwd);
    }
  });

  // The Node.js binary stands in for a data file outside the temporary folder's top-level folder.
  const elsewhere = process.execPath;
  const top = (file: string): string => path.resolve(file).split(path.sep)[1]!;
  it.skipIf(top(elsewhere) === top(os.tmpdir()))('is only the file name when the two share no folder below the root (skipped: node lives beside the temporary folder)', async () => {
    expect(await recordedDataFile(elsewhere, path.join(dir, 'runs', 'model'))).toBe(path.basename(elsewhere));
  });
});
