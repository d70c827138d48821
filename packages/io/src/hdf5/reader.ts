/**
 * Reading a slice store without loading it: single slices, batches of any indices and ordered iteration
 * read only the chunks they touch. Opens stores written by {@link writeSliceStore} and by the seed's h5py
 * converter (float64 images and masks, no per-slice index), converting to float32 images and uint8 masks.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ArgumentError } from '../errors.js';
import { METADATA_DATASETS, splitDatasetNames } from './format.js';
import { getDataset, loadH5wasm, readStrings, type H5Dataset, type H5File } from './h5.js';
import { SliceStoreError } from './errors.js';
import { SPLIT_NAMES, type SplitName } from './split.js';

/** Shapes and dtypes of one split. */
export interface SliceStoreSplitInfo {
  split: SplitName;
  /** Number of slices N. */
  slices: number;
  /** [N, height, width, channels] */
  imageShape: readonly [number, number, number, number];
  /** [N, height, width, K] */
  maskShape: readonly [number, number, number, number];
  /** HDF5 dtype as h5wasm writes it, e.g. `<f` (float32), `<d` (float64), `<B` (uint8). */
  imageDtype: string;
  maskDtype: string;
}

/** Slices read together: images [B, height, width, channels] float32 and masks [B, height, width, K] uint8. */
export interface SliceBatch {
  /** Store index of each slice, in batch order. */
  indices: readonly number[];
  /** [B, height, width, channels], channels last. */
  shape: readonly [number, number, number, number];
  images: Float32Array;
  /** [B, height, width, K] */
  maskShape: readonly [number, number, number, number];
  masks: Uint8Array;
}

/** Per-slice index of a split (absent in the seed's files). */
export interface SliceIndex {
  /** Case ids of the split, in store order. */
  caseIds: readonly string[];
  /** Per slice: index into `caseIds`. */
  sliceCase: Int32Array;
  /** Per slice: k index in the original scan. */
  sliceZ: Int32Array;
  /** Per slice: whole-tumour voxel count. */
  tumourVoxels: Int32Array;
}

/** A JSON-able attribute value. */
export type SliceStoreAttributeValue = string | number | boolean | null | SliceStoreAttributeValue[];

interface SplitHandles {
  info: SliceStoreSplitInfo;
  images: H5Dataset;
  masks: H5Dataset;
}

function toFloat32(values: unknown): Float32Array {
  if (values instanceof Float32Array) return values;
  if (ArrayBuffer.isView(values) && !(values instanceof DataView) && !(values instanceof BigInt64Array) && !(values instanceof BigUint64Array)) {
    return Float32Array.from(values as unknown as ArrayLike<number>);
  }
  throw new TypeError('expected a numeric array');
}

function toMask(values: unknown): Uint8Array {
  if (values instanceof Uint8Array) return values;
  if (values instanceof Float32Array || values instanceof Float64Array) {
    // The seed stores 0/1 masks as float64; anything above one half counts as tumour.
    const mask = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) mask[i] = values[i]! > 0.5 ? 1 : 0;
    return mask;
  }
  if (ArrayBuffer.isView(values) && !(values instanceof DataView)) {
    const source = values as unknown as ArrayLike<number | bigint>;
    const mask = new Uint8Array(source.length);
    for (let i = 0; i < source.length; i++) mask[i] = Number(source[i]) !== 0 ? 1 : 0;
    return mask;
  }
  throw new TypeError('expected a numeric array');
}

function shape4(dataset: H5Dataset): [number, number, number, number] | undefined {
  const shape = dataset.shape;
  return shape !== null && shape.length === 4 ? (shape.map(Number) as [number, number, number, number]) : undefined;
}

/** An open slice store; obtained from {@link openSliceStore}. Synchronous reads; call `close()` when done. */
export class SliceStoreReader {
  readonly path: string;
  readonly #file: H5File;
  readonly #splits = new Map<SplitName, SplitHandles>();
  #closed = false;

  /** @internal use {@link openSliceStore}. */
  constructor(file: H5File, filePath: string) {
    this.#file = file;
    this.path = filePath;
    for (const split of SPLIT_NAMES) {
      const names = splitDatasetNames(split);
      const images = getDataset(file, names.images);
      if (images === undefined) continue;
      const masks = getDataset(file, names.masks);
      if (masks === undefined) throw new SliceStoreError(filePath, `dataset ${names.images} has no matching ${names.masks}`);
      const imageShape = shape4(images);
      const maskShape = shape4(masks);
      if (imageShape === undefined || maskShape === undefined) {
        throw new SliceStoreError(
          filePath,
          `${names.images} and ${names.masks} must be 4D [N, height, width, channels], found [${(images.shape ?? []).join(', ')}] and [${(masks.shape ?? []).join(', ')}]`,
        );
      }
      if (imageShape[0] !== maskShape[0] || imageShape[1] !== maskShape[1] || imageShape[2] !== maskShape[2]) {
        throw new SliceStoreError(filePath, `${names.images} [${imageShape.join(', ')}] and ${names.masks} [${maskShape.join(', ')}] differ in N, height or width`);
      }
      const info: SliceStoreSplitInfo = {
        split,
        slices: imageShape[0],
        imageShape,
        maskShape,
        imageDtype: String(images.dtype),
        maskDtype: String(masks.dtype),
      };
      this.#splits.set(split, { info, images, masks });
    }
    if (this.#splits.size === 0) {
      throw new SliceStoreError(filePath, `no ${SPLIT_NAMES.map((split) => splitDatasetNames(split).images).join('/')} dataset: not a slice store`);
    }
  }

  /** Splits present in the file, in store order (the seed's first files have no testing split). */
  get splits(): SplitName[] {
    return SPLIT_NAMES.filter((split) => this.#splits.has(split));
  }

  /**
   * Shapes and dtypes of `split`.
   * @throws {ArgumentError} when the store has no such split.
   */
  info(split: SplitName): SliceStoreSplitInfo {
    return this.#handles(split, 'info').info;
  }

  /**
   * One slice: image [height, width, channels] float32 and mask [height, width, K] uint8.
   * @throws {ArgumentError} for a missing split or an index outside [0, N).
   */
  readSlice(split: SplitName, index: number): { image: Float32Array; mask: Uint8Array } {
    const batch = this.readRange(split, index, index + 1);
    return { image: batch.images, mask: batch.masks };
  }

  /**
   * Slices start ≤ n < end in one read each for images and masks.
   * @throws {ArgumentError} for a missing split or a range outside [0, N].
   */
  readRange(split: SplitName, start: number, end: number): SliceBatch {
    const handles = this.#handles(split, 'readRange');
    const n = handles.info.slices;
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
      throw new ArgumentError('SliceStoreReader.readRange', 'start, end', `must satisfy 0 ≤ start ≤ end ≤ ${n}, got ${start}, ${end}`);
    }
    const [, height, width, channels] = handles.info.imageShape;
    const maskChannels = handles.info.maskShape[3];
    const count = end - start;
    const indices = Array.from({ length: count }, (_, k) => start + k);
    if (count === 0) {
      return { indices, shape: [0, height, width, channels], images: new Float32Array(0), maskShape: [0, height, width, maskChannels], masks: new Uint8Array(0) };
    }
    const images = this.#read(handles.images, start, end, toFloat32);
    const masks = this.#read(handles.masks, start, end, toMask);
    return { indices, shape: [count, height, width, channels], images, maskShape: [count, height, width, maskChannels], masks };
  }

  /**
   * Slices at any `indices` (repeats allowed), in the order given; runs of consecutive indices are read at once.
   * @throws {ArgumentError} for a missing split or an index outside [0, N).
   */
  readBatch(split: SplitName, indices: readonly number[]): SliceBatch {
    const handles = this.#handles(split, 'readBatch');
    const n = handles.info.slices;
    for (const index of indices) {
      if (!Number.isInteger(index) || index < 0 || index >= n) {
        throw new ArgumentError('SliceStoreReader.readBatch', 'indices', `must be integers in [0, ${n}), found ${index}`);
      }
    }
    const [, height, width, channels] = handles.info.imageShape;
    const maskChannels = handles.info.maskShape[3];
    const imageStride = height * width * channels;
    const maskStride = height * width * maskChannels;
    const images = new Float32Array(indices.length * imageStride);
    const masks = new Uint8Array(indices.length * maskStride);
    const order = indices.map((index, position) => ({ index, position })).sort((a, b) => a.index - b.index);
    for (let runStart = 0; runStart < order.length; ) {
      let runEnd = runStart + 1;
      while (runEnd < order.length && order[runEnd]!.index - order[runEnd - 1]!.index <= 1) runEnd++;
      const first = order[runStart]!.index;
      const last = order[runEnd - 1]!.index;
      const run = this.readRange(split, first, last + 1);
      for (let k = runStart; k < runEnd; k++) {
        const { index, position } = order[k]!;
        const offset = index - first;
        images.set(run.images.subarray(offset * imageStride, (offset + 1) * imageStride), position * imageStride);
        masks.set(run.masks.subarray(offset * maskStride, (offset + 1) * maskStride), position * maskStride);
      }
      runStart = runEnd;
    }
    return {
      indices: [...indices],
      shape: [indices.length, height, width, channels],
      images,
      maskShape: [indices.length, height, width, maskChannels],
      masks,
    };
  }

  /**
   * Iterates over slices start ≤ n < end in order, `batchSize` at a time (the last batch may be smaller);
   * only one batch is in memory at a time.
   * @throws {ArgumentError} for a missing split or a batch size below 1.
   */
  *iterateBatches(split: SplitName, batchSize: number, range: { start?: number; end?: number } = {}): Generator<SliceBatch, void, undefined> {
    const n = this.#handles(split, 'iterateBatches').info.slices;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new ArgumentError('SliceStoreReader.iterateBatches', 'batchSize', `must be a positive integer, got ${batchSize}`);
    }
    const start = range.start ?? 0;
    const end = range.end ?? n;
    for (let first = start; first < end; first += batchSize) yield this.readRange(split, first, Math.min(first + batchSize, end));
  }

  /**
   * The per-slice index of `split` (case, z, tumour voxels), or undefined for files without one (the seed's).
   * @throws {ArgumentError} when the store has no such split.
   * @throws {SliceStoreError} when the index's lengths disagree with the split's slice count.
   */
  sliceIndex(split: SplitName): SliceIndex | undefined {
    const handles = this.#handles(split, 'sliceIndex');
    const names = splitDatasetNames(split);
    const datasets = [names.sliceCase, names.sliceZ, names.sliceTumourVoxels, names.cases].map((name) => getDataset(this.#file, name));
    if (datasets.some((dataset) => dataset === undefined)) return undefined;
    const [sliceCaseSet, sliceZSet, tumourSet, casesSet] = datasets as [H5Dataset, H5Dataset, H5Dataset, H5Dataset];
    const asInt32 = (dataset: H5Dataset): Int32Array => {
      const value = dataset.value;
      if (value instanceof Int32Array) return value;
      if (ArrayBuffer.isView(value)) return Int32Array.from(value as unknown as ArrayLike<number>, Number);
      return new Int32Array(0);
    };
    const index: SliceIndex = {
      caseIds: readStrings(casesSet),
      sliceCase: asInt32(sliceCaseSet),
      sliceZ: asInt32(sliceZSet),
      tumourVoxels: asInt32(tumourSet),
    };
    const n = handles.info.slices;
    if (index.sliceCase.length !== n || index.sliceZ.length !== n || index.tumourVoxels.length !== n) {
      throw new SliceStoreError(this.path, `per-slice index of ${split} does not have ${n} entries`);
    }
    return index;
  }

  /**
   * Store indices of the slices of `split` with at least `minVoxels` tumour voxels (for tumour-weighted
   * sampling); computed from the masks, a batch at a time, when the file has no per-slice index.
   * @throws {ArgumentError} when the store has no such split.
   */
  tumourSlices(split: SplitName, minVoxels = 1): Int32Array {
    const index = this.sliceIndex(split);
    const counts = index?.tumourVoxels ?? this.#countTumourVoxels(split);
    const found: number[] = [];
    counts.forEach((count, slice) => {
      if (count >= minVoxels) found.push(slice);
    });
    return Int32Array.from(found);
  }

  /** The descriptive string datasets (name, description, …, and each split's file lists) that the file has. */
  metadata(): Record<string, string[]> {
    const names = [...METADATA_DATASETS, ...SPLIT_NAMES.flatMap((split) => [splitDatasetNames(split).inputFiles, splitDatasetNames(split).labelFiles])];
    const result: Record<string, string[]> = {};
    for (const name of names) {
      const dataset = getDataset(this.#file, name);
      if (dataset !== undefined) result[name] = readStrings(dataset);
    }
    return result;
  }

  /** Root attributes (preprocessing parameters, split seed and fractions, format) as JSON-able values. */
  attributes(): Record<string, SliceStoreAttributeValue> {
    const result: Record<string, SliceStoreAttributeValue> = {};
    for (const [name, attribute] of Object.entries(this.#file.attrs)) {
      result[name] = attribute.json_value as SliceStoreAttributeValue;
    }
    return result;
  }

  /** Names of every dataset in the file's root group. */
  datasetNames(): string[] {
    return this.#file.keys().filter((name) => getDataset(this.#file, name) !== undefined);
  }

  /** Shape and dtype of a root dataset, or undefined when absent. */
  describeDataset(name: string): { shape: number[]; dtype: string } | undefined {
    const dataset = getDataset(this.#file, name);
    if (dataset === undefined) return undefined;
    return { shape: (dataset.shape ?? []).map(Number), dtype: String(dataset.dtype) };
  }

  /** Closes the file; further reads throw. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }

  #handles(split: SplitName, method: string): SplitHandles {
    if (this.#closed) throw new SliceStoreError(this.path, `SliceStoreReader.${method}() called after close()`);
    const handles = this.#splits.get(split);
    if (handles === undefined) {
      throw new ArgumentError(`SliceStoreReader.${method}`, 'split', `'${String(split)}' is not in ${this.path}; it has ${this.splits.join(', ')}`);
    }
    return handles;
  }

  #read<T>(dataset: H5Dataset, start: number, end: number, convert: (values: unknown) => T): T {
    let values: unknown;
    try {
      values = dataset.slice([[start, end], [], [], []]);
    } catch (error) {
      throw new SliceStoreError(this.path, `cannot read ${dataset.path} [${start}, ${end}) (${error instanceof Error ? error.message : String(error)})`, { cause: error });
    }
    try {
      return convert(values);
    } catch (error) {
      throw new SliceStoreError(this.path, `${dataset.path} has dtype ${String(dataset.dtype)}, expected a numeric type`, { cause: error });
    }
  }

  #countTumourVoxels(split: SplitName): Int32Array {
    const info = this.info(split);
    const counts = new Int32Array(info.slices);
    const [, height, width, maskChannels] = info.maskShape;
    const sliceVoxels = height * width;
    const batchSize = 64;
    for (const batch of this.iterateBatches(split, batchSize)) {
      batch.indices.forEach((slice, b) => {
        let count = 0;
        const base = b * sliceVoxels * maskChannels;
        for (let v = 0; v < sliceVoxels; v++) {
          for (let k = 0; k < maskChannels; k++) {
            if (batch.masks[base + v * maskChannels + k] !== 0) {
              count++;
              break;
            }
          }
        }
        counts[slice] = count;
      });
    }
    return counts;
  }
}

/**
 * Opens a slice store for reading (the file is not loaded: reads fetch only the chunks they need).
 * @throws {SliceStoreError} when the file is missing, is not HDF5, or has no imgs_/msks_ dataset pair of 4D shape.
 * @example const store = await openSliceStore('brats.h5'); const batch = store.readBatch('train', [0, 17, 4]); store.close();
 */
export async function openSliceStore(filePath: string): Promise<SliceStoreReader> {
  const absolute = path.resolve(filePath);
  try {
    const stat = await fs.stat(absolute);
    if (!stat.isFile()) throw new SliceStoreError(filePath, 'is not a file');
  } catch (error) {
    if (error instanceof SliceStoreError) throw error;
    throw new SliceStoreError(filePath, 'file not found', { cause: error });
  }
  // h5wasm does not throw for a file that is not HDF5 (it returns an invalid id and prints HDF5's error
  // stack), so the signature is checked first.
  if (!(await hasHdf5Signature(absolute))) {
    throw new SliceStoreError(filePath, 'not an HDF5 file (no HDF5 signature at offset 0, 512, 1024, …)');
  }
  const h5 = await loadH5wasm();
  let file: H5File;
  try {
    file = new h5.File(absolute, 'r');
  } catch (error) {
    throw new SliceStoreError(filePath, `not a readable HDF5 file (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  }
  if (file.file_id < 0n) throw new SliceStoreError(filePath, 'HDF5 could not open the file');
  try {
    return new SliceStoreReader(file, filePath);
  } catch (error) {
    file.close();
    throw error;
  }
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** True when the HDF5 superblock signature is at offset 0 or 512 · 2^n, where the format allows it. */
async function hasHdf5Signature(filePath: string): Promise<boolean> {
  const handle = await fs.open(filePath, 'r');
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.alloc(HDF5_SIGNATURE.length);
    for (let offset = 0; offset + bytes.length <= size; offset = offset === 0 ? 512 : offset * 2) {
      const { bytesRead } = await handle.read(bytes, 0, bytes.length, offset);
      if (bytesRead === bytes.length && bytes.equals(HDF5_SIGNATURE)) return true;
    }
    return false;
  } finally {
    await handle.close();
  }
}
