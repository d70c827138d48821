import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest } from '@brats/io';
import { NO_SHARED_DATA, repositoryRoot, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRETRAINED_MODEL, defaultModelPath } from '../default-model.js';
import { runCaptured } from '../../test/run-captured.js';

const bundle = path.join(repositoryRoot, 'models', PRETRAINED_MODEL);
const data = sharedDataDir();
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-pretrained-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('the pretrained model in models/', () => {
  it('is a complete bundle that brats predict uses when --model is not given', async () => {
    expect(await defaultModelPath()).toBe(bundle);
    const manifest = await readModelManifest(bundle);
    expect(manifest.training?.split.testing.length).toBeGreaterThan(0);
    expect(manifest.licence).toMatch(/BraTS/);
    for (const file of [manifest.files.tfjs!, manifest.files.onnx!, 'test-evaluation.json', 'training-curves.png']) {
      expect(existsSync(path.join(bundle, file)), file).toBe(true);
    }
  });

  it.skipIf(!data)(`reproduces its recorded Dice on the held-out real cases (${data ? 'present' : NO_SHARED_DATA})`, async () => {
    const manifest = await readModelManifest(bundle);
    const recorded = JSON.parse(await fs.readFile(path.join(bundle, 'test-evaluation.json'), 'utf8'));
    const testing = manifest.training!.split.testing;
    const inputs = testing.map((id) => path.join(data!, 'brats2018-sample', id));
    const out = path.join(dir, 'predictions');
    const predicted = await runCaptured(['predict', ...inputs, '--out', out, '--engine', 'tfjs']);
    expect(predicted.code).toBe(0);
    // Score against the reference through `brats evaluate`, as the README's reproduction does.
    const reference = path.join(dir, 'reference');
    for (const id of testing) await fs.cp(path.join(data!, 'brats2018-sample', id), path.join(reference, id), { recursive: true });
    const metrics = path.join(dir, 'metrics.json');
    const evaluated = await runCaptured(['evaluate', '--pred', out, '--ref', reference, '--pred-labels', 'wt', '--regions', 'wt', '--out', metrics]);
    expect(evaluated.code).toBe(0);
    const result = JSON.parse(await fs.readFile(metrics, 'utf8'));
    expect(result.cases.map((c: { id: string }) => c.id)).toEqual(recorded.cases.map((c: { id: string }) => c.id));
    result.cases.forEach((c: { WT: { dice: number } }, index: number) => expect(c.WT.dice).toBeCloseTo(recorded.cases[index].WT.dice, 6));
    expect(result.summary.WT.dice.mean).toBeCloseTo(recorded.summary.WT.dice.mean, 6);
  });
});
