/**
 * Writing a slice store: per split, images [N, height, width, channels] float32 and masks [N, height,
 * width, K] uint8, one slice per gzip chunk, grown case by case (axis 0 unlimited) so that memory holds one
 * case at a time whatever the number of cases; a per-slice index; the seed's metadata datasets; every
 * preprocessing parameter as a root attribute. The file appears under its name only once closed.
 */
import path from 'node:path';
import { ArgumentError, BratsError, ShapeMismatchError } from '../errors.js';
import { withAtomicPath } from '../atomic.js';
import { METADATA_DATASETS, SLICE_STORE_FORMAT, SLICE_STORE_FORMAT_VERSION, splitDatasetNames, type MetadataDatasetName } from './format.js';
import { loadH5wasm, writeStrings, type H5Dataset, type H5File } from './h5.js';
import { SPLIT_NAMES, type SplitName } from './split.js';
import { SliceStoreError } from './errors.js';

/** Size of every slice in a store: [height, width] of each z plane, image channels C and mask channels K. */
export interface SliceStoreGeometry {
  height: number;
  width: number;
  channels: number;
  maskChannels: number;
}

/** A value stored as a root attribute: scalars, number tuples or string lists. */
export type SliceStoreAttribute = string | number | boolean | readonly number[] | readonly string[];

/** Options of {@link writeSliceStore}. */
export interface WriteSliceStoreOptions {
  geometry: SliceStoreGeometry;
  /** The seed's descriptive strings (`license` also accepts the Decathlon's spelling `licence`). */
  metadata?: Partial<Record<MetadataDatasetName | 'licence', string | readonly string[]>>;
  /** Root attributes: every preprocessing parameter, the split seed and fractions, provenance. */
  attributes?: Readonly<Record<string, SliceStoreAttribute>>;
  /** gzip level 1-9, or 0 for uncompressed chunks (default {@link DEFAULT_COMPRESSION_LEVEL}). */
  compressionLevel?: number;
}

/** One preprocessed case as the writer takes it. */
export interface SliceStoreCase {
  id: string;
  /** [depth, height, width, channels]: depth z slices, each [height, width, channels] channels-last. */
  shape: readonly [number, number, number, number];
  /** float32, flat index ((z * height + i) * width + j) * channels + c. */
  image: Float32Array;
  /** 0/1 masks [depth, height, width, maskChannels]. */
  mask: Uint8Array;
  /** Whole-tumour voxels per slice (length depth); counted from `mask` (any channel set) when absent. */
  tumourVoxels?: Uint32Array | readonly number[];
  /** k index in the original scan of slice 0 (default 0). */
  firstZ?: number;
  /** Input image files (relative to the dataset root where possible). */
  inputFiles: readonly string[];
  labelFile?: string;
  /** JSON-able per-case parameters (crop start, channel statistics). */
  params?: unknown;
}

/** Slices and cases written per split. */
export type SliceStoreCounts = Record<SplitName, { cases: number; slices: number }>;

/**
 * gzip level of new stores. Normalised float32 slices compress about as well at level 1 as at h5py's 4
 * (10.3 vs 10.0 MB for a 144³ four-channel case) while writing faster, and writing is the one serial step.
 */
export const DEFAULT_COMPRESSION_LEVEL = 1;

const INDEX_CHUNK = 4096;
const WRITE_BLOCK_SLICES = 16;

interface SplitState {
  images: H5Dataset;
  masks: H5Dataset;
  sliceCase: H5Dataset;
  sliceZ: H5Dataset;
  sliceTumourVoxels: H5Dataset;
  slices: number;
  cases: string[];
  caseParams: string[];
  inputFiles: string[];
  labelFiles: string[];
}

/** Appends cases to an open store; obtained from {@link writeSliceStore}. */
export class SliceStoreWriter {
  readonly path: string;
  readonly geometry: SliceStoreGeometry;
  readonly #file: H5File;
  readonly #splits: Record<SplitName, SplitState>;

  /** @internal use {@link writeSliceStore}. */
  constructor(file: H5File, filePath: string, options: WriteSliceStoreOptions) {
    this.#file = file;
    this.path = filePath;
    this.geometry = options.geometry;
    const { height, width, channels, maskChannels } = options.geometry;
    const level = options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL;
    const grown = (name: string, sliceShape: number[], dtype: string, data: Float32Array | Uint8Array | Int32Array): H5Dataset =>
      file.create_dataset({
        name,
        data,
        shape: [0, ...sliceShape],
        dtype,
        maxshape: [null, ...sliceShape],
        chunks: sliceShape.length === 0 ? [INDEX_CHUNK] : [1, ...sliceShape],
        // Level 0 means no filter at all: gzip at level 0 still costs a pass over every chunk.
        ...(level === 0 ? {} : { compression: 'gzip' as const, compression_opts: level }),
      });
    const entries = SPLIT_NAMES.map((split): [SplitName, SplitState] => {
      const names = splitDatasetNames(split);
      return [
        split,
        {
          images: grown(names.images, [height, width, channels], '<f', new Float32Array(0)),
          masks: grown(names.masks, [height, width, maskChannels], '<B', new Uint8Array(0)),
          sliceCase: grown(names.sliceCase, [], '<i', new Int32Array(0)),
          sliceZ: grown(names.sliceZ, [], '<i', new Int32Array(0)),
          sliceTumourVoxels: grown(names.sliceTumourVoxels, [], '<i', new Int32Array(0)),
          slices: 0,
          cases: [],
          caseParams: [],
          inputFiles: [],
          labelFiles: [],
        },
      ];
    });
    this.#splits = Object.fromEntries(entries) as Record<SplitName, SplitState>;
  }

  /** Cases and slices written so far, per split. */
  get counts(): SliceStoreCounts {
    const count = (split: SplitName) => ({ cases: this.#splits[split].cases.length, slices: this.#splits[split].slices });
    return { train: count('train'), validation: count('validation'), testing: count('testing') };
  }

  /**
   * Appends every z slice of one case to `split` (images, masks and the per-slice index).
   * @throws {ShapeMismatchError} when the case's slices or array lengths do not match the store's geometry.
   * @throws {ArgumentError} for an unknown split.
   */
  appendCase(split: SplitName, caseData: SliceStoreCase): void {
    const state = this.#splits[split];
    if (state === undefined) {
      throw new ArgumentError('SliceStoreWriter.appendCase', 'split', `must be one of ${SPLIT_NAMES.join(', ')}, got '${String(split)}'`);
    }
    const { height, width, channels, maskChannels } = this.geometry;
    const [depth, caseHeight, caseWidth, caseChannels] = caseData.shape;
    if (caseHeight !== height || caseWidth !== width || caseChannels !== channels) {
      throw new ShapeMismatchError(`case ${caseData.id}: slice shape`, [height, width, channels], [caseHeight, caseWidth, caseChannels]);
    }
    const sliceVoxels = height * width;
    if (caseData.image.length !== depth * sliceVoxels * channels) {
      throw new ShapeMismatchError(`case ${caseData.id}: image length`, [depth * sliceVoxels * channels], [caseData.image.length]);
    }
    if (caseData.mask.length !== depth * sliceVoxels * maskChannels) {
      throw new ShapeMismatchError(`case ${caseData.id}: mask length`, [depth * sliceVoxels * maskChannels], [caseData.mask.length]);
    }
    const tumourVoxels = caseData.tumourVoxels ?? countTumourVoxels(caseData.mask, depth, sliceVoxels, maskChannels);
    if (tumourVoxels.length !== depth) {
      throw new ShapeMismatchError(`case ${caseData.id}: tumourVoxels length`, [depth], [tumourVoxels.length]);
    }
    hdf5Step(this.path, `append case ${caseData.id}`, () => this.#append(state, caseData, depth, tumourVoxels));
  }

  #append(state: SplitState, caseData: SliceStoreCase, depth: number, tumourVoxels: Uint32Array | readonly number[]): void {
    const start = state.slices;
    const end = start + depth;
    const caseIndex = state.cases.length;
    const firstZ = caseData.firstZ ?? 0;
    const write = (dataset: H5Dataset, rank: number, data: Float32Array | Uint8Array | Int32Array) => {
      const shape = dataset.shape ?? [];
      dataset.resize([end, ...shape.slice(1)]);
      const sliceLength = depth === 0 ? 0 : data.length / depth;
      const rest = Array.from({ length: rank - 1 }, (): [] => []);
      // A few slices per call: h5wasm copies each call's data into its WebAssembly heap, which never
      // shrinks, so a whole case at once would grow the heap by the size of a case.
      for (let first = 0; first < depth; first += WRITE_BLOCK_SLICES) {
        const last = Math.min(first + WRITE_BLOCK_SLICES, depth);
        dataset.write_slice([[start + first, start + last], ...rest], data.subarray(first * sliceLength, last * sliceLength));
      }
    };
    write(state.images, 4, caseData.image);
    write(state.masks, 4, caseData.mask);
    write(state.sliceCase, 1, new Int32Array(depth).fill(caseIndex));
    write(state.sliceZ, 1, Int32Array.from({ length: depth }, (_, z) => firstZ + z));
    write(state.sliceTumourVoxels, 1, Int32Array.from(tumourVoxels));
    state.slices = end;
    state.cases.push(caseData.id);
    state.caseParams.push(JSON.stringify(caseData.params ?? {}));
    state.inputFiles.push(caseData.inputFiles.join(';'));
    state.labelFiles.push(caseData.labelFile ?? '');
  }

  /** @internal writes the per-case string lists; called once by {@link writeSliceStore}. */
  finish(): void {
    for (const split of SPLIT_NAMES) {
      const state = this.#splits[split];
      const names = splitDatasetNames(split);
      writeStrings(this.#file, names.cases, state.cases);
      writeStrings(this.#file, names.caseParams, state.caseParams);
      writeStrings(this.#file, names.inputFiles, state.inputFiles);
      writeStrings(this.#file, names.labelFiles, state.labelFiles);
    }
  }
}

function countTumourVoxels(mask: Uint8Array, depth: number, sliceVoxels: number, maskChannels: number): Uint32Array {
  const counts = new Uint32Array(depth);
  for (let z = 0; z < depth; z++) {
    let count = 0;
    const base = z * sliceVoxels * maskChannels;
    for (let v = 0; v < sliceVoxels; v++) {
      for (let k = 0; k < maskChannels; k++) {
        if (mask[base + v * maskChannels + k] !== 0) {
          count++;
          break;
        }
      }
    }
    counts[z] = count;
  }
  return counts;
}

function checkGeometry(geometry: SliceStoreGeometry): void {
  for (const key of ['height', 'width', 'channels', 'maskChannels'] as const) {
    const value = geometry[key];
    if (!Number.isInteger(value) || value < 1) {
      throw new ArgumentError('writeSliceStore', `geometry.${key}`, `must be a positive integer, got ${value}`);
    }
  }
}

function isInt32(value: number): boolean {
  return Number.isInteger(value) && value >= -2147483648 && value <= 2147483647;
}

function writeAttribute(file: H5File, name: string, value: SliceStoreAttribute): void {
  if (typeof value === 'boolean') file.create_attribute(name, value ? 1 : 0, null, '<B');
  else if (typeof value === 'number') file.create_attribute(name, value, null, isInt32(value) ? '<i' : '<d');
  else if (typeof value === 'string') file.create_attribute(name, value);
  else if (value.every((item): item is number => typeof item === 'number')) {
    const numbers = value as readonly number[];
    if (numbers.every(isInt32)) file.create_attribute(name, Int32Array.from(numbers), [numbers.length], '<i');
    else file.create_attribute(name, Float64Array.from(numbers), [numbers.length], '<d');
  } else file.create_attribute(name, [...(value as readonly string[])]);
}

/**
 * Creates a slice store at `target`, lets `produce` append cases, then writes the metadata and renames the
 * finished file into place (temp + rename): while it runs, and after a failure or a crash, no file exists
 * under `target`. Datasets of all three splits exist even when a split stays empty.
 * @throws {ArgumentError} for a bad geometry or compression level.
 * @throws {SliceStoreError} when HDF5 cannot create or write the file.
 * @example await writeSliceStore('brats.h5', { geometry: { height: 144, width: 144, channels: 4, maskChannels: 1 } },
 *   async (writer) => writer.appendCase('train', preprocessed));
 */
export async function writeSliceStore<T>(
  target: string,
  options: WriteSliceStoreOptions,
  produce: (writer: SliceStoreWriter) => Promise<T>,
): Promise<T> {
  checkGeometry(options.geometry);
  const level = options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new ArgumentError('writeSliceStore', 'compressionLevel', `must be an integer 0-9, got ${level}`);
  }
  const h5 = await loadH5wasm();
  const absolute = path.resolve(target);
  return withAtomicPath(absolute, async (partialPath) => {
    let file: H5File;
    try {
      file = new h5.File(partialPath, 'w');
    } catch (error) {
      throw new SliceStoreError(target, `cannot create the HDF5 file (${describe(error)})`, { cause: error });
    }
    let closed = false;
    try {
      const writer = hdf5Step(target, 'create the datasets', () => new SliceStoreWriter(file, absolute, options));
      const result = await produce(writer);
      hdf5Step(target, 'write the metadata', () => {
        writer.finish();
        writeMetadata(file, options);
      });
      file.close();
      closed = true;
      return result;
    } finally {
      if (!closed) file.close();
    }
  });
}

function writeMetadata(file: H5File, options: WriteSliceStoreOptions): void {
  const metadata = options.metadata ?? {};
  for (const name of METADATA_DATASETS) {
    const value = metadata[name] ?? (name === 'license' ? metadata.licence : undefined) ?? '';
    writeStrings(file, name, typeof value === 'string' ? [value] : value);
  }
  writeAttribute(file, 'format', SLICE_STORE_FORMAT);
  writeAttribute(file, 'format_version', SLICE_STORE_FORMAT_VERSION);
  for (const [name, value] of Object.entries(options.attributes ?? {})) {
    if (name === 'format' || name === 'format_version') {
      throw new ArgumentError('writeSliceStore', `attributes.${name}`, 'is reserved for the store format');
    }
    writeAttribute(file, name, value);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs HDF5 calls, turning h5wasm's plain errors (and thrown strings) into a SliceStoreError naming the file. */
function hdf5Step<T>(filePath: string, what: string, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (error instanceof BratsError) throw error;
    throw new SliceStoreError(filePath, `cannot ${what} (${describe(error)})`, { cause: error });
  }
}
