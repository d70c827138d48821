import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assignSplits, convertDataset, readModelManifest, writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, '../../dist/bin.js');
let dir: string;
let dataFile: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-train-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases: 5, size: [40, 40, 20], seed: 9 });
  const split = { train: 0.6, validation: 0.4, testing: 0 };
  let seed = 0;
  while (!assignSplits(5, { seed, fractions: split }).includes('validation')) seed++;
  dataFile = path.join(dir, 'data.h5');
  await convertDataset(path.join(dir, 'phantoms'), dataFile, { crop: [32, 32, 16], split, seed, workers: 0 });
}, 300_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const flags = (out: string, epochs: number) => [
  'train', '--data', dataFile, '--out', out, '--epochs', String(epochs), '--batch-size', '8', '--lr', '0.003',
  '--filters', '4', '--depth', '2', '--backend', 'wasm', '--tumour-fraction', '0.5', '--steps-per-epoch', '40', '--seed', '4',
];

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out waiting for the training run');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('brats train', () => {
  it('prints the backend and per-epoch results and writes a bundle', async () => {
    const out = path.join(dir, 'bundle-a');
    const { code, stdout } = await runCaptured(flags(out, 2));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^backend: wasm \(/m);
    // auto: a gradient worker thread beside the main one wherever there are two cores (the build made the worker entry).
    expect(stdout).toMatch(os.availableParallelism() >= 2 ? /^threads: 2 \(wasm runs one thread per process/m : /^threads: 1 \(one core\)$/m);
    expect(stdout).toMatch(/^epoch 2: loss \d\.\d{4} {2}val loss \d\.\d{4} {2}val Dice \d\.\d{4}/m);
    expect((await readModelManifest(out)).training!.epochs).toBe(2);
  });

  it('rejects bad flags with exit code 1', async () => {
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--upsampling', 'nearest'])).code).toBe(1);
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--lr', '-1'])).code).toBe(1);
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--tumour-fraction', '2'])).code).toBe(1);
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--monitor', 'accuracy'])).code).toBe(1);
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--workers', 'two'])).code).toBe(1);
    const weights = await runCaptured([...flags(path.join(dir, 'bad'), 2), '--region-weights', '1,x']);
    expect(weights.code).toBe(1);
    expect(weights.stderr.trim()).toBe("error: --region-weights must be comma-separated numbers >= 0, not all 0 (e.g. 1,2,1), got '1,x'");
    expect((await runCaptured([...flags(path.join(dir, 'bad'), 2), '--region-weights', '0,0'])).code).toBe(1);
    expect(existsSync(path.join(dir, 'bad'))).toBe(false);
  });

  it('--init-from fine-tunes a bundle of the same architecture, and refuses another or a name that is not installed', async () => {
    const source = path.join(dir, 'source');
    expect((await runCaptured(flags(source, 1))).code).toBe(0);
    // Without --filters and --depth the run builds the source's network (4 filters, depth 2), not the seed's 16 and 4.
    const unset = flags(path.join(dir, 'tuned'), 1);
    unset.splice(unset.indexOf('--filters'), 4);
    expect(unset).not.toContain('--depth');
    const tuned = await runCaptured([...unset, '--init-from', source]);
    expect(tuned.code, tuned.stderr).toBe(0);
    const tunedManifest = await readModelManifest(path.join(dir, 'tuned'));
    expect([tunedManifest.model.filters, tunedManifest.model.depth]).toEqual([4, 2]);
    const record = tunedManifest.training!.initialWeights!;
    expect(record.source).toBe('source');
    expect(tuned.stdout.split('\n')).toContain(`initial weights: source (epoch ${record.bestEpoch}, made ${record.createdAt}, weights sha256 ${record.weightsSha256.slice(0, 12)}…)`);

    const wider = await runCaptured([...flags(path.join(dir, 'wider'), 1), '--filters', '6', '--init-from', source]);
    expect(wider.code).toBe(2);
    expect(wider.stderr).toMatch(/^error: .*source: weight 1 \(encodeAa\/kernel\) has shape \[3, 3, 4, 4\] there and \[3, 3, 4, 6\] in this U-Net/);
    const missing = await runCaptured([...flags(path.join(dir, 'missing'), 1), '--init-from', '@brats/model-nowhere']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('error: --init-from @brats/model-nowhere: no such folder, and no installed package of that name with a brats-model.json');
    expect(existsSync(path.join(dir, 'wider'))).toBe(false);
    expect(existsSync(path.join(dir, 'missing'))).toBe(false);
  });

  it('--init-from @brats/model-brats-regions fine-tunes the shipped model on cases converted with the defaults', async () => {
    // The defaults of brats convert and brats pipeline (FLAIR, T1w, T1gd, T2w; block normalisation; centre crop
    // 144 in-plane) feed the shipped model; 8 slices per case keep the test short.
    const phantoms = path.join(dir, 'regions-phantoms');
    await writePhantomDataset(phantoms, { layout: 'brats2018', cases: 3, size: [150, 150, 16], seed: 3 });
    const store = path.join(dir, 'regions.h5');
    await convertDataset(phantoms, store, { crop: [144, 144, 8], target: 'regions', split: { train: 0.67, validation: 0.33, testing: 0 }, seed: 1, workers: 0 });
    const out = path.join(dir, 'shipped-tuned');
    const run = await runCaptured(['train', '--data', store, '--out', out, '--epochs', '1', '--batch-size', '2', '--tumour-fraction', '0.5', '--steps-per-epoch', '1', '--backend', 'wasm', '--init-from', '@brats/model-brats-regions']);
    expect(run.code, run.stderr).toBe(0);
    const manifest = await readModelManifest(out);
    expect(manifest.model.filters).toBe(8);
    expect(manifest.regions).toEqual(['WT', 'TC', 'ET']);
    expect(manifest.training!.initialWeights!.source).toBe('@brats/model-brats-regions');
  }, 300_000);

  it('exits 2 when the bundle already holds a run and --resume is missing', async () => {
    const { code, stderr } = await runCaptured(flags(path.join(dir, 'bundle-a'), 2));
    expect(code).toBe(2);
    expect(stderr).toContain('already holds a training run; pass --resume');
  });

  it('killed with SIGKILL mid-epoch, --resume finishes with the weights of an uninterrupted run', async () => {
    expect(existsSync(bin), `${bin} is missing: build the CLI first (pnpm build)`).toBe(true);
    const killed = path.join(dir, 'killed');
    const child = spawn(process.execPath, [bin, ...flags(killed, 4)], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    // Let the first epoch's checkpoint land, then kill during the second epoch.
    await waitFor(async () => existsSync(path.join(killed, 'checkpoint.json')), 240_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const before = JSON.parse(await fs.readFile(path.join(killed, 'checkpoint.json'), 'utf8')).current as string;
    expect(before).toMatch(/^checkpoint-epoch-000[123]$/);

    const resumed = await runCaptured([...flags(killed, 4), '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/^resuming after epoch [123]$/m);
    const manifest = await readModelManifest(killed);
    expect(manifest.training!.epochs).toBe(4);
    const log = (await fs.readFile(path.join(killed, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line).epoch);
    expect(log).toEqual([1, 2, 3, 4]);

    const straight = path.join(dir, 'straight');
    expect((await runCaptured(flags(straight, 4))).code).toBe(0);
    const weights = (bundle: string) => fs.readFile(path.join(bundle, 'checkpoint-epoch-0004', 'weights.bin'));
    expect(Buffer.compare(await weights(killed), await weights(straight))).toBe(0);
  });
});
