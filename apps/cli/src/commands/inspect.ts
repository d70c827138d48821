import { promises as fs } from 'node:fs';
import {
  DEFAULT_MODEL_ORIENTATION,
  describeOrientation,
  inspectDataset,
  inspectNifti,
  inspectSliceStore,
  type DatasetSummary,
  type NiftiSummary,
  type SliceStoreSummary,
} from '@brats/io';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { createProgress } from '../progress.js';

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(6);
}

/** `1.50 L`, `250 mL`, `0.002 mL`: a volume as a person reads it. */
function formatVolume(millilitres: number): string {
  return millilitres >= 1000 ? `${(millilitres / 1000).toFixed(2)} L` : `${Number(millilitres.toPrecision(3))} mL`;
}

function printNifti(context: CliContext, summary: NiftiSummary): void {
  printLine(context, `${summary.path}`);
  printLine(context, `  format      NIfTI-${summary.niftiVersion}, ${summary.byteOrder}`);
  printLine(context, `  dtype       ${summary.dtype}`);
  printLine(context, `  shape       ${summary.shape.join(' x ')}`);
  printLine(context, `  spacing     ${summary.spacing.map(formatNumber).join(' x ')} mm`);
  if (summary.orientation !== undefined) {
    const turned =
      summary.orientation === DEFAULT_MODEL_ORIENTATION
        ? 'as BraTS stores scans'
        : `segmentation turns it to its model's orientation (${DEFAULT_MODEL_ORIENTATION} for the shipped models, as BraTS)`;
    printLine(context, `  orientation ${describeOrientation(summary.orientation)}: ${turned}`);
  }
  printLine(context, `  qform/sform codes ${summary.qformCode}/${summary.sformCode}`);
  printLine(context, '  affine');
  for (const row of summary.affine) printLine(context, `    ${row.map((v) => formatNumber(v).padStart(10)).join(' ')}`);
  printLine(context, `  range       ${formatNumber(summary.range.min)} .. ${formatNumber(summary.range.max)} (mean ${formatNumber(summary.range.mean)})`);
  const { nan, infinite } = summary.nonFinite;
  if (nan + infinite > 0) {
    printLine(context, `  non-finite  ${nan + infinite} NaN or infinite voxels (${nan} NaN, ${infinite} infinite; range and mean leave them out): predict and convert refuse this file unless --replace-non-finite`);
  }
  const volumes = summary.nonZeroMl.map(formatVolume).join(', ');
  printLine(context, `  non-zero    ${summary.nonZeroMl.length > 1 ? `frames ${volumes}, each` : volumes} of a ${formatVolume(summary.fieldOfViewMl)} field of view`);
  if (summary.labelCounts !== undefined) {
    printLine(context, `  labels      ${Object.entries(summary.labelCounts).map(([value, count]) => `${value}: ${count}`).join(', ')}`);
  }
}

function printDataset(context: CliContext, summary: DatasetSummary): void {
  printLine(context, `${summary.root}`);
  printLine(context, `  layout      ${summary.layout} (labels: ${summary.labelConvention})`);
  printLine(context, `  modalities  ${summary.modalities.join(', ')}`);
  printLine(context, `  cases       ${summary.caseCount} (${summary.labelledCount} labelled)`);
  const labelSets = new Set(summary.cases.filter((c) => c.labels !== undefined).map((c) => c.labels!.join(',')));
  if (labelSets.size > 0) printLine(context, `  label sets  ${[...labelSets].map((set) => `{${set}}`).join(' ')}`);
  const shapes = new Set(summary.cases.filter((c) => c.shape !== undefined).map((c) => c.shape!.join('x')));
  if (shapes.size > 0) printLine(context, `  shapes      ${[...shapes].join(', ')}`);
  printLine(context, `  problems    ${summary.problems.length === 0 ? 'none' : summary.problems.length}`);
  for (const problem of summary.problems) printLine(context, `    - ${problem}`);
  printLine(context, `  warnings    ${summary.warnings.length === 0 ? 'none' : summary.warnings.length}`);
  for (const warning of summary.warnings) printLine(context, `    - ${warning}`);
}

function printSliceStore(context: CliContext, summary: SliceStoreSummary): void {
  printLine(context, `${summary.path}`);
  printLine(context, `  format      ${summary.format ?? 'not a @brats store (the seed\'s layout)'}${summary.formatVersion === null ? '' : ` v${summary.formatVersion}`}`);
  for (const [split, info] of Object.entries(summary.splits)) {
    printLine(
      context,
      `  ${split.padEnd(11)} ${info.slices} slices of ${info.imageShape.slice(1).join('x')} (${info.imageDtype}), masks ${info.maskShape.slice(1).join('x')}, ` +
        `${info.cases ?? '?'} cases, tumour in ${(info.tumourSliceFraction * 100).toFixed(1)}% of slices`,
    );
  }
  for (const [name, value] of Object.entries(summary.parameters)) printLine(context, `  ${name.padEnd(16)} ${JSON.stringify(value)}`);
}

/** `brats inspect PATH [--json]`: a NIfTI file's header and values, or a dataset folder's layout and problems. */
export function registerInspectCommand(program: Command, context: CliContext): void {
  program
    .command('inspect')
    .description('summarise a NIfTI file (header, dtype, shape, spacing, affine, values, labels), a dataset folder or an HDF5 slice store')
    .argument('<path>', 'a .nii/.nii.gz file, a dataset folder or a .h5 slice store')
    .option('--json', 'print one JSON document instead of text')
    .option('--no-validate', 'for a folder: list cases without decoding them')
    .action(async (target: string, options: { json?: boolean; validate: boolean }) => {
      const stat = await fs.stat(target).catch(() => undefined);
      if (stat === undefined) throw new UsageError(`${target}: no such file or folder`);
      if (stat.isDirectory()) {
        let reporter: ReturnType<typeof createProgress> | undefined;
        const summary = await inspectDataset(target, {
          validate: options.validate,
          onProgress: (done, total, caseId) => {
            if (!options.validate) return;
            reporter ??= createProgress(context, 'inspect', total, 'cases');
            reporter.update(done, caseId);
          },
        });
        reporter?.finish();
        if (options.json === true) printLine(context, JSON.stringify(summary, null, 2));
        else printDataset(context, summary);
        // Problems are bad input data: report them all, then exit 2.
        if (summary.problems.length > 0) context.exitCode = 2;
        return;
      }
      if (/\.(h5|hdf5)$/i.test(target)) {
        const store = await inspectSliceStore(target);
        if (options.json === true) printLine(context, JSON.stringify(store, null, 2));
        else printSliceStore(context, store);
        return;
      }
      const summary = await inspectNifti(target);
      if (options.json === true) printLine(context, JSON.stringify(summary, null, 2));
      else printNifti(context, summary);
    });
}
