/**
 * Dataset folder → slice store. Decoding NIfTI is the slow part, so cases are decoded and preprocessed in
 * worker threads while the calling thread writes (and gzips) finished cases strictly in dataset order;
 * at most `workers + 2` cases are in flight, so memory does not grow with the dataset. Writing is the one
 * serial step (h5wasm deflates in WebAssembly, about 0.45 s per 144³ four-channel case at level 1).
 */
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ArgumentError, BratsError, DatasetError } from '../errors.js';
import { openDataset, type CaseRef, type Dataset } from '../layouts/dataset.js';
import { resolvePreprocessing, type PreprocessOptions, type PreprocessSettings } from '../preprocess.js';
import { DEFAULT_MODEL_ORIENTATION } from '../orientation.js';
import { REGION_NAMES } from '../regions.js';
import { formatSpacing, sameSpacing } from '../volume.js';
import {
  CONVERT_WORKER_ROLE,
  CONVERT_WORKER_URL,
  deserializeError,
  prepareCase,
  type ConvertReply,
  type ConvertTask,
  type PrepareOptions,
  type PreparedCase,
} from './convert-worker.js';
import { assignNamedSplits, assignSplits, resolveSplitFractions, DEFAULT_SPLIT_SEED, type NamedSplits, type SplitFractions, type SplitName } from './split.js';
import { writeSliceStore, type SliceStoreAttribute, type SliceStoreCounts, type SliceStoreGeometry } from './writer.js';

/** Options of {@link convertDataset}; preprocessing defaults are the seed's (crop 144, block z-score, WT). */
export interface ConvertDatasetOptions extends PreprocessOptions {
  /** Training fraction (rest halved) or all three fractions (default 0.85). */
  split?: number | Readonly<SplitFractions>;
  /** Split seed (default 816). */
  seed?: number;
  /**
   * Validation and test cases by id; every other case trains (`split` and `seed` are then not used). For held-out
   * cases chosen on purpose, e.g. cases another model never saw.
   */
  namedSplits?: NamedSplits;
  /** Decoding threads; 0 decodes in the calling thread (default: {@link defaultConvertWorkers}). */
  workers?: number;
  /** gzip level of the store (default 1; see {@link DEFAULT_COMPRESSION_LEVEL}). */
  compressionLevel?: number;
  /** Aborts the conversion; no output file is left behind. */
  signal?: AbortSignal;
  /** NaN or infinite image voxels: refuse the case (default) or set them to 0, each case saying how many. */
  nonFinite?: 'error' | 'zero';
  /** Called after each case is written, in dataset order. */
  onCase?: (progress: ConvertProgress) => void;
}

/** Progress of {@link convertDataset}. */
export interface ConvertProgress {
  done: number;
  total: number;
  caseId: string;
  split: SplitName;
  /** What looked wrong with this case but did not stop it (a constant image, extra 4D frames). */
  warnings: readonly string[];
}

/** What {@link convertDataset} wrote. */
export interface ConvertSummary {
  path: string;
  layout: Dataset['layout'];
  /** Cases converted (the labelled ones). */
  cases: number;
  /** Cases without a label map, left out (the Decathlon's test images). */
  skippedUnlabelled: number;
  counts: SliceStoreCounts;
  /** Case ids per split, in store order. */
  splits: Record<SplitName, string[]>;
  geometry: SliceStoreGeometry;
  settings: PreprocessSettings;
  workers: number;
  /** Every case's warnings, in dataset order. */
  warnings: { caseId: string; message: string }[];
  /**
   * The voxel size in mm (i, j, k) every case shares, recorded in the store (`spacing`): a model trained on it is a
   * model of that spacing, and predict resamples other scans to it. Undefined when the cases differ (then none is
   * recorded, the model is taken to be 1 mm, and a warning says so).
   */
  spacing: [number, number, number] | undefined;
}

/** How the split is drawn, stored in the file beside the seed and fractions. */
/** The store's `split_method` when validation and test cases were named. */
export const NAMED_SPLIT_METHOD = 'named: validation and test cases given by id, every other case trains';

export const SPLIT_METHOD =
  'numpy legacy MT19937: np.random.seed(seed); u = np.random.random(n) over cases in dataset order; ' +
  'u < train -> training; then v = np.random.random(m) over the m remaining cases in order; ' +
  'v >= testing/(validation+testing) -> validation, else testing';

/** Memory a decoding thread needs at its peak for a 240x240x155 four-channel case (measured, with margin). */
const WORKER_PEAK_BYTES = 640 * 2 ** 20;

/**
 * Default number of decoding threads: one per core except the core the writing thread keeps busy (it gzips every
 * chunk, the one serial step), at least 1 and at most 8, and no more than half of the machine's memory allows at
 * about 0.6 GB per thread (each holds one decoded case at a time). A decoding thread per core left the writer
 * sharing its core: on 2 cores, 0.59 s per case with 2 decoding threads against 0.52 s with 1 (`bench:convert`).
 */
export function defaultConvertWorkers(): number {
  const byMemory = Math.floor(os.totalmem() / 2 / WORKER_PEAK_BYTES);
  return Math.max(1, Math.min(os.availableParallelism() - 1, 8, byMemory));
}

function relativeTo(root: string, file: string): string {
  const relative = path.relative(root, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

type Decoder = {
  decode(index: number, ref: CaseRef): Promise<PreparedCase>;
  close(): Promise<void>;
};

function createInlineDecoder(options: PrepareOptions): Decoder {
  return { decode: (_index, ref) => prepareCase(ref, options), close: async () => {} };
}

function startWorker(): Worker {
  const workerData = { role: CONVERT_WORKER_ROLE, entry: CONVERT_WORKER_URL };
  // From TypeScript sources (tests) the worker needs a loader; see typescript-worker.mjs.
  if (CONVERT_WORKER_URL.endsWith('.ts')) return new Worker(new URL('./typescript-worker.mjs', import.meta.url), { workerData });
  return new Worker(new URL(CONVERT_WORKER_URL), { workerData });
}

function createWorkerDecoder(count: number, options: PrepareOptions): Decoder {
  const idle: Worker[] = [];
  const waiting: { task: ConvertTask; resolve: (value: PreparedCase) => void; reject: (error: unknown) => void }[] = [];
  const pending = new Map<number, { resolve: (value: PreparedCase) => void; reject: (error: unknown) => void; worker: Worker }>();
  const workers: Worker[] = [];
  let failure: unknown;

  const dispatch = () => {
    while (idle.length > 0 && waiting.length > 0) {
      const worker = idle.pop()!;
      const job = waiting.shift()!;
      pending.set(job.task.index, { resolve: job.resolve, reject: job.reject, worker });
      worker.postMessage(job.task);
    }
  };
  const failAll = (error: unknown) => {
    failure ??= error;
    for (const job of pending.values()) job.reject(failure);
    pending.clear();
    for (const job of waiting.splice(0)) job.reject(failure);
  };
  for (let n = 0; n < count; n++) {
    const worker = startWorker();
    worker.on('message', (reply: ConvertReply) => {
      const job = pending.get(reply.index);
      if (job === undefined) return;
      pending.delete(reply.index);
      idle.push(worker);
      if (reply.ok) job.resolve(reply.prepared);
      else job.reject(deserializeError(reply.error));
      dispatch();
    });
    worker.on('error', (error) => failAll(new BratsError('CONVERT_WORKER', `a decoding thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => {
      if (code !== 0) failAll(new BratsError('CONVERT_WORKER', `a decoding thread exited with code ${code}`));
    });
    workers.push(worker);
    idle.push(worker);
  }
  return {
    decode(index, ref) {
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<PreparedCase>((resolve, reject) => {
        waiting.push({ task: { index, ref, options }, resolve, reject });
        dispatch();
      });
    },
    async close() {
      failure ??= new BratsError('CONVERT_CLOSED', 'the decoding threads were stopped');
      await Promise.all(workers.map((worker) => worker.terminate()));
    },
  };
}

function abortError(signal: AbortSignal): BratsError {
  return new BratsError('ABORTED', 'conversion interrupted; no output file was written', { cause: signal.reason });
}

/**
 * `promise`, or a rejection as soon as `signal` aborts. Not Promise.race against one long-lived abort promise:
 * every race would stay attached to it and keep its resolved case (tens of MB) alive until the end.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Converts a dataset folder (Decathlon Task01, BraTS 2017-2021 or 2023+ layout) into one slice store:
 * each case is decoded, cropped and normalised (preprocessCase), split by case with the seed's draws, and its
 * z slices appended to imgs_/msks_ of its split, cases in dataset order whatever the number of workers.
 * The file appears at `outPath` only once complete.
 * @throws {ArgumentError} for invalid options (fractions, seed, workers, preprocessing).
 * @throws {DatasetError} for an unknown layout, an empty dataset, an unlabelled or unreadable case.
 * @throws {BratsError} with code ABORTED when `signal` aborts.
 * @example await convertDataset('Task01_BrainTumour', 'brats.h5', { crop: 144, workers: 4 });
 */
export async function convertDataset(datasetDir: string, outPath: string, options: ConvertDatasetOptions = {}): Promise<ConvertSummary> {
  const settings = resolvePreprocessing(options);
  const fractions = resolveSplitFractions(options.split);
  const seed = options.seed ?? DEFAULT_SPLIT_SEED;
  const workers = options.workers ?? defaultConvertWorkers();
  if (!Number.isInteger(workers) || workers < 0) {
    throw new ArgumentError('convertDataset', 'workers', `must be a non-negative integer, got ${workers}`);
  }
  const dataset = await openDataset(datasetDir);
  // Like the seed, only labelled (training) cases are converted; the Decathlon's test images have no labels.
  const cases = dataset.cases.filter((ref) => ref.label !== undefined);
  if (cases.length === 0) throw new DatasetError(dataset.root, `has no labelled cases to convert (${dataset.cases.length} without labels)`);
  const splits = options.namedSplits === undefined ? assignSplits(cases.length, { seed, fractions }) : assignNamedSplits(cases.map((ref) => ref.id), options.namedSplits);
  const [height, width] = settings.cropSize;
  const geometry: SliceStoreGeometry = {
    height,
    width,
    channels: settings.channels.length,
    maskChannels: settings.target === 'wt' ? 1 : REGION_NAMES.length,
  };
  const preprocessOptions: PrepareOptions = {
    crop: settings.cropSize,
    cropMode: settings.cropMode,
    normalize: settings.normalize,
    target: settings.target,
    channels: settings.channels,
    ...(options.nonFinite === undefined ? {} : { nonFinite: options.nonFinite }),
  };
  const attributes: Record<string, SliceStoreAttribute> = {
    crop_size: settings.cropSize,
    crop_mode: settings.cropMode,
    normalize: settings.normalize,
    target: settings.target,
    channels: settings.channels,
    mask_regions: settings.target === 'wt' ? ['WT'] : REGION_NAMES,
    slice_axis: 'k',
    // Every case is turned to this orientation before slicing (prepareCase): each k slice axial, as in BraTS.
    orientation: DEFAULT_MODEL_ORIENTATION,
    slice_layout: '[height = i, width = j, channels] channels last',
    ...(options.namedSplits === undefined
      ? { split_seed: seed, split_fractions: [fractions.train, fractions.validation, fractions.testing], split_method: SPLIT_METHOD }
      : { split_method: NAMED_SPLIT_METHOD }),
    source_layout: dataset.layout,
    source_root: dataset.root,
    label_mapping: dataset.labelMapping.name,
    case_count: cases.length,
    created_by: '@brats/io convertDataset',
  };
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal);
  const decoder = workers === 0 ? createInlineDecoder(preprocessOptions) : createWorkerDecoder(Math.min(workers, cases.length), preprocessOptions);
  const total = cases.length;
  const caseIds: Record<SplitName, string[]> = { train: [], validation: [], testing: [] };
  const warnings: { caseId: string; message: string }[] = [];
  const spacings: { caseId: string; spacing: [number, number, number]; file: string }[] = [];
  let spacing: [number, number, number] | undefined;
  try {
    const counts = await writeSliceStore(
      outPath,
      { geometry, metadata: dataset.metadata, attributes, ...(options.compressionLevel === undefined ? {} : { compressionLevel: options.compressionLevel }) },
      async (writer) => {
        const inFlight = new Map<number, Promise<PreparedCase>>();
        // Threads: each busy one plus two finished cases waiting for their turn. Inline: the case being
        // written plus the next one, whose file reads and gunzip overlap the write.
        const limit = workers === 0 ? 2 : workers + 2;
        let next = 0;
        const fill = () => {
          while (next < total && inFlight.size < limit) {
            const promise = decoder.decode(next, cases[next]!);
            // Rejections are handled when the case's turn comes; avoid unhandled-rejection noise before that.
            promise.catch(() => {});
            inFlight.set(next, promise);
            next++;
          }
        };
        for (let index = 0; index < total; index++) {
          fill();
          const prepared = await untilAborted(inFlight.get(index)!, signal);
          inFlight.delete(index);
          if (signal?.aborted) throw abortError(signal);
          const ref = cases[index]!;
          const split = splits[index]!;
          writer.appendCase(split, {
            id: prepared.id,
            shape: prepared.shape,
            image: prepared.image,
            mask: prepared.mask,
            tumourVoxels: prepared.tumourVoxels,
            firstZ: prepared.params.cropStart[2],
            inputFiles: ref.images.map((file) => relativeTo(dataset.root, file)),
            ...(ref.label === undefined ? {} : { labelFile: relativeTo(dataset.root, ref.label) }),
            params: { cropStart: prepared.params.cropStart, originalShape: prepared.params.originalShape, channelStats: prepared.params.channelStats },
          });
          caseIds[split].push(prepared.id);
          spacings.push({ caseId: prepared.id, spacing: prepared.spacing, file: ref.images[0]! });
          for (const message of prepared.warnings) warnings.push({ caseId: prepared.id, message });
          options.onCase?.({ done: index + 1, total, caseId: prepared.id, split, warnings: prepared.warnings });
        }
        // Written with the other attributes when the store is finished.
        const odd = spacings.find(({ spacing: other }) => !sameSpacing(other, spacings[0]!.spacing));
        if (odd === undefined) {
          spacing = spacings[0]!.spacing;
          attributes['spacing'] = spacing;
        } else {
          warnings.push({
            caseId: odd.caseId,
            message: `${odd.file}: spacing ${formatSpacing(odd.spacing)} mm, but ${spacings[0]!.caseId} has ${formatSpacing(spacings[0]!.spacing)} mm: the store records no spacing, and a model trained on it is taken to be a 1 mm model; resample the scans to one spacing first`,
          });
        }
        return writer.counts;
      },
    );
    return {
      path: path.resolve(outPath),
      layout: dataset.layout,
      cases: total,
      skippedUnlabelled: dataset.cases.length - total,
      counts,
      splits: caseIds,
      geometry,
      settings,
      workers,
      warnings,
      spacing,
    };
  } finally {
    await decoder.close();
  }
}

