import { promises as fs } from 'node:fs';
import path from 'node:path';
import { temporaryPathFor } from '../atomic.js';
import { ArgumentError } from '../errors.js';
import { openDataset, type Dataset } from '../layouts/dataset.js';
import { extractArchive } from './archive.js';
import { downloadFile, type DownloadProgress } from './download.js';
import { FetchError } from './errors.js';

/** Where a Medical Segmentation Decathlon task's tar lives and how to recognise it. */
export interface DecathlonTaskSource {
  /** Task folder name inside the tar, e.g. `Task01_BrainTumour`. */
  task: string;
  /** URL of the tar. */
  url: string;
  /** MD5 of the tar in lower-case hex. */
  md5: string;
  /** Size of the tar in bytes. */
  bytes: number;
}

/**
 * Decathlon tasks `brats fetch` knows: the public mirror and checksum MONAI's `DecathlonDataset` uses.
 * Only the brain-tumour task is listed, the one the @brats layouts read.
 */
export const DECATHLON_TASKS: Readonly<Record<string, DecathlonTaskSource>> = {
  Task01_BrainTumour: {
    task: 'Task01_BrainTumour',
    url: 'https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar',
    md5: '240a19d752f0d9e9101544901065d872',
    bytes: 7_608_266_240,
  },
};

/** Progress of {@link fetchDecathlonTask}: download bytes (see {@link DownloadProgress}) or extracted entries. */
export type FetchProgressEvent =
  | DownloadProgress
  | {
      phase: 'extract';
      /** Entries read so far. */
      doneEntries: number;
      /** Entries in the archive. */
      totalEntries: number;
      /** Path of the last entry, as stored in the archive. */
      entry: string;
    };

/** Options of {@link fetchDecathlonTask}. */
export interface FetchDecathlonOptions {
  /** Folder that receives `<task>/` (and, while downloading, `<task>.tar.partial`). */
  dir: string;
  /** A key of {@link DECATHLON_TASKS} (default `Task01_BrainTumour`). */
  task?: string;
  /** Another URL for the task's tar (a mirror); the task's MD5 and size still apply unless `md5` is given. */
  url?: string;
  /** Expected MD5 of the tar instead of the task's (then the task's size is not checked either). */
  md5?: string;
  /** Keep `<task>.tar` after extraction (default: delete it once the dataset is in place). */
  keepArchive?: boolean;
  /** See {@link DownloadOptions.retries}. */
  retries?: number;
  /** See {@link DownloadOptions.retryDelayMs}. */
  retryDelayMs?: number;
  /** See {@link DownloadOptions.idleTimeoutMs}. */
  idleTimeoutMs?: number;
  /** Called as bytes arrive and entries are extracted. */
  onProgress?: (event: FetchProgressEvent) => void;
  /** Called with one line for each event a user should know of (resume, restart, retry, skip). */
  onNotice?: (message: string) => void;
}

/** What {@link fetchDecathlonTask} did. */
export interface FetchDecathlonResult {
  /** The dataset folder, readable by `openDataset`. */
  datasetDir: string;
  /** The opened dataset. */
  dataset: Dataset;
  /** False when the dataset folder was already there and nothing was downloaded. */
  downloaded: boolean;
  /** The tar file when it was kept, else undefined. */
  archive: string | undefined;
  /** MD5 of the tar (undefined when nothing was downloaded). */
  md5: string | undefined;
  /** Bytes taken from an earlier partial download. */
  resumedFrom: number;
}

/**
 * Downloads a Medical Segmentation Decathlon task's tar into `dir` (resumable, MD5-verified, see
 * {@link downloadFile}), extracts it into a temporary folder beside the target after refusing any entry that
 * could escape it (see {@link extractArchive}), checks that `openDataset` reads the result, and only then
 * renames it to `dir/<task>`, so a crash never leaves a half-extracted dataset that looks whole. A dataset
 * folder already in place is opened and returned without any download.
 * @throws {ArgumentError} for an unknown task (the message lists the known ones) or a malformed `md5`.
 * @throws {FetchError} for download failures (see {@link downloadFile}), unsafe or unreadable archives,
 * an archive without `<task>/dataset.json`, or an existing `dir/<task>` that is not a readable dataset.
 * @throws {DatasetError} when the extracted `dataset.json` is not a readable Decathlon dataset.
 * @example const { dataset } = await fetchDecathlonTask({ dir: 'data' }); // data/Task01_BrainTumour
 */
export async function fetchDecathlonTask(options: FetchDecathlonOptions): Promise<FetchDecathlonResult> {
  const taskName = options.task ?? 'Task01_BrainTumour';
  const source = DECATHLON_TASKS[taskName];
  if (source === undefined) {
    throw new ArgumentError('fetchDecathlonTask', 'task', `is '${taskName}'; known tasks: ${Object.keys(DECATHLON_TASKS).join(', ')}`);
  }
  const dir = path.resolve(options.dir);
  const datasetDir = path.join(dir, source.task);
  if (await fs.stat(datasetDir).then(() => true, () => false)) {
    let dataset: Dataset;
    try {
      dataset = await openDataset(datasetDir);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new FetchError('exists', `${datasetDir} exists but is not a readable dataset (${reason}); remove it and run again`, {
        path: datasetDir,
      }, { cause: error });
    }
    options.onNotice?.(`${datasetDir} is already in place; nothing to download`);
    return { datasetDir, dataset, downloaded: false, archive: undefined, md5: undefined, resumedFrom: 0 };
  }

  const archive = path.join(dir, `${source.task}.tar`);
  const url = options.url ?? source.url;
  const download = await downloadFile(url, archive, {
    md5: options.md5 ?? source.md5,
    ...(options.md5 === undefined ? { expectedBytes: source.bytes } : {}),
    ...(options.retries === undefined ? {} : { retries: options.retries }),
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    ...(options.onNotice === undefined ? {} : { onNotice: options.onNotice }),
  });

  const staging = temporaryPathFor(datasetDir);
  let dataset: Dataset;
  try {
    const entries = await extractArchive(archive, staging, {
      onProgress: (doneEntries, totalEntries, entry) => options.onProgress?.({ phase: 'extract', doneEntries, totalEntries, entry }),
    });
    const stagedDataset = path.join(staging, source.task);
    if (!(await fs.stat(path.join(stagedDataset, 'dataset.json')).then((stat) => stat.isFile(), () => false))) {
      const tops = [...new Set(entries.map((entry) => entry.path.split(/[/\\]+/).find((s) => s !== '' && s !== '.') ?? ''))];
      throw new FetchError(
        'archive',
        `${archive}: expected ${source.task}/dataset.json in the archive, found top-level entries [${tops.slice(0, 5).join(', ')}]`,
        { path: archive, url },
      );
    }
    await openDataset(stagedDataset);
    await fs.rename(stagedDataset, datasetDir);
    dataset = await openDataset(datasetDir);
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true });
    throw error;
  }
  // Anything else the archive held beside the task folder (e.g. macOS `._*` files) goes with the staging folder.
  await fs.rm(staging, { recursive: true, force: true });
  if (options.keepArchive !== true) await fs.rm(archive, { force: true });
  return {
    datasetDir,
    dataset,
    downloaded: !download.alreadyPresent,
    archive: options.keepArchive === true ? archive : undefined,
    md5: download.md5,
    resumedFrom: download.resumedFrom,
  };
}
