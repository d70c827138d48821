import { DEFAULT_PHANTOM_SIZE, PHANTOM_LAYOUTS, writePhantomDataset, type PhantomLayout } from '@brats/io';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseInteger } from '../parse.js';
import { createProgress } from '../progress.js';

const MAXIMUM_CASES = 100000;

/** Parses `X,Y,Z` (or `XxYxZ`) into a grid size. */
function parseSize(text: string): [number, number, number] {
  const parts = text.split(/[,x]/);
  if (parts.length !== 3) throw new UsageError(`--size: expected three integers X,Y,Z (e.g. 240,240,155), got '${text}'`);
  return parts.map((part) => parseInteger('--size', part, 16, 1024)) as [number, number, number];
}

interface SynthOptions {
  out: string;
  layout: string;
  cases: string;
  size: string;
  seed: string;
  skull?: boolean;
  labels: boolean;
}

/**
 * `brats synth --out DIR [--layout msd|brats2018|brats2023] [--cases N] [--size X,Y,Z] [--seed S] [--skull]
 * [--no-labels]`: writes a synthetic glioma dataset that every later step can read.
 */
export function registerSynthCommand(program: Command, context: CliContext): void {
  program
    .command('synth')
    .description('write synthetic glioma phantoms (FLAIR, T1w, T1gd, T2w, labels) in a dataset layout, so every step runs without a download')
    .requiredOption('--out <dir>', 'output folder (created if missing; files of the same names are replaced)')
    .option('--layout <name>', `dataset layout: ${PHANTOM_LAYOUTS.filter((name) => name !== 'brats2017').join(', ')}`, 'msd')
    .option('--cases <n>', 'number of cases', '4')
    .option('--size <x,y,z>', 'grid size in voxels; the anatomy fills the grid (1 mm voxels)', DEFAULT_PHANTOM_SIZE.join(','))
    .option('--seed <n>', 'dataset seed: the same seed writes byte-identical files', '0')
    .option('--skull', 'keep skull, scalp and the noise around the head, like a raw scan (default: skull-stripped like BraTS)')
    .option('--no-labels', 'write no label maps (an unlabelled test set)')
    .action(async (options: SynthOptions) => {
      const layout = options.layout.trim().toLowerCase();
      if (!(PHANTOM_LAYOUTS as readonly string[]).includes(layout)) {
        throw new UsageError(`--layout: '${options.layout}' is unknown; known: ${PHANTOM_LAYOUTS.join(', ')}`);
      }
      const cases = parseInteger('--cases', options.cases, 1, MAXIMUM_CASES);
      const size = parseSize(options.size);
      const seed = parseInteger('--seed', options.seed, 0, Number.MAX_SAFE_INTEGER);
      const progress = createProgress(context, 'synth', cases, 'cases');
      const summary = await writePhantomDataset(options.out, {
        layout: layout as PhantomLayout,
        cases,
        size,
        seed,
        labels: options.labels,
        skull: options.skull === true,
        onProgress: (done, _total, caseId) => progress.update(done, caseId),
      });
      progress.finish();
      printLine(
        context,
        `wrote ${cases} phantom case${cases === 1 ? '' : 's'} (${summary.layout}, ${size.join('x')} voxels, seed ${seed}, ` +
          `${options.labels ? 'with' : 'without'} labels) to ${summary.directory}`,
      );
      printLine(context, `  first case  ${summary.caseIds[0]!}`);
      printLine(context, `  files       ${summary.files.length}`);
    });
}
