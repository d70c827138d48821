import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, writeModelManifest, writePhantomDataset } from '@brats/io';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
let bundle: string;
let data: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-tune-'));
  data = path.join(dir, 'phantoms');
  await writePhantomDataset(data, { layout: 'brats2018', cases: 2, size: [40, 40, 20], seed: 3 });
  bundle = path.join(dir, 'wt');
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats tune', () => {
  it('scores the four options on the named cases and writes the best into the manifest', async () => {
    const ids = (await fs.readdir(data, { withFileTypes: true })).filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
    const result = await runCaptured(['tune', bundle, '--data', data, '--cases', ids.join(','), '--engine', 'tfjs']);
    expect(result.code, result.stderr).toBe(0);
    const inference = (await readModelManifest(bundle)).inference!;
    const { candidates } = inference.selection!;
    expect(candidates.map(({ tta, largestComponent }) => [tta, largestComponent])).toEqual([
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ]);
    for (const candidate of candidates) {
      expect(candidate.perCase).toHaveLength(2);
      expect(candidate.mean).toBeCloseTo((candidate.perCase[0]! + candidate.perCase[1]!) / 2, 12);
    }
    const best = Math.max(...candidates.map((candidate) => candidate.mean));
    const chosen = candidates.find((candidate) => candidate.mean === best)!;
    expect({ tta: inference.tta, largestComponent: inference.largestComponent }).toEqual({ tta: chosen.tta, largestComponent: chosen.largestComponent });
    expect(inference.selection).toMatchObject({ metric: 'mean WT Dice', data: '../phantoms', cases: ids });
    expect(result.stdout).toContain('<- chosen');
  });

  it.each([
    ['no validation split and no --cases', [], /records no validation cases: name them with --cases/],
    ['an unknown case', ['--cases', 'Nobody_1'], /has no case Nobody_1/],
  ])('refuses %s with exit 1', async (_name, extra, message) => {
    const bare = path.join(dir, 'bare');
    await fs.cp(bundle, bare, { recursive: true });
    const { inference: _previous, training: _training, ...manifest } = await readModelManifest(bare);
    await writeModelManifest(bare, manifest);
    const result = await runCaptured(['tune', bare, '--data', data, ...extra]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(message);
  });
});
