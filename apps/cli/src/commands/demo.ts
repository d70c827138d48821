import path from 'node:path';
import { TRAINING_CURVES_FILE, assignSplits, convertDataset, writeFileAtomic, writePhantomDataset } from '@brats/io';
import { evaluationToJson } from '@brats/metrics';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseInteger } from '../parse.js';
import { runPrediction } from '../predict-run.js';
import { createProgress, type ProgressReporter } from '../progress.js';
import { caseTable, figureBlocks, summaryTable, writeReport } from '../report.js';
import { loadTrainingPackage } from '../training-package.js';

/** The demo's recipe: the seed's pipeline at a size that trains in minutes on two cores. */
export const DEMO_RECIPE = {
  cases: 16,
  /** Phantoms at 2 mm: the whole brain at half the BraTS resolution. */
  size: [120, 120, 78] as [number, number, number],
  spacing: [2, 2, 2] as [number, number, number],
  crop: [96, 96, 64] as [number, number, number],
  split: { train: 0.75, validation: 0.125, testing: 0.125 },
  epochs: 6,
  batchSize: 16,
  stepsPerEpoch: 25,
  tumourFraction: 0.5,
  filters: 8,
  learningRate: 5e-4,
  seed: 816,
};

interface DemoFlags {
  out: string;
  cases: string;
  epochs: string;
  stepsPerEpoch: string;
  size: string;
  seed: string;
}

/** The first split seed from `seed` on whose draws every split gets at least one case. */
function splitSeedWithAllSplits(cases: number, seed: number): number {
  for (let candidate = seed; candidate < seed + 10_000; candidate++) {
    const splits = assignSplits(cases, { seed: candidate, fractions: DEMO_RECIPE.split });
    if (splits.includes('validation') && splits.includes('testing') && splits.includes('train')) return candidate;
  }
  return seed;
}

/**
 * `brats demo [--out DIR]`: the whole pipeline on synthetic phantoms, nothing downloaded: synthesise a
 * Decathlon-layout dataset, convert it to HDF5, train a small U-Net, predict the held-out test cases,
 * evaluate them, write figures, `metrics.json` and `report.html`.
 */
export function registerDemoCommand(program: Command, context: CliContext): void {
  program
    .command('demo')
    .description('run the whole pipeline on synthetic phantoms (synth, convert, train, predict, evaluate, report)')
    .option('--out <dir>', 'output folder', 'brats-demo')
    .option('--cases <n>', 'phantom cases to synthesise', String(DEMO_RECIPE.cases))
    .option('--epochs <n>', 'training epochs', String(DEMO_RECIPE.epochs))
    .option('--steps-per-epoch <n>', 'training batches per epoch', String(DEMO_RECIPE.stepsPerEpoch))
    .option('--size <x,y,z>', 'phantom grid (2 mm voxels); the crop scales with it', DEMO_RECIPE.size.join(','))
    .option('--seed <s>', 'seed of the phantoms, split and training', String(DEMO_RECIPE.seed))
    .action(async (flags: DemoFlags) => {
      const started = performance.now();
      // Training needs @brats/unet: say so before any work is done.
      const { exportBundleToOnnx, trainUnet } = await loadTrainingPackage('demo');
      const out = path.resolve(flags.out);
      const cases = parseInteger('--cases', flags.cases, 4, 1000);
      const epochs = parseInteger('--epochs', flags.epochs, 1, 1000);
      const seed = parseInteger('--seed', flags.seed, 0);
      const stepsPerEpoch = parseInteger('--steps-per-epoch', flags.stepsPerEpoch, 1, 100_000);
      const size = flags.size.split(',').map((part) => parseInteger('--size', part, 32, 512));
      if (size.length !== 3) throw new UsageError(`--size takes three integers X,Y,Z, got '${flags.size}'`);
      // The crop keeps the recipe's proportions, rounded down to a multiple of 16 (four poolings).
      const crop = DEMO_RECIPE.crop.map((extent, axis) => Math.max(16, Math.floor((extent * size[axis]!) / DEMO_RECIPE.size[axis]! / 16) * 16)) as [number, number, number];
      const datasetDir = path.join(out, 'dataset');
      const dataFile = path.join(out, 'slices.h5');
      const bundle = path.join(out, 'model');
      const predictions = path.join(out, 'predictions');

      printLine(context, `1/5 synthesise ${cases} phantom cases (${size.join('x')} at ${DEMO_RECIPE.spacing[0]} mm, Decathlon layout) -> ${datasetDir}`);
      const synthProgress = createProgress(context, 'synth', cases, 'cases');
      await writePhantomDataset(datasetDir, {
        layout: 'msd',
        cases,
        size: size as [number, number, number],
        spacing: DEMO_RECIPE.spacing,
        seed,
        onProgress: (done, _total, caseId) => synthProgress.update(done, caseId),
      });
      synthProgress.finish();

      const splitSeed = splitSeedWithAllSplits(cases, seed);
      printLine(context, `2/5 convert to HDF5 slices (crop ${crop.join('x')}, split seed ${splitSeed}) -> ${dataFile}`);
      const convertProgress = createProgress(context, 'convert', cases, 'cases');
      await convertDataset(datasetDir, dataFile, {
        crop,
        split: DEMO_RECIPE.split,
        seed: splitSeed,
        onCase: (progress) => convertProgress.update(progress.done, progress.caseId),
      });
      convertProgress.finish();

      printLine(context, `3/5 train a U-Net (filters ${DEMO_RECIPE.filters}, ${epochs} epochs) -> ${bundle}`);
      let epochProgress: ProgressReporter | undefined;
      const training = await trainUnet(
        {
          dataFile,
          bundle,
          epochs,
          batchSize: DEMO_RECIPE.batchSize,
          learningRate: DEMO_RECIPE.learningRate,
          filters: DEMO_RECIPE.filters,
          tumourFraction: DEMO_RECIPE.tumourFraction,
          stepsPerEpoch,
          seed,
        },
        {
          onBackend: (selection) => printLine(context, `    backend: ${selection.name} (${selection.reason})`),
          onThreads: (threads, reason) => printLine(context, `    threads: ${threads} (${reason})`),
          onEpochStart: (epoch, total, steps) => (epochProgress = createProgress(context, `    epoch ${epoch}/${total}`, steps, 'batches')),
          onStep: (step) => epochProgress?.update(step),
          onEpochEnd: (record) => {
            epochProgress?.finish(`loss ${record.loss.toFixed(3)}, validation WT Dice ${record.validationDice[0]!.toFixed(3)}`);
          },
        },
      );

      const testIds = training.manifest.training?.split.testing ?? [];
      const onnx = await exportBundleToOnnx(bundle);
      printLine(context, `4/5 export ${path.relative(out, onnx.path)}, predict the ${testIds.length} held-out test case(s) (${testIds.join(', ')}) -> ${predictions}`);
      // Test cases are read through the dataset so their labels come along for scoring.
      const result = await runPrediction(context, {
        model: bundle,
        inputs: [datasetDir],
        out: predictions,
        engine: 'auto',
        tta: false,
        largestComponent: true,
        probabilities: false,
        figures: true,
        title: 'brats demo: held-out phantom cases',
        onlyCases: testIds,
      });

      printLine(context, '5/5 evaluate and report');
      const metricsPath = path.join(out, 'metrics.json');
      const summary = result.summary;
      if (summary !== undefined) await writeFileAtomic(metricsPath, `${JSON.stringify(evaluationToJson(result.evaluations, summary, result.failures), null, 2)}\n`);
      const reportPath = path.join(out, 'report.html');
      const wtDice = summary?.regions.WT?.dice.mean ?? Number.NaN;
      await writeReport(reportPath, 'brats demo: the seed pipeline on synthetic phantoms', [
        {
          kind: 'paragraph',
          text:
            `${cases} synthetic phantom cases (${size.join('x')} voxels of ${DEMO_RECIPE.spacing[0]} mm), converted to HDF5 slices ` +
            `(centre crop ${crop.join('x')}, z-score per channel), a 2D U-Net (filters ${DEMO_RECIPE.filters}, depth 4) trained ${epochs} epochs ` +
            `on ${training.backend.name}, then scored on ${result.cases.length} held-out test case(s): mean WT Dice ${wtDice.toFixed(4)}.`,
        },
        { kind: 'heading', text: 'Training' },
        { kind: 'figure', src: path.relative(out, path.join(bundle, TRAINING_CURVES_FILE)), caption: 'loss and validation Dice per epoch' },
        { kind: 'heading', text: 'Test cases' },
        ...(summary === undefined ? [] : [summaryTable(summary)]),
        caseTable(result.cases, training.manifest.regions),
        { kind: 'heading', text: 'Figures' },
        ...figureBlocks(reportPath, result.cases),
      ]);
      const minutes = (performance.now() - started) / 60000;
      printLine(context);
      printLine(context, `held-out test WT Dice: ${wtDice.toFixed(4)} (mean over ${result.cases.length} case(s)); ${minutes.toFixed(1)} min in all`);
      printLine(context, `report:  ${reportPath}`);
      printLine(context, `metrics: ${metricsPath}`);
      printLine(context, `model:   ${bundle}`);
      if (result.failures.length > 0) context.exitCode = 2;
    });
}
