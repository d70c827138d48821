import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assignSplits, createVolume, openSliceStore, writeNifti } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
const ids = ['P01', 'P02', 'P03', 'P04'];
const shape = [12, 10, 6] as const;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-convert-cli-'));
  const voxels = shape[0] * shape[1] * shape[2];
  for (const [caseNumber, id] of ids.entries()) {
    const folder = path.join(dir, 'data', id);
    await fs.mkdir(folder, { recursive: true });
    for (const [channel, suffix] of ['_flair', '_t1', '_t1ce', '_t2'].entries()) {
      const data = Int16Array.from({ length: voxels }, (_, n) => (n * (3 + channel) + caseNumber) % 50);
      await writeNifti(path.join(folder, `${id}${suffix}.nii.gz`), createVolume('int16', data, shape));
    }
    const labels = new Uint8Array(voxels);
    labels.fill(2, 300, 340 + caseNumber);
    labels.fill(4, 320, 324);
    await writeNifti(path.join(folder, `${id}_seg.nii.gz`), createVolume('uint8', labels, shape));
  }
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats convert', () => {
  it('writes a slice store split by the seeded draws and prints a summary', async () => {
    const out = path.join(dir, 'out', 'store.h5');
    const run = await runCaptured(['convert', path.join(dir, 'data'), '--out', out, '--crop', '8', '--split', '0.5', '--seed', '5', '--workers', '2']);
    expect(run.stderr).toContain('convert: done in');
    expect(run.code).toBe(0);
    const expected = assignSplits(4, { seed: 5, fractions: 0.5 });
    const count = (split: string) => expected.filter((s) => s === split).length;
    expect(run.stdout).toContain(`  cases       train ${count('train')}, validation ${count('validation')}, testing ${count('testing')}`);
    expect(run.stdout).toContain(`  slices      train ${count('train') * 8}, validation ${count('validation') * 8}, testing ${count('testing') * 8}`);
    const store = await openSliceStore(out);
    try {
      expect(store.info('train').imageShape).toEqual([count('train') * 8, 8, 8, 4]);
      expect(store.attributes()).toMatchObject({ crop_size: [8, 8, 8], split_seed: 5, split_fractions: [0.5, 0.25, 0.25], normalize: 'block', target: 'wt' });
    } finally {
      store.close();
    }
  });

  it('takes channels, target and three split fractions, and prints JSON', async () => {
    const out = path.join(dir, 'regions.h5');
    const run = await runCaptured([
      'convert', path.join(dir, 'data'), '--out', out, '--crop', '8,6,4', '--channels', 't1gd,flair', '--target', 'regions',
      '--normalize', 'nonzero', '--split', '0.5,0.5,0', '--workers', '0', '--json',
    ]);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.geometry).toEqual({ height: 8, width: 6, channels: 2, maskChannels: 3 });
    expect(summary.settings.channels).toEqual(['T1gd', 'FLAIR']);
    expect(summary.counts.testing).toEqual({ cases: 0, slices: 0 });
  });

  it('takes named validation and test cases; every other case trains', async () => {
    const out = path.join(dir, 'named.h5');
    const run = await runCaptured(['convert', path.join(dir, 'data'), '--out', out, '--crop', '8', '--workers', '0', '--validation-cases', ids[2]!, '--test-cases', `${ids[0]}, ${ids[3]}`, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).splits).toEqual({ train: [ids[1]], validation: [ids[2]], testing: [ids[0], ids[3]] });
    const unknown = await runCaptured(['convert', path.join(dir, 'data'), '--out', path.join(dir, 'never-named.h5'), '--crop', '8', '--test-cases', 'Nobody_1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^error: .*names case\(s\) the dataset does not have: Nobody_1$/);
  });

  it.each([
    [['--split', '1.5']],
    [['--split', '0.5,0.2,0.2']],
    [['--crop', '0']],
    [['--channels', 'flair,dwi']],
    [['--normalize', 'zscore']],
    [['--workers', '-1']],
    [['--seed', 'abc']],
    [['--test-cases', ' , ']],
  ])('exits 1 with one line for %j', async (flags) => {
    const out = path.join(dir, 'never.h5');
    const run = await runCaptured(['convert', path.join(dir, 'data'), '--out', out, ...flags]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    await expect(fs.stat(out)).rejects.toThrow();
  });

  it('exits 1 without --out and 2 for a folder that holds no dataset', async () => {
    expect((await runCaptured(['convert', path.join(dir, 'data')])).code).toBe(1);
    const empty = path.join(dir, 'empty');
    await fs.mkdir(empty, { recursive: true });
    const run = await runCaptured(['convert', empty, '--out', path.join(dir, 'empty.h5')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: .*no dataset found/);
  });
});
