import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assignSplits, convertDataset, readModelManifest, writePhantomDataset } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateGradientWorker } from '../parallel/data-parallel.js';
import { TrainingError, trainUnet, type TrainOptions } from './trainer.js';

let dir: string;
let dataFile: string;
let validationCases: number;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-train-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'msd', cases: 6, size: [48, 48, 24], seed: 5 });
  dataFile = path.join(dir, 'phantoms.h5');
  // Crop 32 x 32 x 16: 16 slices per case; the first split seed whose draws leave a validation case.
  const split = { train: 0.6, validation: 0.2, testing: 0.2 };
  let seed = 0;
  while (!assignSplits(6, { seed, fractions: split }).includes('validation')) seed++;
  validationCases = assignSplits(6, { seed, fractions: split }).filter((name) => name === 'validation').length;
  await convertDataset(path.join(dir, 'phantoms'), dataFile, { crop: [32, 32, 16], split, seed, workers: 0 });
}, 300_000);

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function tiny(bundle: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    dataFile,
    bundle: path.join(dir, bundle),
    epochs: 3,
    batchSize: 8,
    learningRate: 3e-3,
    filters: 4,
    depth: 2,
    seed: 11,
    backend: 'wasm',
    tumourFraction: 0.5,
    stepsPerEpoch: 4,
    workers: 0,
    ...extra,
  };
}

describe('trainUnet', () => {
  it('trains on phantom slices: the loss falls and a complete bundle is written', async () => {
    const epochs: number[] = [];
    const result = await trainUnet(tiny('run', { epochs: 4 }), { onEpochEnd: (record) => epochs.push(record.epoch) });
    expect(result.backend.name).toBe('wasm');
    expect(epochs).toEqual([1, 2, 3, 4]);
    const losses = result.history.map((record) => record.loss);
    expect(losses[3]!).toBeLessThan(losses[0]!);
    const bundle = path.join(dir, 'run');
    const manifest = await readModelManifest(bundle);
    expect(manifest.model.inputShape).toEqual([32, 32, 4]);
    expect(manifest.preprocessing.cropSize).toEqual([32, 32, 16]);
    // The spacing the store records for its (1 mm) phantoms.
    expect(manifest.spacing).toEqual([1, 1, 1]);
    // The orientation `brats convert` turns every case to: the model segments scans turned to it.
    expect(manifest.orientation).toBe('LPS');
    expect(manifest.training!.epochs).toBe(4);
    expect(manifest.training!.split.validation).toHaveLength(validationCases);
    expect(manifest.validation!.WTDice).toBeGreaterThanOrEqual(0);
    const log = (await fs.readFile(path.join(bundle, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(log.map((line) => JSON.parse(line).epoch)).toEqual([1, 2, 3, 4]);
    const png = await fs.readFile(path.join(bundle, 'training-curves.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    for (const file of ['model.json', 'weights.bin', 'checkpoint.json']) await expect(fs.stat(path.join(bundle, file))).resolves.toBeTruthy();
  });

  it('a run stopped after 2 epochs and resumed ends with the same weights as a straight run of 3', async () => {
    await trainUnet(tiny('straight'));
    await trainUnet(tiny('resumed', { epochs: 2 }));
    const resumedEpochs: number[] = [];
    const result = await trainUnet(tiny('resumed', { resume: true }), { onResume: (done) => resumedEpochs.push(done) });
    expect(resumedEpochs).toEqual([2]);
    expect(result.history).toHaveLength(3);
    const weights = async (bundle: string) => fs.readFile(path.join(dir, bundle, 'checkpoint-epoch-0003', 'weights.bin'));
    const straight = await weights('straight');
    const resumed = await weights('resumed');
    expect(straight.length).toBeGreaterThan(1000);
    expect(Buffer.compare(straight, resumed)).toBe(0);
  });

  it('with monitor dice keeps the epoch of the highest validation Dice', async () => {
    const result = await trainUnet(tiny('by-dice', { epochs: 4, monitor: 'dice' }));
    const dice = result.history.map((record) => record.validationDice[0]!);
    const best = dice.indexOf(Math.max(...dice));
    // Epoch numbers count from 1: the best of the history's entries [0..3] is epoch best + 1.
    expect(result.history[best]!.epoch).toBe(best + 1);
    expect(result.manifest.training!.bestEpoch).toBe(best + 1);
    expect(result.manifest.validation!.WTDice).toBe(dice[best]);
    // The kept model.json is that epoch's: a later, worse epoch did not overwrite it.
    const saved = JSON.parse(await fs.readFile(path.join(dir, 'by-dice', 'brats-model.json'), 'utf8'));
    expect(saved.training.bestEpoch).toBe(best + 1);
  });

  it('a resume may switch the monitor: the model kept by loss stays until a later epoch has a better Dice', async () => {
    await trainUnet(tiny('switch', { epochs: 2 }));
    const changes: Array<[string, string, number]> = [];
    const result = await trainUnet(tiny('switch', { epochs: 5, resume: true, monitor: 'dice' }), {
      onMonitorChange: (previous, next, kept) => changes.push([previous, next, kept]),
    });
    const losses = result.history.map((record) => record.validationLoss);
    const dice = result.history.map((record) => record.validationDice[0]!);
    // Epoch 2 (index 1) is kept by loss only when its validation loss is strictly lower; callbacks count from 1.
    const keptByLoss = losses[1]! < losses[0]! ? 1 : 0;
    expect(changes).toEqual([['loss', 'dice', keptByLoss + 1]]);
    let expected = keptByLoss;
    for (let epoch = 2; epoch < 5; epoch++) if (dice[epoch]! > dice[expected]!) expected = epoch;
    expect(result.manifest.training!.bestEpoch).toBe(expected + 1);
  });

  it('numbers epochs from 1 in the manifest, metrics.jsonl, callbacks and checkpoint, and a resume continues the count', async () => {
    const bundle = path.join(dir, 'numbering');
    const started: number[] = [];
    const ended: number[] = [];
    const callbacks = { onEpochStart: (epoch: number) => started.push(epoch), onEpochEnd: (record: { epoch: number }) => ended.push(record.epoch) };
    const first = await trainUnet(tiny('numbering', { epochs: 2, monitor: 'dice' }), callbacks);
    expect(first.manifest.training!.epochs).toBe(2);
    const readLog = async (): Promise<Array<{ epoch: number; validationDice: number[] }>> =>
      (await fs.readFile(path.join(bundle, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect((await readLog()).map((line) => line.epoch)).toEqual([1, 2]);

    const resumedAfter: number[] = [];
    const result = await trainUnet(tiny('numbering', { epochs: 3, monitor: 'dice', resume: true }), { ...callbacks, onResume: (done) => resumedAfter.push(done) });
    expect(resumedAfter).toEqual([2]);
    expect(started).toEqual([1, 2, 3]);
    expect(ended).toEqual([1, 2, 3]);
    const log = await readLog();
    expect(log.map((line) => line.epoch)).toEqual([1, 2, 3]);
    expect(result.history.map((record) => record.epoch)).toEqual([1, 2, 3]);

    // bestEpoch names the metrics.jsonl line whose figures the manifest reports as the kept model's.
    const manifest = await readModelManifest(bundle);
    expect(manifest.training!.epochs).toBe(3);
    const kept = log.find((line) => line.epoch === manifest.training!.bestEpoch);
    expect(kept, `bestEpoch ${manifest.training!.bestEpoch} is not a line of metrics.jsonl`).toBeDefined();
    expect(manifest.validation!.WTDice).toBe(kept!.validationDice[0]);
    expect(Math.max(...log.map((line) => line.validationDice[0]!))).toBe(kept!.validationDice[0]);

    const pointer = JSON.parse(await fs.readFile(path.join(bundle, 'checkpoint.json'), 'utf8')).current as string;
    expect(pointer).toBe('checkpoint-epoch-0003');
    const state = JSON.parse(await fs.readFile(path.join(bundle, pointer, 'state.json'), 'utf8'));
    expect(state).toMatchObject({ epochBase: 1, epochsCompleted: 3, bestEpoch: manifest.training!.bestEpoch });
    expect(state.history.map((record: { epoch: number }) => record.epoch)).toEqual([1, 2, 3]);

    // The data file is recorded relative to the bundle folder, never as this machine's absolute path.
    expect(manifest.training!.dataFile).toBe('../phantoms.h5');
  });

  it('resumes a checkpoint written when epochs counted from 0, renumbering it from 1', async () => {
    const bundle = path.join(dir, 'legacy');
    await trainUnet(tiny('legacy', { epochs: 2 }));
    // Rewrite the checkpoint as the trainer wrote it before: no epochBase, history and bestEpoch from 0.
    const pointer = JSON.parse(await fs.readFile(path.join(bundle, 'checkpoint.json'), 'utf8')).current as string;
    const stateFile = path.join(bundle, pointer, 'state.json');
    const { epochBase: _epochBase, ...state } = JSON.parse(await fs.readFile(stateFile, 'utf8'));
    const keptBefore = state.bestEpoch as number;
    state.bestEpoch = keptBefore - 1;
    state.history = state.history.map((record: { epoch: number }) => ({ ...record, epoch: record.epoch - 1 }));
    await fs.writeFile(stateFile, JSON.stringify(state));

    const result = await trainUnet(tiny('legacy', { resume: true }));
    expect(result.history.map((record) => record.epoch)).toEqual([1, 2, 3]);
    const log = (await fs.readFile(path.join(bundle, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line).epoch);
    expect(log).toEqual([1, 2, 3]);
    // The kept epoch is the renumbered one, or epoch 3 when it beat it; either way a line of metrics.jsonl.
    const bestEpoch = result.manifest.training!.bestEpoch;
    expect([keptBefore, 3]).toContain(bestEpoch);
    expect(result.manifest.validation!.loss).toBe(result.history[bestEpoch - 1]!.validationLoss);
    // Still bit-identical to the straight run of 3 epochs: renumbering changed no data order or draw.
    const weights = async (name: string) => fs.readFile(path.join(dir, name, 'checkpoint-epoch-0003', 'weights.bin'));
    expect(Buffer.compare(await weights('legacy'), await weights('straight'))).toBe(0);
  });

  it('a constant run extended with a cosine decay equals a straight run with that schedule; a schedule that rewrites an epoch is refused', async () => {
    const schedule = { kind: 'cosine', decayStart: 2 } as const;
    const straight = await trainUnet(tiny('cosine-straight', { epochs: 4, learningRateSchedule: schedule }));
    await trainUnet(tiny('cosine-extended', { epochs: 2 }));
    const extended = await trainUnet(tiny('cosine-extended', { epochs: 4, learningRateSchedule: schedule, resume: true }));
    expect(extended.manifest.training!.learningRateSchedule).toBe('constant to epoch 2, then cosine to 0 at epoch 4');
    // The rates each epoch ran with, as recorded: the base to epoch 2, then (1 + cos(π/4 ∓ …))/2 of it.
    const rates = (await fs.readFile(path.join(dir, 'cosine-extended', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line).learningRate as number | undefined);
    expect(rates.slice(0, 2)).toEqual([undefined, undefined]);
    expect(rates[2]).toBeCloseTo(3e-3 * (1 + Math.cos(Math.PI / 4)) / 2, 15);
    expect(rates[3]).toBeCloseTo(3e-3 * (1 - Math.cos(Math.PI / 4)) / 2, 15);
    expect(straight.history.map((record) => record.learningRate)).toEqual(rates.map((rate) => rate ?? 3e-3));
    const weights = async (name: string) => fs.readFile(path.join(dir, name, 'checkpoint-epoch-0004', 'weights.bin'));
    expect(Buffer.compare(await weights('cosine-extended'), await weights('cosine-straight'))).toBe(0);
    // The rate reached the optimizer: four epochs at the constant rate end elsewhere.
    await trainUnet(tiny('constant-four', { epochs: 4 }));
    expect(Buffer.compare(await weights('constant-four'), await weights('cosine-straight'))).not.toBe(0);
    // Stretching the decay to 6 epochs would change the rate epoch 3 ran with.
    const refused = await trainUnet(tiny('cosine-extended', { epochs: 6, learningRateSchedule: schedule, resume: true })).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TrainingError);
    expect((refused as Error).message).toBe(
      `${path.join(dir, 'cosine-extended')}: epoch 3 ran at learning rate ${rates[2]}; the schedule asked for (constant to epoch 2, then cosine to 0 at epoch 6) would change it. Start the decay after epoch 4, or choose another --out`,
    );
  });

  it('refuses a worker count that leaves a thread without slices', async () => {
    await expect(trainUnet(tiny('too-many-workers', { workers: 8 }))).rejects.toThrow(/workers \(8\) must be below the batch size \(8\)/);
    expect(existsSync(path.join(dir, 'too-many-workers', 'checkpoint.json'))).toBe(false);
  });

  describe.skipIf(locateGradientWorker() === undefined)('with a gradient worker thread (skipped: dist/gradient-worker.js not built; run pnpm build)', () => {
    it('trains on two threads, and a resumed run equals a straight one, dropout draws included', async () => {
      const threads: number[] = [];
      const straight = await trainUnet(tiny('parallel-straight', { workers: 1 }), { onThreads: (count) => threads.push(count) });
      expect(threads).toEqual([2]);
      expect(straight.history.at(-1)!.loss).toBeLessThan(straight.history[0]!.loss);
      await trainUnet(tiny('parallel-resumed', { workers: 1, epochs: 2 }));
      await trainUnet(tiny('parallel-resumed', { workers: 1, resume: true }));
      const weights = async (bundle: string) => fs.readFile(path.join(dir, bundle, 'checkpoint-epoch-0003', 'weights.bin'));
      expect(Buffer.compare(await weights('parallel-straight'), await weights('parallel-resumed'))).toBe(0);
      // A resume with another thread count would change the per-share Dice terms: refused.
      await expect(trainUnet(tiny('parallel-resumed', { workers: 0, resume: true, epochs: 4 }))).rejects.toThrow(/used other options/);
    });
  });

  it('refuses to overwrite a run without resume, and to resume with other options', async () => {
    await expect(trainUnet(tiny('straight'))).rejects.toThrow(TrainingError);
    await expect(trainUnet(tiny('straight', { resume: true, learningRate: 1e-3 }))).rejects.toThrow(/used other options/);
  });

  it('trains without validation cases: warns, keeps every epoch (the last is the model) and records no validation figures', async () => {
    const noValidation = path.join(dir, 'no-validation.h5');
    await convertDataset(path.join(dir, 'phantoms'), noValidation, { crop: [32, 32, 16], split: { train: 1, validation: 0, testing: 0 }, seed: 1, workers: 0 });
    const warnings: string[] = [];
    const kept: boolean[] = [];
    const result = await trainUnet({ ...tiny('no-validation', { epochs: 2 }), dataFile: noValidation }, { onWarning: (line) => warnings.push(line), onEpochEnd: (_record, improved) => kept.push(improved) });
    expect(warnings).toEqual([
      `${noValidation}: has no validation slices; every epoch is kept (the last one is the model) and no validation figures are recorded. Convert with a --split that leaves validation cases to choose the model on them`,
    ]);
    expect(kept).toEqual([true, true]);
    const manifest = await readModelManifest(path.join(dir, 'no-validation'));
    expect(manifest.training!.bestEpoch).toBe(2);
    expect(manifest.validation).toBeUndefined();
    expect(manifest.training!.split.validation).toEqual([]);
    expect(result.history.map((record) => record.validationLoss)).toEqual([Number.NaN, Number.NaN]);
    expect(existsSync(path.join(dir, 'no-validation', 'training-curves.png'))).toBe(true);
  });

  it('weighs the regions\' Dice terms as asked, records the weights, and a resume must keep them', async () => {
    const result = await trainUnet(tiny('weighted', { epochs: 1, regionWeights: [2] }));
    expect(result.manifest.training!.regionWeights).toEqual({ WT: 2 });
    expect((await readModelManifest(path.join(dir, 'weighted'))).training!.regionWeights).toEqual({ WT: 2 });
    await expect(trainUnet(tiny('weighted', { epochs: 2, resume: true }))).rejects.toThrow(/used other options/);
    await expect(trainUnet(tiny('weighted', { epochs: 2, resume: true, regionWeights: [3] }))).rejects.toThrow(/used other options/);
    expect((await trainUnet(tiny('weighted', { epochs: 2, resume: true, regionWeights: [2] }))).history).toHaveLength(2);
    await expect(trainUnet(tiny('weighted-3', { regionWeights: [1, 2, 1] }))).rejects.toThrow(
      new TrainingError(`region weights 1,2,1: ${dataFile} trains WT; give one weight >= 0 per region, not all 0`),
    );
    expect(existsSync(path.join(dir, 'weighted-3'))).toBe(false);
  });

  describe('fine-tuning (initialWeights)', () => {
    const floats = async (bundle: string): Promise<Float32Array> => {
      const bytes = await fs.readFile(path.join(dir, bundle, 'weights.bin'));
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    };
    const largestDifference = (a: Float32Array, b: Float32Array): number => a.reduce((worst, value, k) => Math.max(worst, Math.abs(value - b[k]!)), 0);

    beforeAll(async () => {
      await trainUnet(tiny('ft-source', { epochs: 1 }));
    }, 120_000);

    it('starts from the source bundle, not from the seed, and records where the weights came from', async () => {
      // Adam moves each weight by about the learning rate per step: at 1e-10 the run keeps the weights it started with.
      const calm = { epochs: 1, learningRate: 1e-10, seed: 12 };
      await trainUnet(tiny('ft', { ...calm, initialWeights: path.join(dir, 'ft-source') }));
      await trainUnet(tiny('ft-random', calm));
      const source = await floats('ft-source');
      expect(source.length).toBeGreaterThan(1000);
      expect(largestDifference(await floats('ft'), source)).toBeLessThan(1e-6);
      expect(largestDifference(await floats('ft-random'), source)).toBeGreaterThan(1e-2);

      const sourceManifest = await readModelManifest(path.join(dir, 'ft-source'));
      const manifest = await readModelManifest(path.join(dir, 'ft'));
      // weights.bin holds the float32 values in layer order, which is what the record hashes.
      const sha = createHash('sha256').update(await fs.readFile(path.join(dir, 'ft-source', 'weights.bin'))).digest('hex');
      expect(manifest.training!.initialWeights).toEqual({ source: 'ft-source', createdAt: sourceManifest.createdAt, bestEpoch: 1, weightsSha256: sha });
      expect((await readModelManifest(path.join(dir, 'ft-random'))).training!.initialWeights).toBeUndefined();
    });

    it('builds the source\'s network unless the options name another', async () => {
      const { filters: _filters, depth: _depth, ...unset } = tiny('ft-defaults', { epochs: 1, initialWeights: path.join(dir, 'ft-source') });
      await trainUnet(unset);
      const model = (await readModelManifest(path.join(dir, 'ft-defaults'))).model;
      // The source: 4 filters, depth 2 (tiny); the seed's defaults would be 16 and 4.
      expect([model.filters, model.depth, model.upsampling, model.dropout]).toEqual([4, 2, 'bilinear', 0.2]);
    });

    it('a resume must start from the same weights', async () => {
      await trainUnet(tiny('ft-resumed', { epochs: 1, initialWeights: path.join(dir, 'ft-source') }));
      const resumed = await trainUnet(tiny('ft-resumed', { epochs: 2, resume: true, initialWeights: path.join(dir, 'ft-source') }));
      expect(resumed.history.map((record) => record.epoch)).toEqual([1, 2]);
      await expect(trainUnet(tiny('ft-resumed', { epochs: 3, resume: true, initialWeights: path.join(dir, 'ft-random') }))).rejects.toThrow(/used other options/);
      await expect(trainUnet(tiny('ft-resumed', { epochs: 3, resume: true }))).rejects.toThrow(/used other options/);
    });

    it('refuses a source of another architecture before writing anything', async () => {
      const from = path.join(dir, 'ft-source');
      await expect(trainUnet(tiny('ft-wide', { filters: 6, initialWeights: from }))).rejects.toThrow(
        new TrainingError(`${from}: weight 1 (encodeAa/kernel) has shape [3, 3, 4, 4] there and [3, 3, 4, 6] in this U-Net; start from a bundle of the same architecture`),
      );
      await expect(trainUnet(tiny('ft-deep', { depth: 3, initialWeights: from }))).rejects.toThrow(/its model has \d+ weight tensors, this U-Net \d+/);
      expect(existsSync(path.join(dir, 'ft-wide'))).toBe(false);
      expect(existsSync(path.join(dir, 'ft-deep'))).toBe(false);
    });

    it('refuses a source fed other channels, another normalisation, spacing or orientation, one of other regions, and a folder without a model', async () => {
      const copy = async (name: string, edit: (manifest: { channels: string[]; preprocessing: { channels: string[]; normalize: string } }) => void): Promise<string> => {
        const target = path.join(dir, name);
        await fs.cp(path.join(dir, 'ft-source'), target, { recursive: true });
        const file = path.join(target, 'brats-model.json');
        const manifest = JSON.parse(await fs.readFile(file, 'utf8'));
        edit(manifest);
        await fs.writeFile(file, JSON.stringify(manifest));
        return target;
      };
      const swapped = await copy('ft-swapped', (manifest) => {
        const [first, second, ...rest] = manifest.channels;
        manifest.channels = [second!, first!, ...rest];
        manifest.preprocessing.channels = manifest.channels;
      });
      await expect(trainUnet(tiny('ft-a', { initialWeights: swapped }))).rejects.toThrow(/its model was trained on channels T1w,FLAIR,T1gd,T2w, normalisation block, crop center; this run has channels FLAIR,T1w,T1gd,T2w/);
      const nonzero = await copy('ft-nonzero', (manifest) => (manifest.preprocessing.normalize = 'nonzero'));
      await expect(trainUnet(tiny('ft-b', { initialWeights: nonzero }))).rejects.toThrow(/normalisation nonzero, .*this run has .*normalisation block/);
      const coarse = await copy('ft-coarse', (manifest) => ((manifest as { spacing?: number[] }).spacing = [2, 2, 2]));
      await expect(trainUnet(tiny('ft-e', { initialWeights: coarse }))).rejects.toThrow(
        new TrainingError(`${coarse}: its model learnt scans of 2 x 2 x 2 mm; this run's slices are 1 x 1 x 1 mm`),
      );
      const sagittal = await copy('ft-pir', (manifest) => ((manifest as { orientation?: string }).orientation = 'PIR'));
      await expect(trainUnet(tiny('ft-f', { initialWeights: sagittal }))).rejects.toThrow(
        new TrainingError(`${sagittal}: its model learnt slices in orientation PIR; this run's slices are LPS`),
      );
      const tumourCore = await copy('ft-tc', (manifest) => ((manifest as { regions?: string[] }).regions = ['TC']));
      await expect(trainUnet(tiny('ft-d', { initialWeights: tumourCore }))).rejects.toThrow(new TrainingError(`${tumourCore}: its model predicts TC; this run trains WT`));
      await expect(trainUnet(tiny('ft-c', { initialWeights: path.join(dir, 'nowhere') }))).rejects.toThrow(TrainingError);
      await expect(trainUnet(tiny('ft-c', { initialWeights: path.join(dir, 'nowhere') }))).rejects.toThrow(/^cannot start from .*nowhere: /);
    });
  });
});
