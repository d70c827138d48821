/**
 * Preprocessing shared by training and inference: crop, per-channel z-score normalisation and the
 * target masks, with every parameter recorded so that predictions can be put back on the scan's grid.
 */
import { ArgumentError } from './errors.js';
import type { CanonicalCase } from './layouts/case.js';
import { CANONICAL_CHANNELS, parseChannelName, type ChannelName } from './layouts/channels.js';
import { REGION_NAMES, regionMask, type RegionName } from './regions.js';
import { voxelCount } from './volume.js';

/** How the crop window is placed: the seed's centre crop, or centred on the brain's bounding box. */
export type CropMode = 'center' | 'brain';
/** z-score over the whole cropped block (seed) or over non-zero voxels only (nnU-Net/MONAI). */
export type NormalizeMode = 'block' | 'nonzero';
/** One whole-tumour channel (seed: every label > 0) or three region channels WT, TC, ET. */
export type TargetMode = 'wt' | 'regions';

/** Options of {@link preprocessCase}; the defaults are the seed recipe. */
export interface PreprocessOptions {
  /** Crop size along i, j, k; one number for all three (default 144). */
  crop?: number | readonly [number, number, number];
  cropMode?: CropMode;
  normalize?: NormalizeMode;
  target?: TargetMode;
  /** Channels to keep, in order (default FLAIR, T1w, T1gd, T2w). */
  channels?: readonly ChannelName[];
}

/** Fully resolved preprocessing settings (what a model bundle records). */
export interface PreprocessSettings {
  cropSize: readonly [number, number, number];
  cropMode: CropMode;
  normalize: NormalizeMode;
  target: TargetMode;
  channels: readonly ChannelName[];
}

/** Everything needed to invert the preprocessing of one case (JSON-able). */
export interface PreprocessParams extends PreprocessSettings {
  /** Shape [i, j, k] of the original scan. */
  originalShape: readonly [number, number, number];
  /** First original voxel [i, j, k] of the window; may be negative when the window is larger than the scan (zero padding). */
  cropStart: readonly [number, number, number];
  /** Mean and standard deviation subtracted from / divided into each kept channel. */
  channelStats: readonly { mean: number; std: number }[];
  /** Region of each mask channel. */
  regions: readonly RegionName[];
}

/**
 * Another window onto a case than the one its settings place: where it starts and the statistics its slices are
 * normalised with. Segmenting a scan beyond the model's window uses the statistics of the case's own window, so the
 * model sees the same intensities in every window.
 */
export interface CropWindow {
  /** First voxel [i, j, k] of the window (may be negative: zero padding). */
  cropStart: readonly [number, number, number];
  /** Mean and standard deviation of each kept channel, as in {@link PreprocessParams}. */
  channelStats: readonly { mean: number; std: number }[];
}

/** A preprocessed case: z slices, each [height = i, width = j, channels], channels last. */
export interface PreprocessedCase {
  id: string;
  /** [depth (k), height (i), width (j), channels]; flat index ((z * H + i) * W + j) * C + c. */
  shape: readonly [number, number, number, number];
  image: Float32Array;
  /** Target masks [depth, height, width, K] (0/1), present when the case has labels. */
  mask?: Uint8Array;
  /** Tumour (WT) voxel count of each z slice, present when the case has labels. */
  tumourVoxels?: Uint32Array;
  params: PreprocessParams;
}

/**
 * Resolves options to complete settings (the seed's defaults filled in) and validates them. Settings that are
 * already resolved (a manifest's `preprocessing`) are accepted too and come back unchanged.
 * @throws {ArgumentError} for a non-positive crop size, an unknown mode or channel.
 */
export function resolvePreprocessing(options: PreprocessOptions | PreprocessSettings = {}): PreprocessSettings {
  const crop = ('cropSize' in options ? options.cropSize : options.crop) ?? 144;
  const cropSize = (typeof crop === 'number' ? [crop, crop, crop] : crop) as readonly [number, number, number];
  if (cropSize.length !== 3 || cropSize.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new ArgumentError('resolvePreprocessing', 'crop', `must be a positive integer or three of them, got ${String(crop)}`);
  }
  const cropMode = options.cropMode ?? 'center';
  if (cropMode !== 'center' && cropMode !== 'brain') {
    throw new ArgumentError('resolvePreprocessing', 'cropMode', `must be center or brain, got ${String(cropMode)}`);
  }
  const normalize = options.normalize ?? 'block';
  if (normalize !== 'block' && normalize !== 'nonzero') {
    throw new ArgumentError('resolvePreprocessing', 'normalize', `must be block or nonzero, got ${String(normalize)}`);
  }
  const target = options.target ?? 'wt';
  if (target !== 'wt' && target !== 'regions') {
    throw new ArgumentError('resolvePreprocessing', 'target', `must be wt or regions, got ${String(target)}`);
  }
  const channels = (options.channels ?? CANONICAL_CHANNELS).map((name) => {
    const parsed = parseChannelName(name);
    if (parsed === undefined) {
      throw new ArgumentError('resolvePreprocessing', 'channels', `'${name}' is unknown; known: ${CANONICAL_CHANNELS.join(', ')}`);
    }
    return parsed;
  });
  if (channels.length === 0 || new Set(channels).size !== channels.length) {
    throw new ArgumentError('resolvePreprocessing', 'channels', 'must list at least one channel, each once');
  }
  return { cropSize, cropMode, normalize, target, channels };
}

/**
 * For each voxel of the crop window in [z][h][w] order (z along k, h along i, w along j), the index of the scan
 * voxel it shows, or -1 where the window lies outside the scan. One table serves cropping and its inverse.
 */
function cropWindowIndices(
  originalShape: readonly [number, number, number],
  cropStart: readonly [number, number, number],
  cropSize: readonly [number, number, number],
): Int32Array {
  const [nx, ny, nz] = originalShape;
  const [i0, j0, k0] = cropStart;
  const [height, width, depth] = cropSize;
  const indices = new Int32Array(depth * height * width).fill(-1);
  for (let z = 0; z < depth; z++) {
    const k = k0 + z;
    if (k < 0 || k >= nz) continue;
    for (let h = 0; h < height; h++) {
      const i = i0 + h;
      if (i < 0 || i >= nx) continue;
      for (let w = 0; w < width; w++) {
        const j = j0 + w;
        if (j >= 0 && j < ny) indices[(z * height + h) * width + w] = i + nx * (j + ny * k);
      }
    }
  }
  return indices;
}

/**
 * The crop window's columns along i, the scan's contiguous axis, each with the scan index of its first voxel inside
 * the scan, the image index ([k][i][j][channels], channel 0) that voxel goes to, and how many of its voxels lie inside
 * the scan (consecutive in the scan, `width * channels` apart in the image). Columns outside the scan are skipped:
 * their image voxels stay zero. Walking the scan along i keeps every read sequential: gathering in the image's order
 * instead reads with a stride of a whole row and took most of the preprocessing time.
 */
function walkCropColumns(
  originalShape: readonly [number, number, number],
  cropStart: readonly [number, number, number],
  cropSize: readonly [number, number, number],
  channels: number,
  column: (first: number, out: number, rows: number) => void,
): void {
  const [height, width, depth] = cropSize;
  const nx = originalShape[0];
  for (let z = 0; z < depth; z++) {
    const window = sliceWindow(originalShape, cropStart, cropSize, channels, z);
    if (window === undefined) continue;
    const out = z * height * width * channels + window.out;
    for (let w = 0; w < window.columns; w++) column(window.first + w * nx, out + w * channels, window.rows);
  }
}

/**
 * The part of slice `z` of the crop window that lies inside the scan: the scan index of its first voxel, the image
 * index (within the slice, channel 0, `channels` to a pixel) that voxel goes to, and how many rows (along i) and
 * columns (along j, consecutive in the image and `nx` apart in the scan) it spans; undefined when the slice lies
 * wholly outside the scan. Whether any of the slice is padding comes with it.
 */
function sliceWindow(
  originalShape: readonly [number, number, number],
  cropStart: readonly [number, number, number],
  cropSize: readonly [number, number, number],
  channels: number,
  z: number,
): { first: number; out: number; rows: number; columns: number; padded: boolean } | undefined {
  const [nx, ny, nz] = originalShape;
  const [i0, j0, k0] = cropStart;
  const [height, width] = cropSize;
  const hStart = Math.max(0, -i0);
  const wStart = Math.max(0, -j0);
  const rows = Math.min(height, nx - i0) - hStart;
  const columns = Math.min(width, ny - j0) - wStart;
  const k = k0 + z;
  if (rows <= 0 || columns <= 0 || k < 0 || k >= nz) return undefined;
  return { first: i0 + hStart + nx * (j0 + wStart + ny * k), out: (hStart * width + wStart) * channels, rows, columns, padded: rows < height || columns < width };
}

/** Copies the crop window of `source` (i-j-k order, i fastest) into channel `channel` of `image` (zero-filled). */
function gatherCropChannel(
  source: ArrayLike<number>,
  originalShape: readonly [number, number, number],
  cropStart: readonly [number, number, number],
  cropSize: readonly [number, number, number],
  image: Float32Array,
  channels: number,
  channel: number,
): void {
  const rowStride = cropSize[1] * channels;
  walkCropColumns(originalShape, cropStart, cropSize, channels, (first, out, rows) => {
    for (let r = 0, o = out + channel; r < rows; r++, o += rowStride) image[o] = source[first + r]!;
  });
}

/** Integer voxel arrays whose every value a float32 holds exactly: the statistics over them can be exact. */
type SmallIntegerArray = Int8Array | Uint8Array | Int16Array | Uint16Array;

function isSmallInteger(data: ArrayLike<number>): data is SmallIntegerArray {
  return data instanceof Int16Array || data instanceof Uint8Array || data instanceof Int8Array || data instanceof Uint16Array;
}

/**
 * Mean and standard deviation from an exact integer sum, sum of squares and count: the variance's numerator
 * n·Σx² − (Σx)² in BigInt arithmetic (exact), then one division and a square root. Exact up to the last roundings,
 * where summing squared deviations in float64 drifts with the voxel count.
 */
function exactStats(sum: number, squares: number, count: number): { mean: number; std: number } {
  if (count === 0) return { mean: 0, std: 0 };
  const numerator = BigInt(count) * BigInt(squares) - BigInt(sum) * BigInt(sum);
  return { mean: sum / count, std: Math.sqrt(Number(numerator) / (count * count)) };
}

/** Crop window start for one axis: centred on [low, high) (floor, like the seed), inside the scan when it fits. */
function windowStart(extent: number, size: number, low: number, high: number): number {
  let start = Math.floor((low + high - size) / 2);
  if (size <= extent) start = Math.min(Math.max(start, 0), extent - size);
  else start = Math.floor((extent - size) / 2);
  return start;
}

function brainBounds(caseData: CanonicalCase, shape: readonly [number, number, number]): [number, number][] {
  const [nx, ny, nz] = shape;
  const bounds: [number, number][] = [
    [nx, -1],
    [ny, -1],
    [nz, -1],
  ];
  for (const channel of caseData.channels) {
    const data = channel.data;
    for (let k = 0, index = 0; k < nz; k++) {
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++, index++) {
          if (data[index] === 0) continue;
          if (i < bounds[0]![0]) bounds[0]![0] = i;
          if (i > bounds[0]![1]) bounds[0]![1] = i;
          if (j < bounds[1]![0]) bounds[1]![0] = j;
          if (j > bounds[1]![1]) bounds[1]![1] = j;
          if (k < bounds[2]![0]) bounds[2]![0] = k;
          if (k > bounds[2]![1]) bounds[2]![1] = k;
        }
      }
    }
  }
  // An empty scan has no brain: fall back to the whole grid.
  return bounds.map(([low, high], axis) => (high < low ? [0, shape[axis]!] : [low, high + 1]));
}

/*
 * The statistics of each channel of the gathered image, accumulated in float64 for accuracy over millions of voxels,
 * each channel in the image's voxel order. The four channels of BraTS get loops of their own that carry the four
 * sums side by side (each sum sees its voxels in the same order as alone, so the figures are the same); each mode
 * has its own loops: one loop testing the mode inside (the voxels skipped or not) ran four times slower on its first
 * call, which is the only call a one-scan process makes (V8 optimises it late).
 */

/** Each channel's sum and voxel count (zero voxels left out with `nonzero`). */
function channelSums(image: Float32Array, channels: number, nonzero: boolean): { sums: number[]; counts: number[] } {
  const voxels = image.length / channels;
  if (channels === 4 && !nonzero) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let out = 0; out < image.length; out += 4) {
      s0 += image[out]!;
      s1 += image[out + 1]!;
      s2 += image[out + 2]!;
      s3 += image[out + 3]!;
    }
    return { sums: [s0, s1, s2, s3], counts: [voxels, voxels, voxels, voxels] };
  }
  const sums: number[] = [];
  const counts: number[] = [];
  for (let c = 0; c < channels; c++) {
    const { sum, count } = nonzero ? nonzeroSum(image, channels, c) : { sum: strideSum(image, channels, c), count: voxels };
    sums.push(sum);
    counts.push(count);
  }
  return { sums, counts };
}

function strideSum(image: Float32Array, channels: number, channel: number): number {
  let sum = 0;
  for (let out = channel; out < image.length; out += channels) sum += image[out]!;
  return sum;
}

function nonzeroSum(image: Float32Array, channels: number, channel: number): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let out = channel; out < image.length; out += channels) {
    const value = image[out]!;
    if (value !== 0) {
      sum += value;
      count++;
    }
  }
  return { sum, count };
}

/** Each channel's sum of squared deviations from its mean (zero voxels left out with `nonzero`). */
function channelSquares(image: Float32Array, means: readonly number[], nonzero: boolean): number[] {
  const channels = means.length;
  if (channels === 4 && !nonzero) {
    const [m0, m1, m2, m3] = means as [number, number, number, number];
    let q0 = 0;
    let q1 = 0;
    let q2 = 0;
    let q3 = 0;
    for (let out = 0; out < image.length; out += 4) {
      const d0 = image[out]! - m0;
      const d1 = image[out + 1]! - m1;
      const d2 = image[out + 2]! - m2;
      const d3 = image[out + 3]! - m3;
      q0 += d0 * d0;
      q1 += d1 * d1;
      q2 += d2 * d2;
      q3 += d3 * d3;
    }
    return [q0, q1, q2, q3];
  }
  return means.map((mean, c) => (nonzero ? nonzeroSquares(image, channels, c, mean) : strideSquares(image, channels, c, mean)));
}

function strideSquares(image: Float32Array, channels: number, channel: number, mean: number): number {
  let squares = 0;
  for (let out = channel; out < image.length; out += channels) {
    const deviation = image[out]! - mean;
    squares += deviation * deviation;
  }
  return squares;
}

function nonzeroSquares(image: Float32Array, channels: number, channel: number, mean: number): number {
  let squares = 0;
  for (let out = channel; out < image.length; out += channels) {
    const value = image[out]!;
    if (value !== 0) {
      const deviation = value - mean;
      squares += deviation * deviation;
    }
  }
  return squares;
}

/** (x - mean) * scale per channel, in place (zero voxels stay zero with `nonzero`). */
function normalizeInPlace(image: Float32Array, means: readonly number[], scales: readonly number[], nonzero: boolean): void {
  const channels = means.length;
  if (channels === 4 && !nonzero) {
    const [m0, m1, m2, m3] = means as [number, number, number, number];
    const [s0, s1, s2, s3] = scales as [number, number, number, number];
    for (let out = 0; out < image.length; out += 4) {
      image[out] = (image[out]! - m0) * s0;
      image[out + 1] = (image[out + 1]! - m1) * s1;
      image[out + 2] = (image[out + 2]! - m2) * s2;
      image[out + 3] = (image[out + 3]! - m3) * s3;
    }
    return;
  }
  for (let out = 0; out < image.length; ) {
    for (let c = 0; c < channels; c++, out++) {
      const value = image[out]!;
      image[out] = nonzero && value === 0 ? 0 : (value - means[c]!) * scales[c]!;
    }
  }
}

/** Where the crop window of a case lies in its scan, and the voxel arrays of the kept channels in order. */
function placeCrop(
  caseData: CanonicalCase,
  settings: PreprocessSettings,
  start?: readonly [number, number, number],
): { originalShape: readonly [number, number, number]; cropStart: readonly [number, number, number]; sources: ArrayLike<number>[] } {
  const reference = caseData.channels[0];
  const originalShape = [reference.shape[0], reference.shape[1], reference.shape[2]] as const;
  const sources = settings.channels.map((name) => caseData.channels[CANONICAL_CHANNELS.indexOf(name)]!.data);
  if (start !== undefined) return { originalShape, cropStart: start, sources };
  const [nx, ny, nz] = originalShape;
  const bounds: [number, number][] =
    settings.cropMode === 'brain'
      ? brainBounds(caseData, originalShape)
      : [
          [0, nx],
          [0, ny],
          [0, nz],
        ];
  const cropStart = [0, 1, 2].map((axis) =>
    windowStart(originalShape[axis]!, settings.cropSize[axis]!, bounds[axis]![0], bounds[axis]![1]),
  ) as unknown as readonly [number, number, number];
  return { originalShape, cropStart, sources };
}

/**
 * Crops, normalises and slices one case (the seed's recipe by default: centre crop to 144 on i, j and k,
 * per-channel (x - mean) / std over the whole cropped block, target = every label > 0).
 * Output slices are the z planes, each [height = i, width = j, channels] (channels last).
 * @throws {ArgumentError} for invalid options.
 * @example const slices = preprocessCase(await loadCase(dataset.cases[0]), { crop: 144 });
 */
export function preprocessCase(caseData: CanonicalCase, options: PreprocessOptions | PreprocessSettings = {}): PreprocessedCase {
  return preprocessWindow(caseData, resolvePreprocessing(options));
}

/** {@link preprocessCase} in the window its settings place, or in `window` with that window's statistics. */
function preprocessWindow(caseData: CanonicalCase, settings: PreprocessSettings, window?: CropWindow): PreprocessedCase {
  const { originalShape, cropStart, sources } = placeCrop(caseData, settings, window?.cropStart);
  const [height, width, depth] = settings.cropSize;
  const channelCount = settings.channels.length;
  const sliceSize = height * width;
  const image = new Float32Array(depth * sliceSize * channelCount);
  const integers = prepareIntegerSlices(caseData.id, settings, originalShape, cropStart, sources, window?.channelStats);
  let channelStats: readonly { mean: number; std: number }[];
  if (integers !== undefined) {
    // Integer channels: one pass for the exact statistics, one that writes every slice normalised.
    integers.fill(Array.from({ length: depth }, (_, z) => z), image);
    channelStats = integers.params.channelStats;
  } else {
    // Each channel is gathered straight into its place in the channels-last image, its statistics are taken there,
    // and the image is normalised in place: no block per channel to allocate, fill and interleave afterwards.
    const nonzero = settings.normalize === 'nonzero';
    sources.forEach((source, c) => gatherCropChannel(source, originalShape, cropStart, settings.cropSize, image, channelCount, c));
    if (window !== undefined) {
      channelStats = window.channelStats;
    } else {
      const { sums, counts } = channelSums(image, channelCount, nonzero);
      const means = sums.map((sum, c) => (counts[c]! > 0 ? sum / counts[c]! : 0));
      const squares = channelSquares(image, means, nonzero);
      channelStats = means.map((mean, c) => ({ mean, std: counts[c]! > 0 ? Math.sqrt(squares[c]! / counts[c]!) : 0 }));
    }
    // A constant channel has no spread: subtract the mean only, rather than divide by zero.
    normalizeInPlace(
      image,
      channelStats.map(({ mean }) => mean),
      channelStats.map(({ std }) => (std > 0 ? 1 / std : 1)),
      nonzero,
    );
  }

  const regions = regionsOf(settings);
  const params: PreprocessParams = { ...settings, originalShape, cropStart, channelStats, regions };
  const result: PreprocessedCase = { id: caseData.id, shape: [depth, height, width, channelCount], image, params };
  if (caseData.labels !== undefined) {
    const window = cropWindowIndices(originalShape, cropStart, settings.cropSize);
    const labels = caseData.labels.data;
    // Each region as a table over the 256 label values, looked up inside the crop window only: the region of a
    // voxel depends on its label alone, so masks of the whole scan (three passes over 9 M voxels) are not needed.
    const values = Uint8Array.from({ length: 256 }, (_, value) => value);
    const tables = regions.map((region) => (settings.target === 'wt' && region === 'WT' ? values.map((value) => (value > 0 ? 1 : 0)) : regionMask(values, caseData.labelMapping, region)));
    const K = regions.length;
    const mask = new Uint8Array(depth * sliceSize * K);
    const tumourVoxels = new Uint32Array(depth);
    for (let v = 0; v < window.length; v++) {
      const source = window[v]!;
      if (source < 0) continue;
      const label = labels[source]!;
      for (let r = 0; r < K; r++) mask[v * K + r] = tables[r]![label]!;
      if (label > 0) tumourVoxels[Math.floor(v / sliceSize)]!++;
    }
    result.mask = mask;
    result.tumourVoxels = tumourVoxels;
  }
  return result;
}

/**
 * A case preprocessed exactly as {@link preprocessCase} does (same crop, same statistics, the same float32 values
 * bit for bit), whose slices are normalised when asked for instead of all at once: inference hands the engine its
 * first slices while the rest wait, and no whole-block image is made. A case of four integer channels (BraTS stores
 * int16) gets one pass over its crop window for the statistics; any other case is preprocessed whole and its slices
 * are copied out.
 */
export interface PreparedSlices {
  id: string;
  /** [depth (k), height (i), width (j), channels], as {@link PreprocessedCase}'s `shape`. */
  shape: readonly [number, number, number, number];
  params: PreprocessParams;
  /**
   * Writes the slices `indices` (z planes, in that order) into `out`, one after another, each as in
   * {@link preprocessCase}'s image.
   * @throws {ArgumentError} when `out` does not hold exactly that many slices or an index is outside the block.
   */
  fill(indices: readonly number[], out: Float32Array): void;
  /**
   * A key for a slice whose pixels are all alike (each channel one value across the slice: no image), equal for two
   * slices only when their inputs are equal; undefined for a slice with an image. Integer channels are compared
   * before normalisation, where in nonzero mode both zero and the mean of the non-zero voxels become 0: a slice of
   * only those two values is alike once normalised, yet gets no key.
   */
  constantKey(slice: number): string | undefined;
}

/*
 * The loops of the integer path, one slice at a time, take everything they read as arguments: the same loops reading
 * their arrays and constants from a closure ran about twice as slowly (normalising every slice of a BraTS scan in a
 * fresh process: 49 to 75 ms against 27 to 37).
 */

/**
 * One slice's part of the statistics pass over four integer channels: adds each channel's sum and sum of squares into
 * `totals` (sums 0-3, squares 4-7) and returns a non-zero value when any voxel differs from the reference (r0-r3). The
 * sums are kept per column and added into float64 totals; integers add exactly in float64 while every partial sum
 * stays below 2^53, which holds when the total sum of squares does (every |value| is at most its square): the caller
 * checks that total.
 */
function scanSlice4(
  s0: SmallIntegerArray,
  s1: SmallIntegerArray,
  s2: SmallIntegerArray,
  s3: SmallIntegerArray,
  first: number,
  rows: number,
  columns: number,
  columnStride: number,
  r0: number,
  r1: number,
  r2: number,
  r3: number,
  totals: Float64Array,
): number {
  let differs = 0;
  for (let w = 0, start = first; w < columns; w++, start += columnStride) {
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let q0 = 0;
    let q1 = 0;
    let q2 = 0;
    let q3 = 0;
    for (let v = start, end = start + rows; v < end; v++) {
      const v0 = s0[v]!;
      const v1 = s1[v]!;
      const v2 = s2[v]!;
      const v3 = s3[v]!;
      a0 += v0;
      a1 += v1;
      a2 += v2;
      a3 += v3;
      q0 += v0 * v0;
      q1 += v1 * v1;
      q2 += v2 * v2;
      q3 += v3 * v3;
      differs |= (v0 ^ r0) | (v1 ^ r1) | (v2 ^ r2) | (v3 ^ r3);
    }
    totals[0] = totals[0]! + a0;
    totals[1] = totals[1]! + a1;
    totals[2] = totals[2]! + a2;
    totals[3] = totals[3]! + a3;
    totals[4] = totals[4]! + q0;
    totals[5] = totals[5]! + q1;
    totals[6] = totals[6]! + q2;
    totals[7] = totals[7]! + q3;
  }
  return differs;
}

/** The non-zero voxels of `source` in one slice's part of the crop window. */
function countNonzero(source: SmallIntegerArray, first: number, rows: number, columns: number, columnStride: number): number {
  let count = 0;
  for (let w = 0, start = first; w < columns; w++, start += columnStride) {
    for (let v = start, end = start + rows; v < end; v++) if (source[v] !== 0) count++;
  }
  return count;
}

/** One slice's voxels, (x - mean) * scale per channel, into the image `out` from index `o` (block normalisation). */
function normalizeSlice4(
  out: Float32Array,
  o: number,
  rowStride: number,
  s0: SmallIntegerArray,
  s1: SmallIntegerArray,
  s2: SmallIntegerArray,
  s3: SmallIntegerArray,
  first: number,
  rows: number,
  columns: number,
  columnStride: number,
  m0: number,
  m1: number,
  m2: number,
  m3: number,
  k0: number,
  k1: number,
  k2: number,
  k3: number,
): void {
  for (let w = 0, start = first; w < columns; w++, start += columnStride, o += 4) {
    for (let v = start, end = start + rows, p = o; v < end; v++, p += rowStride) {
      out[p] = (s0[v]! - m0) * k0;
      out[p + 1] = (s1[v]! - m1) * k1;
      out[p + 2] = (s2[v]! - m2) * k2;
      out[p + 3] = (s3[v]! - m3) * k3;
    }
  }
}

/**
 * {@link normalizeSlice4} for nonzero normalisation: zero voxels stay zero. A loop of its own, as the statistics'
 * loops above have per mode: one loop testing the mode inside is slower on the first calls, the only ones a
 * one-scan process makes.
 */
function normalizeSliceNonzero4(
  out: Float32Array,
  o: number,
  rowStride: number,
  s0: SmallIntegerArray,
  s1: SmallIntegerArray,
  s2: SmallIntegerArray,
  s3: SmallIntegerArray,
  first: number,
  rows: number,
  columns: number,
  columnStride: number,
  m0: number,
  m1: number,
  m2: number,
  m3: number,
  k0: number,
  k1: number,
  k2: number,
  k3: number,
): void {
  for (let w = 0, start = first; w < columns; w++, start += columnStride, o += 4) {
    for (let v = start, end = start + rows, p = o; v < end; v++, p += rowStride) {
      const v0 = s0[v]!;
      const v1 = s1[v]!;
      const v2 = s2[v]!;
      const v3 = s3[v]!;
      out[p] = v0 === 0 ? 0 : (v0 - m0) * k0;
      out[p + 1] = v1 === 0 ? 0 : (v1 - m1) * k1;
      out[p + 2] = v2 === 0 ? 0 : (v2 - m2) * k2;
      out[p + 3] = v3 === 0 ? 0 : (v3 - m3) * k3;
    }
  }
}

/**
 * The slices of a case whose four kept channels are small integers, normalised on demand (see
 * {@link PreparedSlices}); undefined for any other case, or when a sum of squares reaches 2^53 (beyond it float64 sums
 * are no longer exact). Zeros add nothing to either sum, so nonzero normalisation only counts differently.
 */
function prepareIntegerSlices(
  id: string,
  settings: PreprocessSettings,
  originalShape: readonly [number, number, number],
  cropStart: readonly [number, number, number],
  sources: readonly ArrayLike<number>[],
  givenStats?: readonly { mean: number; std: number }[],
): PreparedSlices | undefined {
  if (!(sources.length === 4 && sources.every(isSmallInteger))) return undefined;
  const [s0, s1, s2, s3] = sources as [SmallIntegerArray, SmallIntegerArray, SmallIntegerArray, SmallIntegerArray];
  const { cropSize } = settings;
  const [height, width, depth] = cropSize;
  const shape = [depth, height, width, 4] as const;
  const nx = originalShape[0];
  const windows = Array.from({ length: depth }, (_, z) => sliceWindow(originalShape, cropStart, cropSize, 4, z));
  // One pass: the statistics, and whether each slice has an image. A slice is compared with its first voxel, or with
  // zeros when padding (zeros) is part of it; its four reference values are its key when nothing differs.
  const totals = new Float64Array(8);
  const keys: (string | undefined)[] = windows.map((window) => {
    if (window === undefined) return '0,0,0,0';
    const { first, rows, columns, padded } = window;
    const references = padded ? [0, 0, 0, 0] : [s0[first]!, s1[first]!, s2[first]!, s3[first]!];
    const [r0, r1, r2, r3] = references as [number, number, number, number];
    return scanSlice4(s0, s1, s2, s3, first, rows, columns, nx, r0, r1, r2, r3, totals) === 0 ? references.join(',') : undefined;
  });
  const squares = Array.from(totals.subarray(4));
  const nonzero = settings.normalize === 'nonzero';
  let channelStats: readonly { mean: number; std: number }[];
  if (givenStats !== undefined) {
    channelStats = givenStats;
  } else {
    if (!squares.every((total) => total < 2 ** 53)) return undefined;
    const counts = [s0, s1, s2, s3].map((source) =>
      nonzero ? windows.reduce((count, window) => count + (window === undefined ? 0 : countNonzero(source, window.first, window.rows, window.columns, nx)), 0) : depth * height * width,
    );
    channelStats = Array.from(totals.subarray(0, 4), (sum, c) => exactStats(sum, squares[c]!, counts[c]!));
  }
  // A constant channel has no spread: subtract the mean only, rather than divide by zero.
  const [m0, m1, m2, m3] = channelStats.map(({ mean }) => mean) as [number, number, number, number];
  const [k0, k1, k2, k3] = channelStats.map(({ std }) => (std > 0 ? 1 / std : 1)) as [number, number, number, number];
  // The expressions of normalizeInPlace on the same values (an integer channel's values are exact in float32): the
  // same bits as normalising a gathered image.
  const normalize = nonzero ? normalizeSliceNonzero4 : normalizeSlice4;
  const padding = nonzero ? [0, 0, 0, 0] : [(0 - m0) * k0, (0 - m1) * k1, (0 - m2) * k2, (0 - m3) * k3];
  const sliceValues = height * width * 4;
  return {
    id,
    shape,
    params: { ...settings, originalShape, cropStart, channelStats, regions: regionsOf(settings) },
    fill(indices, out) {
      checkFill(shape, indices, out);
      indices.forEach((z, j) => {
        const offset = j * sliceValues;
        const window = windows[z];
        if (window === undefined || window.padded) for (let p = offset; p < offset + sliceValues; p += 4) out.set(padding, p);
        if (window === undefined) return;
        normalize(out, offset + window.out, width * 4, s0, s1, s2, s3, window.first, window.rows, window.columns, nx, m0, m1, m2, m3, k0, k1, k2, k3);
      });
    },
    constantKey(slice) {
      return keys[slice];
    },
  };
}

/** The region of each mask (and model output) channel. */
function regionsOf(settings: PreprocessSettings): RegionName[] {
  return settings.target === 'wt' ? ['WT'] : [...REGION_NAMES];
}

/** The checks of {@link PreparedSlices.fill}. */
function checkFill(shape: readonly [number, number, number, number], indices: readonly number[], out: Float32Array): void {
  const [depth, height, width, channels] = shape;
  const sliceValues = height * width * channels;
  if (out.length !== indices.length * sliceValues) {
    throw new ArgumentError('PreparedSlices.fill', 'out', `holds ${out.length} values; ${indices.length} slice(s) of [${height}, ${width}, ${channels}] take ${indices.length * sliceValues}`);
  }
  const outside = indices.find((z) => !Number.isInteger(z) || z < 0 || z >= depth);
  if (outside !== undefined) throw new ArgumentError('PreparedSlices.fill', 'indices', `${outside} is not a slice of a block of depth ${depth}`);
}

/**
 * Prepares a case for inference: {@link preprocessCase}'s slices without its labels, each normalised when
 * {@link PreparedSlices.fill} asks for it. The values are the same bits as preprocessCase's image: the same
 * statistics (exact for integer channels, whatever the order they are summed in) and the same expression per voxel.
 * With `window`, the slices of that window instead, normalised with its statistics (those of another window).
 * @throws {ArgumentError} for invalid options or window.
 * @example const prepared = prepareSlices(caseData, manifest.preprocessing); prepared.fill([70, 71], batch);
 */
export function prepareSlices(caseData: CanonicalCase, options: PreprocessOptions | PreprocessSettings = {}, window?: CropWindow): PreparedSlices {
  const settings = resolvePreprocessing(options);
  if (window !== undefined) checkCropWindow(window, settings);
  const { originalShape, cropStart, sources } = placeCrop(caseData, settings, window?.cropStart);
  const integers = prepareIntegerSlices(caseData.id, settings, originalShape, cropStart, sources, window?.channelStats);
  if (integers !== undefined) return integers;
  const { labels: _labels, ...imagesOnly } = caseData;
  const { id, shape, image, params } = preprocessWindow(imagesOnly, settings, window);
  const [, height, width, channels] = shape;
  const sliceValues = height * width * channels;
  // Compared as bits: exactly equal inputs, whatever they are. Signed: every element is a small integer to V8, where
  // unsigned ones past 2^31 (any negative float) were boxed one by one.
  const bits = new Int32Array(image.buffer, image.byteOffset, image.length);
  return {
    id,
    shape,
    params,
    fill(indices, out) {
      checkFill(shape, indices, out);
      indices.forEach((z, j) => out.set(image.subarray(z * sliceValues, (z + 1) * sliceValues), j * sliceValues));
    },
    constantKey(slice) {
      const base = slice * sliceValues;
      for (let p = base + channels; p < base + sliceValues; p += channels) {
        for (let c = 0; c < channels; c++) if (bits[p + c] !== bits[base + c]) return undefined;
      }
      return Array.from(bits.subarray(base, base + channels)).join(',');
    },
  };
}

/** A window given to {@link prepareSlices}: an integer start per axis and a mean and spread per kept channel. */
function checkCropWindow(window: CropWindow, settings: PreprocessSettings): void {
  if (window.cropStart.length !== 3 || !window.cropStart.every((value) => Number.isInteger(value))) {
    throw new ArgumentError('prepareSlices', 'window.cropStart', `must be three integers, got [${window.cropStart.join(', ')}]`);
  }
  const stats = window.channelStats;
  if (stats.length !== settings.channels.length || !stats.every(({ mean, std }) => Number.isFinite(mean) && Number.isFinite(std) && std >= 0)) {
    throw new ArgumentError('prepareSlices', 'window.channelStats', `must be a finite mean and a spread >= 0 for each of the ${settings.channels.length} channels`);
  }
}

/**
 * Puts per-slice values back on the scan's grid: the inverse of the crop of {@link preprocessCase}.
 * @param values [depth, height, width, K] channels-last block (probabilities or masks) as produced on the crop.
 * @param shape its shape tuple.
 * @returns K volumes in NIfTI i-j-k order of `params.originalShape`; voxels outside the crop window get `fill`.
 * @throws {ArgumentError} when `values` does not match `shape` or `shape` does not match the crop.
 */
export function restoreCrop<T extends Float32Array | Uint8Array>(
  values: T,
  shape: readonly [number, number, number, number],
  params: PreprocessParams,
  fill = 0,
): T[] {
  checkCropBlock('restoreCrop', values, shape, params);
  const K = shape[3];
  const [nx, ny, nz] = params.originalShape;
  const window = cropWindowIndices(params.originalShape, params.cropStart, params.cropSize);
  const Out = values.constructor as new (length: number) => T;
  const outputs = Array.from({ length: K }, () => {
    const volume = new Out(nx * ny * nz);
    if (fill !== 0) volume.fill(fill);
    return volume;
  });
  for (let v = 0; v < window.length; v++) {
    const target = window[v]!;
    if (target < 0) continue;
    for (let r = 0; r < K; r++) outputs[r]![target] = values[v * K + r]!;
  }
  return outputs;
}

function checkCropBlock(caller: string, values: ArrayLike<number>, shape: readonly [number, number, number, number], params: PreprocessParams): void {
  const [depth, height, width] = shape;
  if (values.length !== voxelCount(shape)) {
    throw new ArgumentError(caller, 'values', `has ${values.length} elements for shape [${shape.join(', ')}]`);
  }
  if (height !== params.cropSize[0] || width !== params.cropSize[1] || depth !== params.cropSize[2]) {
    throw new ArgumentError(caller, 'shape', `[${shape.join(', ')}] does not match the crop [${params.cropSize.join(', ')}]`);
  }
}

/**
 * Binary masks on the scan's grid straight from per-slice probabilities: 1 where a voxel's value exceeds its
 * region's threshold. The same masks as thresholding the volumes of {@link restoreCrop} (outside the crop window a
 * voxel is 0 > threshold), made in one pass over the window without a float volume per region.
 * @param values [depth, height, width, K] channels-last probabilities as produced on the crop.
 * @param thresholds one per output channel.
 * @throws {ArgumentError} as {@link restoreCrop}, or when the thresholds are not one per channel.
 */
export function restoreCropThresholded(
  values: Float32Array,
  shape: readonly [number, number, number, number],
  params: PreprocessParams,
  thresholds: readonly number[],
): Uint8Array[] {
  checkCropBlock('restoreCropThresholded', values, shape, params);
  if (thresholds.length !== shape[3]) throw new ArgumentError('restoreCropThresholded', 'thresholds', `has ${thresholds.length} values for ${shape[3]} channels`);
  const masks = new ThresholdedCrop(shape, params, thresholds);
  masks.addSlices(values, 0, shape[0]);
  return masks.masks;
}

/**
 * The masks of {@link restoreCropThresholded} filled slice by slice, as the probabilities of each slice come in:
 * an engine's batches are thresholded while it computes the next, instead of the whole block after the last.
 * Once every slice of the block was added, {@link masks} are those restoreCropThresholded gives for it.
 */
export class ThresholdedCrop {
  /** One mask per output channel on the scan's grid (0/1, i-j-k order). */
  readonly masks: Uint8Array[];
  readonly #shape: readonly [number, number, number, number];
  readonly #params: PreprocessParams;
  readonly #thresholds: readonly number[];

  /**
   * @param shape [depth, height, width, K] of the probability block, matching the crop of `params`.
   * @throws {ArgumentError} when `shape` does not match the crop or the thresholds are not one per channel.
   */
  constructor(shape: readonly [number, number, number, number], params: PreprocessParams, thresholds: readonly number[]) {
    const [depth, height, width, K] = shape;
    if (height !== params.cropSize[0] || width !== params.cropSize[1] || depth !== params.cropSize[2]) {
      throw new ArgumentError('ThresholdedCrop', 'shape', `[${shape.join(', ')}] does not match the crop [${params.cropSize.join(', ')}]`);
    }
    if (thresholds.length !== K) throw new ArgumentError('ThresholdedCrop', 'thresholds', `has ${thresholds.length} values for ${K} channels`);
    const [nx, ny, nz] = params.originalShape;
    this.masks = thresholds.map((threshold) => {
      const mask = new Uint8Array(nx * ny * nz);
      if (0 > threshold) mask.fill(1);
      return mask;
    });
    this.#shape = shape;
    this.#params = params;
    this.#thresholds = thresholds;
  }

  /**
   * Thresholds slices `first` ≤ z < `end` of `values` into the masks.
   * @param values the whole [depth, height, width, K] probability block (only the slices asked are read).
   * @throws {ArgumentError} when `values` is not a whole block or the range is outside it.
   */
  addSlices(values: Float32Array, first: number, end: number): void {
    const [depth, height, width, K] = this.#shape;
    if (values.length !== voxelCount(this.#shape)) throw new ArgumentError('ThresholdedCrop.addSlices', 'values', `has ${values.length} elements for shape [${this.#shape.join(', ')}]`);
    if (!Number.isInteger(first) || !Number.isInteger(end) || first < 0 || end > depth || first > end) {
      throw new ArgumentError('ThresholdedCrop.addSlices', 'range', `[${first}, ${end}) is not a range of slices of [0, ${depth})`);
    }
    const [nx, ny, nz] = this.#params.originalShape;
    const [i0, j0, k0] = this.#params.cropStart;
    // The window's part inside the scan, walked along i (the masks' contiguous axis).
    const [hStart, hEnd] = [Math.max(0, -i0), Math.min(height, nx - i0)];
    const [wStart, wEnd] = [Math.max(0, -j0), Math.min(width, ny - j0)];
    const [zStart, zEnd] = [Math.max(first, -k0), Math.min(end, nz - k0)];
    for (let r = 0; r < K; r++) {
      const mask = this.masks[r]!;
      const threshold = this.#thresholds[r]!;
      for (let z = zStart; z < zEnd; z++) {
        for (let w = wStart; w < wEnd; w++) {
          let target = i0 + hStart + nx * (j0 + w + ny * (k0 + z));
          for (let h = hStart, v = ((z * height + hStart) * width + w) * K + r; h < hEnd; h++, v += width * K, target++) {
            mask[target] = values[v]! > threshold ? 1 : 0;
          }
        }
      }
    }
  }
}
