import { openDataset, readModelManifest, writeModelManifest, type InferenceDefaults } from '@brats/io';
import { tuneInference } from '@brats/ncs2-runtime';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { ENGINE_CHOICES, openEngine } from '../engine-choice.js';
import { resolveModelArgument } from '../default-model.js';
import { UsageError } from '../errors.js';
import { parseChoice } from '../parse.js';
import { createProgress } from '../progress.js';

/** The chosen settings in one line: flips, component, and for a regions model the thresholds and the ET minimum. */
export function describeInference(inference: InferenceDefaults): string {
  const parts = [`tta ${inference.tta ? 'on' : 'off'}`, `largest component ${inference.largestComponent ? 'on' : 'off'}`];
  if (inference.componentRegions !== undefined && inference.componentRegions.length > 0) parts.push(`largest component of ${inference.componentRegions.join(' and ')} as well`);
  if (inference.thresholds !== undefined) parts.push(`thresholds ${Object.entries(inference.thresholds).map(([region, value]) => `${region} ${value}`).join(', ')}`);
  if (inference.minEnhancingVoxels !== undefined) parts.push(`enhancing tumour under ${inference.minEnhancingVoxels} voxels relabelled as core`);
  const smallest = Object.entries(inference.minComponentVoxels ?? {});
  if (smallest.length > 0) parts.push(`components under ${smallest.map(([region, voxels]) => `${voxels} voxels (${region})`).join(', ')} removed`);
  return parts.join(', ');
}

interface TuneFlags {
  data: string;
  cases?: string;
  engine: string;
  device?: string;
}

/**
 * `brats tune BUNDLE --data DATASET [--cases ID,ID]`: scores test-time flips and largest component on labelled
 * validation cases (by default the bundle's own validation split) and writes the winner, with every option's
 * figures, into the bundle's manifest (`inference`), which predict, infer and the server then apply.
 */
export function registerTuneCommand(program: Command, context: CliContext): void {
  program
    .command('tune')
    .description("choose the bundle's post-processing (flips, largest component) on its validation cases and record it in the manifest")
    .argument('<bundle>', 'model bundle folder')
    .requiredOption('--data <dataset>', 'dataset folder holding the validation cases (any layout, with labels)')
    .option('--cases <ids>', "comma-separated case ids (default: the bundle's validation split)")
    .option('--engine <name>', `engine: ${ENGINE_CHOICES.join(', ')}`, 'auto')
    .option('--device <name>', 'device for the runtime engines (CPU, GPU, NPU, AUTO)')
    .action(async (given: string, flags: TuneFlags) => {
      const bundle = await resolveModelArgument(given, 'bundle');
      const manifest = await readModelManifest(bundle);
      const wanted = flags.cases !== undefined ? flags.cases.split(',').map((id) => id.trim()).filter((id) => id.length > 0) : [...(manifest.training?.split.validation ?? [])];
      if (wanted.length === 0) throw new UsageError(`${bundle} records no validation cases: name them with --cases`);
      const dataset = await openDataset(flags.data);
      const byId = new Map(dataset.cases.map((ref) => [ref.id, ref]));
      const missing = wanted.filter((id) => !byId.has(id));
      if (missing.length > 0) throw new UsageError(`${flags.data} has no case ${missing.join(', ')}`);
      const cases = wanted.map((id) => byId.get(id)!);
      const unlabelled = cases.filter((ref) => ref.label === undefined).map((ref) => ref.id);
      if (unlabelled.length > 0) throw new UsageError(`case ${unlabelled.join(', ')} in ${flags.data} has no label map to score against`);
      const engine = await openEngine(bundle, parseChoice('--engine', flags.engine, ENGINE_CHOICES), flags.device === undefined ? {} : { device: flags.device });
      printLine(context, `engine: ${engine.name} on ${engine.device} (${engine.reason})`);
      const progress = createProgress(context, 'tune', cases.length, 'cases');
      let inference;
      try {
        inference = await tuneInference(cases, manifest, engine.runner, { bundle, data: flags.data, onCase: (done, _total, id) => progress.update(done, id) });
      } finally {
        await engine.runner.dispose();
      }
      progress.finish();
      const { selection } = inference;
      printLine(context, `${'tta'.padEnd(5)}${'largest component'.padEnd(19)}${selection.metric.padEnd(20)}per case (${selection.cases.join(', ')})`);
      // The grid's winner: for a regions model the component is decided again below, after the thresholds.
      const winner = selection.candidates.reduce((top, candidate) => (candidate.mean > top.mean ? candidate : top));
      for (const candidate of selection.candidates) {
        const chosen = candidate === winner;
        printLine(
          context,
          `${(candidate.tta ? 'on' : 'off').padEnd(5)}${(candidate.largestComponent ? 'on' : 'off').padEnd(19)}${candidate.mean.toFixed(4).padEnd(20)}${candidate.perCase.map((value) => value.toFixed(4)).join(', ')}${chosen ? '   <- chosen' : ''}`,
        );
      }
      for (const [region, tried] of Object.entries(selection.thresholdCandidates ?? {})) {
        printLine(context, `${region} threshold: ${tried.map((entry) => `${entry.threshold} ${entry.mean.toFixed(4)}`).join(', ')}   <- ${inference.thresholds?.[region as 'WT']}`);
      }
      if (selection.componentCandidates !== undefined) {
        printLine(
          context,
          `largest component under these thresholds: ${selection.componentCandidates.map((entry) => `${entry.largestComponent ? 'on' : 'off'} ${entry.mean.toFixed(5)}`).join(', ')}   <- ${inference.largestComponent ? 'on' : 'off'}`,
        );
      }
      for (const region of new Set((selection.innerComponentCandidates ?? []).map((entry) => entry.region))) {
        const tried = selection.innerComponentCandidates!.filter((entry) => entry.region === region);
        printLine(
          context,
          `largest component of ${region} as well: ${tried.map((entry) => `${entry.largestComponent ? 'on' : 'off'} ${entry.mean.toFixed(5)}`).join(', ')}   <- ${inference.componentRegions?.includes(region) ? 'on' : 'off'}`,
        );
      }
      if (selection.enhancingCandidates !== undefined) {
        printLine(context, `smallest enhancing tumour (voxels): ${selection.enhancingCandidates.map((entry) => `${entry.minEnhancingVoxels} ${entry.mean.toFixed(4)}`).join(', ')}   <- ${inference.minEnhancingVoxels}`);
      }
      for (const [region, tried] of Object.entries(selection.componentMinimumCandidates ?? {})) {
        printLine(
          context,
          `${region} smallest component kept (voxels: lesion-wise Dice / Dice): ${tried.map((entry) => `${entry.minComponentVoxels} ${entry.lesionWiseDice.toFixed(4)}/${entry.dice.toFixed(4)}`).join(', ')}   <- ${inference.minComponentVoxels?.[region as 'WT'] ?? 0}`,
        );
      }
      await writeModelManifest(bundle, { ...manifest, inference });
      printLine(context, `inference: ${describeInference(inference)} written to ${bundle}/brats-model.json`);
    });
}
