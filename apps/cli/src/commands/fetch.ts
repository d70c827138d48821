import { DECATHLON_TASKS, fetchDecathlonTask, type FetchProgressEvent } from '@brats/io';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { createProgress, type ProgressReporter } from '../progress.js';

const MEGABYTE = 1_000_000;
/** A redraw per received chunk would flood a terminal; a few per second is enough to read. */
const REDRAW_INTERVAL_MS = 250;

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= MEGABYTE) return `${(bytes / MEGABYTE).toFixed(1)} MB`;
  return `${bytes} B`;
}

/**
 * Turns fetch progress events into progress bars: one per phase and per starting offset, because a resumed
 * or restarted download measures its rate and ETA from where it started, not from byte zero.
 */
function createFetchProgress(context: CliContext): { onProgress: (event: FetchProgressEvent) => void; finish: () => void } {
  let current: { key: string; reporter: ProgressReporter; lastDraw: number } | undefined;
  const finish = (): void => {
    current?.reporter.finish();
    current = undefined;
  };
  const draw = (key: string, make: () => ProgressReporter, done: number, complete: boolean, detail: string): void => {
    if (current?.key !== key) {
      finish();
      current = { key, reporter: make(), lastDraw: 0 };
    }
    const now = performance.now();
    if (!complete && now - current.lastDraw < REDRAW_INTERVAL_MS) return;
    current.lastDraw = now;
    current.reporter.update(done, detail);
  };
  const onProgress = (event: FetchProgressEvent): void => {
    if (event.phase === 'extract') {
      const complete = event.doneEntries === event.totalEntries;
      draw('extract', () => createProgress(context, 'extract', event.totalEntries, 'files'), event.doneEntries, complete, event.entry);
      return;
    }
    const total = event.totalBytes;
    // Whole units keep the bar's counts readable: MB for the real archive, kB for small files.
    const [scale, unit] = total !== undefined && total - event.startBytes >= 100 * MEGABYTE ? [MEGABYTE, 'MB'] : [1000, 'kB'];
    const remaining = total === undefined ? 0 : Math.ceil((total - event.startBytes) / scale);
    const complete = total !== undefined && event.doneBytes === total;
    const done = complete ? remaining : Math.floor((event.doneBytes - event.startBytes) / scale);
    const label = event.phase === 'rehash' ? 'checksum of partial file' : 'download';
    const detail = `${formatBytes(event.doneBytes)}${total === undefined ? '' : ` of ${formatBytes(total)}`}`;
    draw(`${event.phase}@${event.startBytes}`, () => createProgress(context, label, remaining, unit), done, complete, detail);
  };
  return { onProgress, finish };
}

interface FetchCommandOptions {
  task: string;
  dir: string;
  url?: string;
  md5?: string;
  keepArchive?: boolean;
  retries: string;
}

/**
 * `brats fetch [--task T] [--dir DIR] [--url URL] [--md5 HEX]`: downloads a Medical Segmentation Decathlon
 * task (resumable, MD5-verified), extracts it safely and checks that it opens as a dataset.
 */
export function registerFetchCommand(program: Command, context: CliContext): void {
  const known = Object.keys(DECATHLON_TASKS);
  program
    .command('fetch')
    .description('download a Medical Segmentation Decathlon task (default Task01_BrainTumour, 7.6 GB), verify its MD5, extract it')
    .option('--task <name>', `the task to fetch (${known.join(', ')})`, 'Task01_BrainTumour')
    .option('--dir <dir>', 'folder that receives <task>/ (the .tar and its .partial file are written there too)', 'data')
    .option('--url <url>', "download from this URL instead of the task's mirror (the task's MD5 still applies unless --md5 is given)")
    .option('--md5 <hex>', 'expected MD5 of the tar instead of the task\'s (for a different file; then its size is not checked)')
    .option('--keep-archive', 'keep <task>.tar after extraction (default: delete it)')
    .option('--retries <n>', 'retries after network errors, counted since the last byte received', '5')
    .action(async (options: FetchCommandOptions) => {
      if (!known.includes(options.task)) throw new UsageError(`--task: unknown task '${options.task}'; known tasks: ${known.join(', ')}`);
      if (options.md5 !== undefined && !/^[0-9a-fA-F]{32}$/.test(options.md5)) {
        throw new UsageError(`--md5: expected 32 hex digits, got '${options.md5}'`);
      }
      if (options.url !== undefined && !/^https?:\/\//i.test(options.url)) {
        throw new UsageError(`--url: expected an http:// or https:// URL, got '${options.url}'`);
      }
      const retries = Number(options.retries);
      if (!Number.isInteger(retries) || retries < 0) throw new UsageError(`--retries: expected an integer >= 0, got '${options.retries}'`);
      const progress = createFetchProgress(context);
      let result: Awaited<ReturnType<typeof fetchDecathlonTask>>;
      try {
        result = await fetchDecathlonTask({
          dir: options.dir,
          task: options.task,
          retries,
          ...(options.url === undefined ? {} : { url: options.url }),
          ...(options.md5 === undefined ? {} : { md5: options.md5 }),
          ...(options.keepArchive === true ? { keepArchive: true } : {}),
          onProgress: progress.onProgress,
          onNotice: (line) => {
            progress.finish();
            context.stderr.write(`note: ${line}\n`);
          },
        });
      } finally {
        progress.finish();
      }
      const { dataset } = result;
      const labelled = dataset.cases.filter((c) => c.label !== undefined).length;
      printLine(context, `${result.datasetDir}`);
      printLine(context, `  dataset     ${dataset.metadata.name || options.task} (${dataset.layout} layout)`);
      printLine(context, `  cases       ${dataset.cases.length} (${labelled} labelled)`);
      if (!result.downloaded && result.md5 === undefined) {
        printLine(context, '  archive     not downloaded: the dataset folder was already in place');
      } else {
        const resumed = result.resumedFrom > 0 ? `, resumed at byte ${result.resumedFrom}` : '';
        printLine(context, `  archive     MD5 ${result.md5} verified${resumed}; ${result.archive === undefined ? 'deleted after extraction' : `kept at ${result.archive}`}`);
      }
    });
}
