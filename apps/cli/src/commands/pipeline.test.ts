import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, writePhantomDataset } from '@brats/io';
import { repositoryRoot } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
let dataset: string;
const CASES = ['Phantom_001', 'Phantom_002', 'Phantom_003', 'Phantom_004', 'Phantom_005', 'Phantom_006'];
/** A run small enough for a test: 32-voxel crops, a 2-filter U-Net, two epochs of two batches. */
const SMALL = ['--crop', '32', '--filters', '2', '--epochs', '2', '--steps-per-epoch', '2', '--batch-size', '4', '--validation-cases', 'Phantom_002', '--test-cases', 'Phantom_004,Phantom_006'];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-pipeline-'));
  dataset = path.join(dir, 'dataset');
  await writePhantomDataset(dataset, { layout: 'brats2018', cases: CASES.length, size: [40, 40, 32], seed: 7 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

interface EvaluationFile {
  cases: { id: string; WT: { dice: number; hd95: number }; TC: { dice: number; hd95: number }; ET: { dice: number; hd95: number } }[];
  convention: string;
  caseCount: number;
}

describe('brats pipeline', () => {
  it('converts, trains, exports, tunes, scores validation then test with the BraTS rules, and reports; a rerun resumes', async () => {
    const out = path.join(dir, 'run');
    const run = await runCaptured(['pipeline', dataset, '--out', out, '--target', 'regions', '--normalize', 'nonzero', ...SMALL]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^1\/7 convert$/m);
    expect(run.stdout).toMatch(/^ {4}6 cases: train 3, validation Phantom_002, test Phantom_004, Phantom_006$/m);
    expect(run.stdout).toMatch(/^7\/7 report$/m);

    const state = JSON.parse(await fs.readFile(path.join(out, 'pipeline.json'), 'utf8')) as { steps: Record<string, unknown>; command: string; settings: { target: string } };
    expect(Object.keys(state.steps)).toEqual(['convert', 'train', 'export', 'tune', 'validation', 'test', 'report']);
    expect(state.command).toBe(
      `brats pipeline ${dataset} --out ${out} --target regions --crop 32 --normalize nonzero --validation-cases Phantom_002 --test-cases Phantom_004,Phantom_006 --filters 2 --epochs 2 --batch-size 4 --lr 0.0005 --tumour-fraction 0.5 --steps-per-epoch 2 --monitor dice --seed 816`,
    );
    const manifest = await readModelManifest(path.join(out, 'model'));
    expect(manifest.regions).toEqual(['WT', 'TC', 'ET']);
    // Each scan was normalised over its non-zero voxels, and the bundle says so to every engine that runs it.
    expect(manifest.preprocessing.normalize).toBe('nonzero');
    expect(manifest.files.onnx).toBe('model.onnx');
    expect(manifest.training?.split).toMatchObject({ train: ['Phantom_001', 'Phantom_003', 'Phantom_005'], validation: ['Phantom_002'], testing: ['Phantom_004', 'Phantom_006'] });
    // The post-processing was chosen on the validation case and recorded.
    expect(manifest.inference?.selection?.cases).toEqual(['Phantom_002']);

    const validation = JSON.parse(await fs.readFile(path.join(out, 'model', 'validation-evaluation.json'), 'utf8')) as EvaluationFile;
    const test = JSON.parse(await fs.readFile(path.join(out, 'model', 'test-evaluation.json'), 'utf8')) as EvaluationFile;
    expect(validation.cases.map((row) => row.id)).toEqual(['Phantom_002']);
    expect(test.cases.map((row) => row.id)).toEqual(['Phantom_004', 'Phantom_006']);
    expect(test.convention).toBe('brats');
    for (const row of test.cases) {
      for (const region of ['WT', 'TC', 'ET'] as const) {
        expect(row[region].dice).toBeGreaterThanOrEqual(0);
        expect(row[region].dice).toBeLessThanOrEqual(1);
        // BraTS rules: a number for every region, never NaN (an empty side gets 0 or the diagonal penalty).
        expect(Number.isFinite(row[region].hd95)).toBe(true);
      }
    }
    // The test predictions: label maps in the input's convention (BraTS 2018: 0, 1, 2, 4), with figures and a report.
    const predictions = JSON.parse(await fs.readFile(path.join(out, 'test', 'predictions.json'), 'utf8')) as { labels: string; regions: string[] };
    expect(predictions.labels).toBe('brats2017');
    expect(existsSync(path.join(out, 'test', 'report.html'))).toBe(true);
    const report = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    expect(report).toContain('Test cases (scored once, at the end)');
    expect(report).toContain('training-curves.png');

    // Rerun after a step was lost (as after a kill): the done steps are skipped, the rest run again.
    const partial = { ...state, steps: Object.fromEntries(Object.entries(state.steps).slice(0, 4)) };
    await fs.writeFile(path.join(out, 'pipeline.json'), JSON.stringify(partial));
    const resumed = await runCaptured(['pipeline', dataset, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^2\/7 train: done \(/m);
    expect(resumed.stdout).toMatch(/^4\/7 tune: done \(/m);
    expect(resumed.stdout).toMatch(/^5\/7 validation$/m);

    // Extending the run: one more epoch with a decaying rate continues training and redoes every step after it.
    const extended = await runCaptured(['pipeline', dataset, '--out', out, '--resume', '--epochs', '3', '--lr-schedule', 'cosine', '--decay-start', '2']);
    expect(extended.code, extended.stderr).toBe(0);
    const command = state.command.replace('--epochs 2', '--epochs 3').replace('--lr 0.0005', '--lr 0.0005 --lr-schedule cosine --decay-start 2');
    expect(extended.stdout.split('\n')).toContain(`extending the run: ${command}`);
    expect(extended.stdout).toMatch(/^ {4}resuming after epoch 2$/m);
    expect(extended.stdout).toMatch(/^7\/7 report$/m);
    const after = JSON.parse(await fs.readFile(path.join(out, 'pipeline.json'), 'utf8')) as { steps: Record<string, unknown>; command: string };
    expect(after.command).toBe(command);
    expect(Object.keys(after.steps)).toEqual(['convert', 'train', 'export', 'tune', 'validation', 'test', 'report']);
    const longer = await readModelManifest(path.join(out, 'model'));
    expect(longer.training?.epochs).toBe(3);
    expect(longer.training?.learningRateSchedule).toBe('constant to epoch 2, then cosine to 0 at epoch 3');
    // A decay stretched to 4 epochs would change the rate epoch 3 ran with: refused, and the run stays as it was.
    const stretched = await runCaptured(['pipeline', dataset, '--out', out, '--resume', '--epochs', '4', '--lr-schedule', 'cosine', '--decay-start', '2']);
    expect(stretched.code).toBe(1);
    expect(stretched.stderr.trim()).toBe(
      `error: --lr-schedule: epoch 3 of the run in ${out} ran at learning rate ${5e-4 * 0.5}, which this schedule would change; start the decay after epoch 3`,
    );
    const fewer = await runCaptured(['pipeline', dataset, '--out', out, '--resume', '--epochs', '2']);
    expect(fewer.code).toBe(1);
    expect(fewer.stderr.trim()).toBe(`error: --epochs 2: the run in ${out} was started with 3; a resume can add epochs, not remove them`);
    expect(JSON.parse(await fs.readFile(path.join(out, 'pipeline.json'), 'utf8'))).toEqual(after);
  }, 600_000);

  it('refuses an existing run without --resume, and a resume with other settings', async () => {
    // A run stopped right after it started: its state records the settings and no finished step.
    const out = path.join(dir, 'started');
    await fs.mkdir(out);
    const settings = {
      dataset: path.resolve(dataset), target: 'regions', crop: 32, validationCases: ['Phantom_002'], testCases: ['Phantom_004', 'Phantom_006'], splitSeed: 816,
      filters: 2, epochs: 2, batchSize: 4, learningRate: 5e-4, tumourFraction: 0.5, stepsPerEpoch: 2, monitor: 'dice', seed: 816, engine: 'auto',
    };
    await fs.writeFile(path.join(out, 'pipeline.json'), JSON.stringify({ format: 'brats-pipeline', version: 1, settings, command: 'brats pipeline …', steps: {} }));
    const again = await runCaptured(['pipeline', dataset, '--out', out, ...SMALL]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`error: --out ${out}: holds a pipeline run (pipeline.json); add --resume to continue it, or choose another folder`);
    const other = await runCaptured(['pipeline', dataset, '--out', out, '--resume', '--filters', '4']);
    expect(other.code).toBe(1);
    expect(other.stderr.trim()).toBe(`error: --filters: the run in ${out} was started with 2; a resume keeps its settings`);
    const normalised = await runCaptured(['pipeline', dataset, '--out', out, '--resume', '--normalize', 'nonzero']);
    expect(normalised.code).toBe(1);
    expect(normalised.stderr.trim()).toBe(`error: --normalize: the run in ${out} was started with its default; a resume keeps its settings`);
    const unknown = await runCaptured(['pipeline', dataset, '--out', path.join(dir, 'half'), '--normalize', 'brain']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toBe("error: --normalize must be one of block, nonzero, got 'brain'");
    const weights = await runCaptured(['pipeline', dataset, '--out', path.join(dir, 'half'), '--region-weights', '1,2']);
    expect(weights.code).toBe(1);
    expect(weights.stderr.trim()).toBe('error: --region-weights: --target regions trains 3 regions (WT,TC,ET), got 2 weights');
    const half = await runCaptured(['pipeline', dataset, '--out', path.join(dir, 'half'), '--test-cases', 'Phantom_001']);
    expect(half.code).toBe(1);
    expect(half.stderr.trim()).toBe('error: --validation-cases and --test-cases go together (or neither: the split is drawn with --split-seed)');
    expect(existsSync(path.join(dir, 'half'))).toBe(false);
    const busy = path.join(dir, 'busy');
    await fs.mkdir(busy);
    await fs.writeFile(path.join(busy, 'notes.txt'), 'x');
    const occupied = await runCaptured(['pipeline', dataset, '--out', busy, ...SMALL]);
    expect(occupied.code).toBe(1);
    expect(occupied.stderr.trim()).toBe(`error: --out ${busy}: exists and is not empty; choose another folder`);
  });

  const built = existsSync(path.join(repositoryRoot, 'apps/cli/dist/bin.js'));
  it.skipIf(!built)('continues training from the last completed epoch after the process is killed; its model starts a fine-tuning run with weighted regions', async () => {
    const out = path.join(dir, 'killed');
    const args = [path.join(repositoryRoot, 'apps/cli/dist/bin.js'), 'pipeline', dataset, '--out', out, '--target', 'wt', ...SMALL];
    args.splice(args.indexOf('--epochs') + 1, 1, '3');
    // Killed (SIGKILL: no clean-up) as soon as the second epoch starts.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let seen = '';
      const watch = (chunk: Buffer): void => {
        seen += String(chunk);
        if (/epoch 2\/3/.test(seen)) child.kill('SIGKILL');
      };
      child.stdout.on('data', watch);
      child.stderr.on('data', watch);
      child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`not killed: ${seen}`))));
    });
    const state = JSON.parse(await fs.readFile(path.join(out, 'pipeline.json'), 'utf8')) as { steps: Record<string, unknown> };
    expect(Object.keys(state.steps)).toEqual(['convert']);
    const resumed = await runCaptured(['pipeline', dataset, '--out', out, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/^1\/7 convert: done/m);
    expect(resumed.stdout).toMatch(/^ {4}resuming after epoch 1$/m);
    const manifest = await readModelManifest(path.join(out, 'model'));
    expect(manifest.regions).toEqual(['WT']);
    expect(manifest.training?.epochs).toBe(3);
    const test = JSON.parse(await fs.readFile(path.join(out, 'model', 'test-evaluation.json'), 'utf8')) as { cases: Record<string, unknown>[] };
    expect(Object.keys(test.cases[0]!).sort()).toEqual(['WT', 'id']);

    // Its model is the start of a fine-tuning run, recorded in the command line and the new bundle.
    const source = path.join(out, 'model');
    const tunedOut = path.join(dir, 'tuned');
    const small = [...SMALL];
    small.splice(small.indexOf('--epochs') + 1, 1, '1');
    // Without --filters, the source's: 2.
    small.splice(small.indexOf('--filters'), 2);
    const tuned = await runCaptured(['pipeline', dataset, '--out', tunedOut, '--target', 'wt', ...small, '--init-from', source, '--region-weights', '2']);
    expect(tuned.code, tuned.stderr).toBe(0);
    expect(tuned.stdout).toMatch(/^ {4}initial weights: model \(epoch \d+, made /m);
    const tunedState = JSON.parse(await fs.readFile(path.join(tunedOut, 'pipeline.json'), 'utf8')) as { command: string };
    expect(tunedState.command).toContain(' --filters 2 --epochs 1 ');
    expect(tunedState.command.endsWith(` --seed 816 --region-weights 2 --init-from ${source}`)).toBe(true);
    const tunedManifest = await readModelManifest(path.join(tunedOut, 'model'));
    expect(tunedManifest.training?.initialWeights?.createdAt).toBe(manifest.createdAt);
    expect(tunedManifest.training?.regionWeights).toEqual({ WT: 2 });
    const tunedReport = await fs.readFile(path.join(tunedOut, 'report.html'), 'utf8');
    expect(tunedReport).toMatch(/Fine-tuned: training started from model \(epoch \d+, made [^)]+\)\. Dice loss weights per region: WT 2\./);
    expect(await fs.readFile(path.join(out, 'report.html'), 'utf8')).not.toContain('Fine-tuned');
    const nowhere = await runCaptured(['pipeline', dataset, '--out', path.join(dir, 'nowhere'), ...SMALL, '--init-from', '@brats/model-nowhere']);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr.trim()).toBe('error: --init-from @brats/model-nowhere: no such folder, and no installed package of that name with a brats-model.json');
    expect(existsSync(path.join(dir, 'nowhere'))).toBe(false);
  }, 600_000);
});
