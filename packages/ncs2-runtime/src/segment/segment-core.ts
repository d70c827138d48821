/**
 * Whole-scan segmentation of a case already read, the one path every caller shares (CLI, server, queue workers): a case of any layout →
 * the bundle's preprocessing → batched engine runs (with test-time flips) → thresholds and region nesting →
 * largest component → the crop inverted → a label map on the scan's grid, its volumes in mL, and the reasons
 * for every choice made. Engine-agnostic: anything with `run(input, batch)` serves. No Node.js module is reachable
 * from here: a browser page runs the same code (`@brats/ncs2-runtime/browser`); segment-case.ts adds reading a case.
 */
import {
  ArgumentError,
  CANONICAL_CHANNELS,
  constantValue,
  DEFAULT_MODEL_ORIENTATION,
  DEFAULT_MODEL_SPACING,
  describeOrientation,
  formatSpacing,
  prepareSlices,
  reorientCase,
  restoreCrop,
  sameSpacing,
  ThresholdedCrop,
  type PreparedSlices,
  type CanonicalCase,
  type LabelRegionMapping,
  type ModelManifest,
  type RegionName,
  type Volume,
  unstrippedWarning,
} from '@brats/io/browser';
import { keepLargestComponent, removeSmallComponents } from '@brats/metrics';
import { resolveInference, type InferenceRequest, type ResolvedInference } from './inference-settings.js';
import { chooseOutputConvention, nestedLabelValues, regionVolumesMl } from './labels.js';
import { resampleLinear, resampledAffine, resampledShape, type Shape3, type Spacing3 } from './resample.js';
import { describeFace, extensionStarts, inPlaneStarts, ownerMap, touchedFaces, writeWindow, type WindowFace } from './window-extension.js';

/** The spacing a manifest without one implies (from @brats/io, where fine-tuning reads it too). */
export { DEFAULT_MODEL_SPACING };

/**
 * Slices per engine call when the caller does not say. Small batches start the engine sooner and leave a shorter
 * tail after it, and a first run that allocates less (one real scan through the native ONNX Runtime, whole process:
 * 1.17 s at 4, 1.22 s at 16; a cohort's rate is the same). Each slice's answer is its own whatever the batch: the
 * label maps are the same bytes. `brats serve` warms its engine up with batches of this size (`warmupBatch`).
 */
export const DEFAULT_BATCH_SIZE = 4;

/** Anything that maps a batch of preprocessed slices to probabilities (every InferenceEngine is one). */
export interface SliceRunner {
  /**
   * `input` float32 NHWC [batch, height, width, channels] → float32 NHWC [batch, height, width, K] probabilities.
   * Once the promise settles, `input` is the caller's again: segmentation fills it with a later batch.
   */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
}

/** Options of {@link segmentLoadedCase} (and of `segmentCase`). */
export interface SegmentOptions extends InferenceRequest {
  /** Slices per engine call (default {@link DEFAULT_BATCH_SIZE}, 4). */
  batchSize?: number;
  /** Label convention of the written label map (default: 0/1 for a one-region model, else the input layout's). */
  labelMapping?: LabelRegionMapping;
  /**
   * Called after each engine batch with the slices done and the slices in all (more when windows beyond the model's
   * start: see `extendWindow`).
   */
  onSlices?: (done: number, total: number) => void;
  /**
   * Run the model once for each distinct constant slice (no image) and give its answer to the equal ones
   * (default true): the same result, fewer slices through the engine. False runs every slice.
   */
  reuseConstantSlices?: boolean;
  /**
   * Resample a scan whose spacing differs from the model's (the manifest's `spacing`, else 1 mm) to it, and the
   * probabilities back onto the scan's grid (default true). False segments the voxels as they are.
   */
  resample?: boolean;
  /**
   * Only the label map is wanted (default false). With flips, a slice whose every voxel's label the plain and the
   * width-flipped pass already decide, whatever the height-flipped one could add, skips that third pass: the labels
   * are those of all three passes, voxel for voxel, but `probabilities` are then not all computed and throw.
   */
  labelsOnly?: boolean;
  /**
   * Segment the scan beyond the model's window where the predicted whole tumour reaches a face of it and the scan
   * goes on (default true): more windows of the same size, normalised with the window's statistics, cover the scan
   * beyond that face. False keeps the window alone, and warns when the tumour reaches its edge.
   */
  extendWindow?: boolean;
}

/** Seconds spent in each step of one segmentation. */
export interface SegmentationTimings {
  /** Reading the case's files (0 when a loaded case was given). */
  load: number;
  /** The statistics, and each batch's slices normalised (on this thread, while the engine runs earlier batches). */
  preprocess: number;
  /** From the first batch handed to the engine to the last answer, flips included. */
  inference: number;
  /** Threshold, nesting, largest component, inverse crop and label map. */
  postprocess: number;
}

/** One case segmented, on the scan's grid. */
export interface Segmentation {
  id: string;
  /** The case as read (its channels, and its reference label map when it has one and it was read). */
  case: CanonicalCase;
  /** Region of each output channel, as in the manifest. */
  regions: readonly RegionName[];
  /** Probability volume per region, flat i-j-k, 0 outside the windows segmented (made when first read). */
  readonly probabilities: Float32Array[];
  /** Binary mask per region after threshold and post-processing; ET ⊆ TC ⊆ WT. */
  masks: Uint8Array[];
  /**
   * Label map (uint8, the scan's shape, spacing, affine and header) in `labelMapping`'s convention; a one-region
   * model's is its mask, `masks[0]` itself.
   */
  labels: Volume<'uint8'>;
  /** The convention of `labels`: 0/1 for a whole-tumour model, else the input layout's unless asked otherwise. */
  labelMapping: LabelRegionMapping;
  /** Volume of each region in mL. */
  volumesMl: Partial<Record<RegionName, number>>;
  /** The test-time settings that ran. */
  inference: ResolvedInference;
  /** One line per choice made (spacing, preprocessing, flips, largest component, threshold, label convention). */
  reasons: string[];
  /**
   * The reasons a caller shows beside the case's result, because they change what was segmented: the scan resampled
   * to the model's spacing, the tumour segmented beyond the model's window. Each is also one of `reasons`.
   */
  notices: string[];
  /** What the caller must know about the input (constant images, extra frames, repaired voxels), one line each. */
  warnings: string[];
  /** Engine calls made. */
  engineCalls: number;
  timings: SegmentationTimings;
}

function flipSlices(values: Float32Array, batch: number, height: number, width: number, channels: number, axis: 'height' | 'width'): Float32Array {
  const out = new Float32Array(values.length);
  if (axis === 'height') flipRows(values, out, batch * height, height, width * channels);
  else flipPixels(values, out, batch * height, width, channels);
  return out;
}

/*
 * The two flips in loops of their own (a loop testing the axis per pixel ran at a third of the speed): flipping
 * along height moves whole rows (one copy each), flipping along width moves pixels within each row.
 */
function flipRows(values: Float32Array, out: Float32Array, rows: number, height: number, rowLength: number): void {
  for (let row = 0; row < rows; row++) {
    const source = row - (row % height) + (height - 1 - (row % height));
    out.set(values.subarray(source * rowLength, (source + 1) * rowLength), row * rowLength);
  }
}

function flipPixels(values: Float32Array, out: Float32Array, rows: number, width: number, channels: number): void {
  const rowLength = width * channels;
  // One value per pixel (the outputs of a one-region model) and four (the BraTS inputs) move without a channel loop.
  if (channels === 1) {
    for (let base = 0; base < rows * rowLength; base += rowLength) {
      for (let target = base, source = base + rowLength - 1; target < base + rowLength; target++, source--) out[target] = values[source]!;
    }
    return;
  }
  if (channels === 4) {
    for (let base = 0; base < rows * rowLength; base += rowLength) {
      for (let target = base, source = base + rowLength - 4; target < base + rowLength; target += 4, source -= 4) {
        out[target] = values[source]!;
        out[target + 1] = values[source + 1]!;
        out[target + 2] = values[source + 2]!;
        out[target + 3] = values[source + 3]!;
      }
    }
    return;
  }
  for (let base = 0; base < rows * rowLength; base += rowLength) {
    for (let target = base, source = base + rowLength - channels; target < base + rowLength; target += channels, source -= channels) {
      for (let c = 0; c < channels; c++) out[target + c] = values[source + c]!;
    }
  }
}

/**
 * The mean of the plain and the two flipped-back outputs, into `output`: (plain + first) + second, then / 3, each
 * step rounded to float32 as adding the arrays one after the other into a Float32Array does.
 */
function averageFlips(output: Float32Array, first: Float32Array, second: Float32Array): void {
  for (let v = 0; v < output.length; v++) output[v] = Math.fround(Math.fround(output[v]! + first[v]!) + second[v]!) / 3;
}

/**
 * The most a sigmoid output can differ from [0, 1] after a runtime's own rounding: a slice is decided without its
 * third pass only if that pass could add anything in [-PASS_MARGIN, 1 + PASS_MARGIN] without changing a label.
 */
const PASS_MARGIN = 1e-3;

/**
 * For a batch whose plain (`output`) and width-flipped-back (`first`) outputs are in, the batch positions of the
 * slices that still need the height-flipped pass: those with a voxel whose label the third output could change.
 * The stored mean is fround(fround(output + first) + second) / 3 and thresholded with `>`; each step is monotonic in
 * `second`, so a voxel is decided when the mean with `second` = -PASS_MARGIN is already above its region's
 * threshold, or the mean with 1 + PASS_MARGIN is not. A value outside that range (not a probability) decides nothing.
 */
function slicesNeedingThirdPass(output: Float32Array, first: Float32Array, count: number, sliceOutputs: number, thresholds: readonly number[]): number[] {
  const K = thresholds.length;
  const open: number[] = [];
  for (let j = 0; j < count; j++) {
    const end = (j + 1) * sliceOutputs;
    for (let v = j * sliceOutputs; v < end; v++) {
      const a = output[v]!;
      const b = first[v]!;
      const threshold = thresholds[v % K]!;
      const sum = Math.fround(a + b);
      const low = Math.fround(Math.fround(sum - PASS_MARGIN) / 3);
      const high = Math.fround(Math.fround(sum + 1 + PASS_MARGIN) / 3);
      const probabilities = a >= -PASS_MARGIN && a <= 1 + PASS_MARGIN && b >= -PASS_MARGIN && b <= 1 + PASS_MARGIN;
      if (!probabilities || (low <= threshold && high > threshold)) {
        open.push(j);
        break;
      }
    }
  }
  return open;
}

/**
 * Gives each twin among `slices` the answer of the slice it repeats, in `outputs` at the slots `slotOf` gives; then
 * `onCopied` of the twin.
 */
function copyTwins(outputs: Float32Array, plan: SlicePlan, slices: readonly number[], slotOf: (slice: number) => number, outputValues: number, onCopied?: (slice: number) => void): void {
  for (const slice of slices) {
    const source = plan.twinOf[slice]!;
    if (source === slice) continue;
    const from = slotOf(source);
    outputs.copyWithin(slotOf(slice) * outputValues, from * outputValues, (from + 1) * outputValues);
    onCopied?.(slice);
  }
}

/** The slices a window runs through the engine, and the twins that take a slice's answer (see {@link planSlices}). */
interface SlicePlan {
  run: number[];
  twinOf: Int32Array;
  twins: Int32Array;
  groups: number;
}

/** The slice indices 0 … count - 1. */
function allSlices(count: number): number[] {
  return Array.from({ length: count }, (_, slice) => slice);
}

/**
 * Which slices the model must run (of `wanted`, by default all): every slice with an image, and one of each group
 * of constant slices (each channel one value across the slice) with equal values. `twinOf[s]` is the slice whose
 * answer slice s takes (s itself when it runs); `twins[s]` counts the slices that take s's answer besides s;
 * `groups` counts the distinct constant slices.
 */
function planSlices(prepared: PreparedSlices, wanted?: readonly number[]): SlicePlan {
  const depth = prepared.shape[0];
  const run: number[] = [];
  // A slice not wanted is its own twin: it neither runs nor takes another's answer.
  const twinOf = Int32Array.from({ length: depth }, (_, slice) => slice);
  const twins = new Int32Array(depth);
  const constant = new Map<string, number>();
  for (const slice of wanted ?? allSlices(depth)) {
    const key = prepared.constantKey(slice);
    const source = key === undefined ? undefined : constant.get(key);
    if (source === undefined) {
      if (key !== undefined) constant.set(key, slice);
      run.push(slice);
      twinOf[slice] = slice;
    } else {
      twinOf[slice] = source;
      twins[source]!++;
    }
  }
  return { run, twinOf, twins, groups: constant.size };
}

/** The plan that runs every slice (of `wanted`, by default all). */
function everySlice(depth: number, wanted?: readonly number[]): SlicePlan {
  return { run: wanted === undefined ? allSlices(depth) : [...wanted], twinOf: Int32Array.from({ length: depth }, (_, slice) => slice), twins: new Int32Array(depth), groups: 0 };
}

/** The slices `indices` of an NHWC block, copied into one batch. */
function gatherSlices(image: Float32Array, indices: readonly number[], sliceValues: number): Float32Array {
  const out = new Float32Array(indices.length * sliceValues);
  indices.forEach((slice, j) => out.set(image.subarray(slice * sliceValues, (slice + 1) * sliceValues), j * sliceValues));
  return out;
}

/** Zeroes inner regions outside their outer one: ET inside TC inside WT (in place). */
function nestRegions(wt: Uint8Array | undefined, tc: Uint8Array | undefined, et: Uint8Array | undefined): void {
  if (wt === undefined || (tc === undefined && et === undefined)) return;
  for (let v = 0; v < wt.length; v++) {
    if (tc !== undefined && wt[v] === 0) tc[v] = 0;
    if (et !== undefined && (tc !== undefined ? tc[v] === 0 : wt[v] === 0)) et[v] = 0;
  }
}

/** The post-processing settings {@link postprocessRegions} applies (a ResolvedInference is one). */
export interface PostprocessSettings {
  /** Threshold of each region, in the regions' order. */
  thresholds: readonly number[];
  largestComponent: boolean;
  /** Inner regions (TC, ET) whose largest component alone is kept too, after the whole tumour's (default none). */
  componentRegions?: readonly RegionName[];
  /** Enhancing tumour under this many voxels becomes core; 0: never. */
  minEnhancingVoxels: number;
  /** Per region, components under this many voxels are removed from it (before the enhancing minimum); absent: none. */
  minComponentVoxels?: Partial<Record<RegionName, number>>;
}

/**
 * Probability maps → binary region masks, as every segmentation makes them: a threshold per region, the largest
 * 26-connected whole-tumour component (when asked), nesting (ET inside TC inside WT), the largest component of each
 * inner region in `componentRegions` (TC, then ET, each nesting again), components smaller than `minComponentVoxels`
 * removed per region (WT, TC, ET, each nesting again: a removed enhancing speck stays core), then an enhancing tumour
 * smaller than `minEnhancingVoxels` relabelled as core (its voxels stay in TC). `brats tune` scores its candidate
 * settings through this same function. `notes` says what the last two steps did.
 */
export function postprocessRegions(
  probabilities: readonly Float32Array[],
  regions: readonly RegionName[],
  shape: Shape3,
  settings: PostprocessSettings,
): { masks: Uint8Array[]; notes: string[] } {
  const masks: Uint8Array[] = probabilities.map((volume, r) => {
    const threshold = settings.thresholds[r]!;
    const mask = new Uint8Array(volume.length);
    for (let v = 0; v < volume.length; v++) mask[v] = volume[v]! > threshold ? 1 : 0;
    return mask;
  });
  return postprocessMasks(masks, regions, shape, settings);
}

const REGION_WORDS: Record<RegionName, string> = { WT: 'whole-tumour', TC: 'tumour-core', ET: 'enhancing-tumour' };

/**
 * The steps of {@link postprocessRegions} after the threshold, on masks already thresholded (changed in place):
 * largest whole-tumour component, nesting, inner regions' largest components, small components per region, small
 * enhancing tumour relabelled as core.
 */
function postprocessMasks(
  masks: Uint8Array[],
  regions: readonly RegionName[],
  shape: Shape3,
  settings: PostprocessSettings,
): { masks: Uint8Array[]; notes: string[] } {
  const wtIndex = regions.indexOf('WT');
  if (settings.largestComponent && wtIndex >= 0) masks[wtIndex] = keepLargestComponent(masks[wtIndex]!, shape);
  const maskOf = (region: RegionName): Uint8Array | undefined => (regions.includes(region) ? masks[regions.indexOf(region)] : undefined);
  nestRegions(maskOf('WT'), maskOf('TC'), maskOf('ET'));
  // Then the inner regions' own largest components where chosen, outer first, each nesting again what it holds.
  for (const region of ['TC', 'ET'] as const) {
    const index = regions.indexOf(region);
    if (index < 0 || !(settings.componentRegions ?? []).includes(region)) continue;
    masks[index] = keepLargestComponent(masks[index]!, shape);
    nestRegions(maskOf('WT'), maskOf('TC'), maskOf('ET'));
  }
  const notes: string[] = [];
  for (const region of ['WT', 'TC', 'ET'] as const) {
    const minimum = settings.minComponentVoxels?.[region] ?? 0;
    const index = regions.indexOf(region);
    if (index < 0 || minimum <= 0) continue;
    const { mask, removed } = removeSmallComponents(masks[index]!, shape, minimum);
    if (removed === 0) continue;
    masks[index] = mask;
    nestRegions(maskOf('WT'), maskOf('TC'), maskOf('ET'));
    const becomes = region === 'ET' ? ' (now core)' : region === 'TC' ? ' (now whole tumour only)' : '';
    notes.push(`${removed} ${REGION_WORDS[region]} component${removed === 1 ? '' : 's'} under ${minimum} voxels removed${becomes}`);
  }
  const et = maskOf('ET');
  if (et !== undefined && settings.minEnhancingVoxels > 0) {
    let count = 0;
    for (let v = 0; v < et.length; v++) count += et[v]!;
    if (count > 0 && count < settings.minEnhancingVoxels) {
      et.fill(0);
      notes.push(`enhancing tumour of ${count} voxels (under ${settings.minEnhancingVoxels}) relabelled as core`);
    }
  }
  return { masks, notes };
}

/** Channels whose every voxel has one value: no image at all (an empty or blanked file). */
function constantChannels(caseData: CanonicalCase): { name: string; value: number }[] {
  const found: { name: string; value: number }[] = [];
  caseData.channels.forEach((channel, index) => {
    const value = constantValue(channel.data);
    if (value !== undefined) found.push({ name: CANONICAL_CHANNELS[index]!, value });
  });
  return found;
}

/** The case on the model's grid: every channel resampled linearly to `target` spacing, affine to match. */
function resampleCase(caseData: CanonicalCase, from: Shape3, to: Shape3, target: Spacing3): CanonicalCase {
  const grid = caseData.channels[0];
  const affine = resampledAffine(grid.affine, from, to);
  const channels = caseData.channels.map((channel): Volume<'float32'> => ({
    dtype: 'float32',
    data: resampleLinear(channel.data, from, to),
    shape: to,
    spacing: [target[0], target[1], target[2]],
    affine,
  }));
  const { labels: _labels, ...rest } = caseData;
  return { ...rest, channels: channels as unknown as CanonicalCase['channels'] };
}

/**
 * Segments one case, already read, with a model bundle's manifest and an engine (`segmentCase` reads a case first).
 * @param runner the engine, or the promise of one still opening: the case is preprocessed meanwhile, and only the
 *   forward pass waits for it.
 * @param loadSeconds the time the caller spent reading the case, reported in `timings.load`.
 * @throws {ArgumentError} when the manifest's preprocessing does not give the model's input, the engine returns the
 *   wrong number of values, or a one-region model is asked for a multi-region label convention.
 */
export async function segmentLoadedCase(
  caseData: CanonicalCase,
  manifest: ModelManifest,
  runner: SliceRunner | PromiseLike<SliceRunner>,
  options: SegmentOptions = {},
  loadSeconds = 0,
): Promise<Segmentation> {
  const modelOrientation = manifest.orientation ?? DEFAULT_MODEL_ORIENTATION;
  const source = manifest.orientation === undefined ? 'as BraTS and the Decathlon; the bundle records none' : 'recorded in the bundle';
  const { case: oriented, plan } = reorientCase(caseData, modelOrientation);
  if (plan.identity) {
    const result = await segmentInModelOrientation(caseData, manifest, runner, options, loadSeconds, plan.from);
    result.reasons.unshift(`orientation ${describeOrientation(plan.from)}: the model's own (${source})`);
    return result;
  }
  // The model learnt its slices in one orientation: a scan stored in another is turned to it (axes permuted and
  // reversed, no interpolation), segmented there, and every output turned back onto the scan's own grid.
  const reason =
    `orientation ${describeOrientation(plan.from)} turned to the model's ${describeOrientation(modelOrientation)} (${source}): ` +
    `axes permuted and reversed, no interpolation, the outputs turned back onto the scan's grid`;
  const inner = await segmentInModelOrientation(oriented, manifest, runner, options, loadSeconds, plan.from);
  const masks = inner.masks.map((mask) => plan.toSource(mask));
  const grid = caseData.channels[0];
  // A one-region model's label map is its mask, as in the scan's own orientation.
  const labels = labelMapOn(grid, inner.regions.length === 1 ? masks[0]! : plan.toSource(inner.labels.data));
  let probabilities: Float32Array[] | undefined;
  // Field by field: spreading `inner` would read its probabilities, which are made (or refused) only when read.
  return {
    id: inner.id,
    case: caseData,
    regions: inner.regions,
    get probabilities() {
      probabilities ??= inner.probabilities.map((volume) => plan.toSource(volume));
      return probabilities;
    },
    masks,
    labels,
    labelMapping: inner.labelMapping,
    volumesMl: inner.volumesMl,
    inference: inner.inference,
    reasons: [reason, ...inner.reasons],
    notices: [reason, ...inner.notices],
    warnings: inner.warnings,
    engineCalls: inner.engineCalls,
    timings: inner.timings,
  };
}

/** A label map of `data` on the scan's grid: its 3D shape, spacing, affine and header, so that it overlays the scan. */
function labelMapOn(grid: Volume, data: Uint8Array): Volume<'uint8'> {
  const labels: Volume<'uint8'> = { dtype: 'uint8', data, shape: [grid.shape[0], grid.shape[1], grid.shape[2]], spacing: grid.spacing, affine: grid.affine };
  if (grid.header !== undefined) labels.header = grid.header;
  return labels;
}

/**
 * {@link segmentLoadedCase} of a case already in the model's orientation; `scanOrientation` is the orientation the
 * scan was stored in, for naming the window's faces in the scan's own axes.
 */
async function segmentInModelOrientation(
  caseData: CanonicalCase,
  manifest: ModelManifest,
  runner: SliceRunner | PromiseLike<SliceRunner>,
  options: SegmentOptions,
  loadSeconds: number,
  scanOrientation: string,
): Promise<Segmentation> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError('segmentCase', 'options.batchSize', `must be a positive integer, found ${batchSize}`);
  const inference = resolveInference(manifest, options);
  const regions = manifest.regions;
  const convention = chooseOutputConvention(regions, caseData.layout, options.labelMapping);
  const warnings = [...(caseData.warnings ?? [])];
  const grid = caseData.channels[0];
  const shape3: Shape3 = [grid.shape[0], grid.shape[1], grid.shape[2]];

  const constant = constantChannels(caseData);
  const blank = constant.length === caseData.channels.length;
  // loadCase already says it of a case it read (naming the file); a case passed in loaded may not have.
  for (const { name, value } of constant) {
    if (!warnings.some((warning) => warning.includes(`${name} is constant`))) warnings.push(`${name} is constant (every voxel ${value}): it holds no image`);
  }
  // loadCase (assembleCase) warns of a FLAIR that fills more than a brain; a case passed in loaded may not have.
  const skipSkullCheck = blank || constant.some(({ name }) => name === CANONICAL_CHANNELS[0]) || warnings.some((warning) => warning.includes('FLAIR is non-zero over'));
  const unstripped = skipSkullCheck ? undefined : unstrippedWarning(grid, caseData.ref.images[0]);
  if (unstripped !== undefined) warnings.push(unstripped);
  if (blank) {
    // No image at all: no tumour, by rule, and no engine run that would only add noise to a blank.
    warnings.push('every channel is constant: the label map is empty without running the model');
  }

  const preprocessStarted = performance.now();
  const spacing: Spacing3 = [grid.spacing[0], grid.spacing[1], grid.spacing[2]];
  const modelSpacing: Spacing3 = manifest.spacing ?? DEFAULT_MODEL_SPACING;
  const spacingSource = manifest.spacing === undefined ? '1 mm, as BraTS and the Decathlon; the bundle records none' : 'recorded in the bundle';
  const differs = !sameSpacing(spacing, modelSpacing);
  let modelGrid = caseData;
  let modelShape: Shape3 = shape3;
  let spacingReason = `spacing ${formatSpacing(spacing)} mm: the model's own (${spacingSource})`;
  const notices: string[] = [];
  if (differs && options.resample !== false) {
    modelShape = resampledShape(shape3, spacing, modelSpacing);
    modelGrid = resampleCase(caseData, shape3, modelShape, modelSpacing);
    spacingReason = `spacing ${formatSpacing(spacing)} mm resampled to the model's ${formatSpacing(modelSpacing)} mm (${spacingSource}): grid [${shape3.join(', ')}] to [${modelShape.join(', ')}], images linear, probabilities linear back onto the scan's grid`;
    notices.push(spacingReason);
  } else if (differs) {
    spacingReason = `spacing ${formatSpacing(spacing)} mm segmented as it is, although the model learnt ${formatSpacing(modelSpacing)} mm (${spacingSource}): resampling was switched off`;
    warnings.push(spacingReason);
  }
  // The statistics now, each batch's slices normalised when it goes to the engine (the same values as preprocessCase's
  // image): the engine starts after one pass over the crop window, not after a whole-block image and a pass over it.
  const prepared = prepareSlices(modelGrid, manifest.preprocessing);
  const [depth, height, width, channels] = prepared.shape;
  const [modelHeight, modelWidth, modelChannels] = manifest.model.inputShape;
  if (height !== modelHeight || width !== modelWidth || channels !== modelChannels) {
    throw new ArgumentError('segmentCase', 'manifest', `preprocessing gives slices [${height}, ${width}, ${channels}], the model takes [${modelHeight}, ${modelWidth}, ${modelChannels}]`);
  }
  const preprocess = (performance.now() - preprocessStarted) / 1000;

  const K = manifest.model.outputChannels;
  const sliceValues = height * width * channels;
  const outputValues = height * width * K;
  const block = new Float32Array(depth * outputValues);
  let engineCalls = 0;
  const runChecked = async (slices: Float32Array, count: number): Promise<Float32Array> => {
    const output = await engine.run(slices, count);
    engineCalls++;
    if (output.length !== count * outputValues) {
      throw new ArgumentError('segmentCase', 'runner', `returned ${output.length} values for ${count} slices of [${height}, ${width}, ${K}]`);
    }
    return output;
  };
  // Slices without any image (no brain: every pixel of each channel alike) are all the same input: the model runs
  // once for each distinct one and its twins take the answer, exactly what running each would give.
  const plan = blank
    ? { run: [], twinOf: new Int32Array(0), twins: new Int32Array(0), groups: 0 }
    : options.reuseConstantSlices === false
      ? everySlice(depth)
      : planSlices(prepared);
  const skipped = depth - plan.run.length;
  const engine = await runner;
  // Labels decided by two of the three flipped passes need not wait for the third: only when nothing but the label
  // map is wanted, and the labels come from the crop block itself (a resampled scan thresholds interpolated values).
  const decideEarly = options.labelsOnly === true && inference.tta && modelGrid === caseData;
  let thirdPassSkipped = 0;
  // Input arrays for the batches in flight, taken again by later batches.
  const inputs: Float32Array[] = [];
  const takeInput = (count: number): Float32Array => {
    const spare = inputs.findIndex((array) => array.length === count * sliceValues);
    return spare < 0 ? new Float32Array(count * sliceValues) : inputs.splice(spare, 1)[0]!;
  };
  let fillSeconds = 0;
  /** One batch's probabilities: its slices of `source` normalised into an input array, then run with their flips. */
  const runBatch = async (source: PreparedSlices, indices: readonly number[]): Promise<Float32Array> => {
    const count = indices.length;
    const slices = takeInput(count);
    const filling = performance.now();
    source.fill(indices, slices);
    fillSeconds += (performance.now() - filling) / 1000;
    try {
      return await runFlips(slices, count);
    } finally {
      // Every engine copies or is done with its input once its run resolves: the array can take another batch.
      inputs.push(slices);
    }
  };
  /**
   * The probabilities of `count` slices: the slices, and with flips the two flipped copies, all handed to the engine
   * at once (the flips are made while it computes the first), then averaged in the same order as one after the other.
   */
  const runFlips = async (slices: Float32Array, count: number): Promise<Float32Array> => {
    const plain = runChecked(slices, count);
    if (!inference.tta) return plain;
    const flipped = async (input: Float32Array, n: number, axis: 'width' | 'height'): Promise<Float32Array> =>
      flipSlices(await runChecked(flipSlices(input, n, height, width, channels, axis), n), n, height, width, K, axis);
    if (!decideEarly) {
      const [output, alongWidth, alongHeight] = await Promise.all([plain, flipped(slices, count, 'width'), flipped(slices, count, 'height')]);
      averageFlips(output!, alongWidth!, alongHeight!);
      return output!;
    }
    const [output, alongWidth] = await Promise.all([plain, flipped(slices, count, 'width')]);
    const open = slicesNeedingThirdPass(output!, alongWidth!, count, outputValues, inference.thresholds);
    const alongHeight = open.length === 0 ? undefined : await flipped(open.length === count ? slices : gatherSlices(slices, open, sliceValues), open.length, 'height');
    // The slices decided by two passes keep the mean with a third output of 0: on the right side of every threshold.
    const zeros = new Float32Array(outputValues);
    let next = 0;
    for (let j = 0; j < count; j++) {
      const range = [j * outputValues, (j + 1) * outputValues] as const;
      let third: Float32Array = zeros;
      if (open[next] === j) {
        third = alongHeight!.subarray(next * outputValues, (next + 1) * outputValues);
        next++;
      }
      averageFlips(output!.subarray(...range), alongWidth!.subarray(...range), third);
    }
    thirdPassSkipped += count - open.length;
    return output!;
  };
  /**
   * Runs the slices of `source` that `slicePlan` names, batchSize at a time, into `into` (slice s at slot `slotOf(s)`). Two batches are in
   * flight: the engine starts the next while this thread stores the last one's answer. Results are taken in order,
   * and each slice's answer is computed alone, so the block is the same as one batch at a time.
   */
  const runPlan = async (
    source: PreparedSlices,
    slicePlan: SlicePlan,
    into: Float32Array,
    slotOf: (slice: number) => number,
    onStored: (slice: number) => void,
    onBatch?: () => void,
  ): Promise<void> => {
    const batches: number[][] = [];
    for (let start = 0; start < slicePlan.run.length; start += batchSize) batches.push(slicePlan.run.slice(start, start + batchSize));
    const inFlight: Promise<Float32Array>[] = [];
    let submitted = 0;
    const submit = (): void => {
      const batch = runBatch(source, batches[submitted++]!);
      // Awaited in order below; a later batch's failure must not go unhandled while an earlier one is awaited.
      batch.catch(() => undefined);
      inFlight.push(batch);
    };
    try {
      while (submitted < Math.min(2, batches.length)) submit();
      for (let index = 0; index < batches.length; index++) {
        const output = await inFlight.shift()!;
        if (submitted < batches.length) submit();
        batches[index]!.forEach((slice, j) => {
          into.set(output.subarray(j * outputValues, (j + 1) * outputValues), slotOf(slice) * outputValues);
          onStored(slice);
        });
        onBatch?.();
      }
    } finally {
      // A failed batch (or a caller's abort thrown from onSlices) leaves none running behind it.
      await Promise.allSettled(inFlight);
    }
  };
  const cropShape = [depth, height, width, K] as const;
  // On the model's own grid each batch is thresholded onto the scan's grid as it comes in, while the engine computes
  // the next: the masks are done when the last batch is (a resampled scan thresholds interpolated volumes instead).
  const thresholded = modelGrid === caseData ? new ThresholdedCrop(cropShape, prepared.params, inference.thresholds) : undefined;
  const inferenceStarted = performance.now();
  let covered = 0;
  await runPlan(
    prepared,
    plan,
    block,
    (slice) => slice,
    (slice) => {
      thresholded?.addSlices(block, slice, slice + 1);
      covered += 1 + plan.twins[slice]!;
    },
    () => options.onSlices?.(covered, depth),
  );
  // Every slice of the plan (none for a blank scan, whose plan runs nothing).
  copyTwins(block, plan, allSlices(plan.twinOf.length), (slice) => slice, outputValues, (slice) => thresholded?.addSlices(block, slice, slice + 1));

  // Beyond the window: where the predicted whole tumour reaches a face of it and the scan goes on (window-extension.ts).
  const windowStart = prepared.params.cropStart;
  const windowSize = manifest.preprocessing.cropSize;
  const wtChannel = Math.max(0, regions.indexOf('WT'));
  const wtThreshold = inference.thresholds[wtChannel]!;
  const extend = options.extendWindow !== false;
  /** The in-plane windows [i, j], the model's own first, and the blocks run beyond the window with their places. */
  let rects: [number, number][] = [[windowStart[0], windowStart[1]]];
  const extraBlocks: { start: readonly [number, number, number]; rect: number; block: Float32Array; slices: number[] }[] = [];
  const reached: WindowFace[] = [];
  let extraRun = 0;
  let extraSlices = 0;
  /**
   * Runs the slices `wanted` of a window beyond the model's into a block of those slices alone (one after another; a
   * window along k wants a few slices, not its whole depth), which it keeps with the window's place.
   */
  const runWindow = async (start: readonly [number, number, number], wanted: number[], rect: number): Promise<Float32Array> => {
    const source = prepareSlices(modelGrid, manifest.preprocessing, { cropStart: start, channelStats: prepared.params.channelStats });
    const windowPlan = options.reuseConstantSlices === false ? everySlice(depth, wanted) : planSlices(source, wanted);
    const slot = new Int32Array(depth).fill(-1);
    wanted.forEach((slice, position) => (slot[slice] = position));
    const into = new Float32Array(wanted.length * outputValues);
    // Progress counts these slices too: the slices in all grow by each window as it starts.
    const total = depth + extraSlices + wanted.length;
    await runPlan(
      source,
      windowPlan,
      into,
      (slice) => slot[slice]!,
      (slice) => (covered += 1 + windowPlan.twins[slice]!),
      () => options.onSlices?.(covered, total),
    );
    copyTwins(into, windowPlan, wanted, (slice) => slot[slice]!, outputValues);
    extraBlocks.push({ start, rect, block: into, slices: wanted });
    extraRun += windowPlan.run.length;
    extraSlices += wanted.length;
    return into;
  };
  /** The slices of a window starting at k0 that lie in the scan and are not yet in `done` (then marked done). */
  const newSlices = (k0: number, done: Uint8Array): number[] => {
    const slices: number[] = [];
    for (let z = 0; z < depth; z++) {
      const k = k0 + z;
      if (k < 0 || k >= modelShape[2] || done[k] === 1) continue;
      done[k] = 1;
      slices.push(z);
    }
    return slices;
  };
  if (!blank) {
    const inPlane = touchedFaces(block, cropShape, windowStart, modelShape, wtChannel, wtThreshold, [0, 1]);
    reached.push(...inPlane);
    if (extend && inPlane.length > 0) rects = [rects[0]!, ...inPlaneStarts(windowStart, windowSize, modelShape, inPlane)];
    const atWindowDepth: Float32Array[] = [block];
    for (let r = 1; r < rects.length; r++) {
      // Every slice, as the model's own window runs them: its faces along k are read at its first and last slice.
      atWindowDepth.push(await runWindow([rects[r]![0], rects[r]![1], windowStart[2]], allSlices(depth), r));
    }
    // Along k, the faces of every in-plane window: the slices beyond them are segmented in each.
    const sidesK = new Set(atWindowDepth.flatMap((values) => touchedFaces(values, cropShape, windowStart, modelShape, wtChannel, wtThreshold, [2]).map((face) => face.side)));
    const alongK = (['low', 'high'] as const).filter((side) => sidesK.has(side)).map((side): WindowFace => ({ axis: 2, side }));
    reached.push(...alongK);
    if (extend && alongK.length > 0) {
      const starts = alongK.flatMap((face) => extensionStarts(modelShape[2], depth, windowStart[2], face.side));
      for (let r = 0; r < rects.length; r++) {
        const done = new Uint8Array(modelShape[2]);
        newSlices(windowStart[2], done);
        for (const k0 of starts) {
          const wanted = newSlices(k0, done);
          if (wanted.length > 0) await runWindow([rects[r]![0], rects[r]![1], k0], wanted, r);
        }
      }
    }
  }
  const inferenceSeconds = (performance.now() - inferenceStarted) / 1000;
  const owner = extraBlocks.length > 0 ? ownerMap(rects, [windowSize[0], windowSize[1]], modelShape) : undefined;
  const writeExtra = (targets: readonly (Float32Array | Uint8Array)[], thresholds?: readonly number[]): void => {
    for (const extra of extraBlocks) writeWindow(targets, extra.block, cropShape, extra.start, extra.slices, owner!, extra.rect, modelShape, thresholds);
  };
  if (thresholded !== undefined) writeExtra(thresholded.masks, inference.thresholds);
  const faceNames = reached.map((face) => describeFace(face, manifest.orientation ?? DEFAULT_MODEL_ORIENTATION, scanOrientation)).join(', ');
  let extensionNote: string | undefined;
  const windowText = `${windowSize[0]}x${windowSize[1]}x${windowSize[2]}`;
  if (reached.length > 0 && extend) {
    // Each block is a window of its own: no two start at the same voxel.
    extensionNote = `predicted tumour reached the ${faceNames} face(s) of the model's ${windowText} window, with scan beyond: ${extraBlocks.length} more window(s) segmented it there (${extraSlices} slices, ${extraRun} through the engine), normalised with the window's statistics`;
    notices.push(extensionNote);
  } else if (reached.length > 0) {
    warnings.push(`predicted tumour reaches the ${faceNames} face(s) of the model's ${windowText} window and the scan goes on beyond: that part was not segmented (window extension is off)`);
  }

  const postprocessStarted = performance.now();
  // The probability volumes on the scan's grid are made when first read (a float volume per region that only
  // probability outputs and tuning want); on the model's own grid the masks come from the crop block directly.
  let probabilities: Float32Array[] | undefined;
  const probabilitiesOnGrid = (): Float32Array[] => {
    if (probabilities === undefined) {
      const onModelGrid = restoreCrop(block, cropShape, prepared.params);
      writeExtra(onModelGrid);
      probabilities = modelGrid === caseData ? onModelGrid : onModelGrid.map((volume) => resampleLinear(volume, modelShape, shape3));
    }
    return probabilities;
  };
  const { masks, notes } =
    thresholded !== undefined ? postprocessMasks(thresholded.masks, regions, shape3, inference) : postprocessRegions(probabilitiesOnGrid(), regions, shape3, inference);
  const maskOf = (region: RegionName): Uint8Array | undefined => (regions.includes(region) ? masks[regions.indexOf(region)] : undefined);
  const wt = maskOf('WT');
  const tc = maskOf('TC');
  const et = maskOf('ET');
  // A one-region model's label map is its mask (0/1): the same array, not a copy of 9 MB for a BraTS scan.
  const labelData = regions.length === 1 ? masks[0]! : new Uint8Array(grid.data.length);
  if (regions.length > 1) {
    const values = nestedLabelValues(convention.mapping);
    for (let v = 0; v < labelData.length; v++) {
      if (wt !== undefined && wt[v] === 0) continue;
      labelData[v] = et !== undefined && et[v] === 1 ? values.enhancing : tc !== undefined && tc[v] === 1 ? values.core : values.oedema;
    }
  }
  const labels = labelMapOn(grid, labelData);
  const postprocess = (performance.now() - postprocessStarted) / 1000;

  const settings = manifest.preprocessing;
  const reasons = [
    spacingReason,
    `preprocessing from the bundle: ${settings.cropMode} crop ${settings.cropSize.join('x')}, ${settings.normalize} z-score, channels ${settings.channels.join(', ')}`,
    ...inference.reasons,
    ...(skipped > 0
      ? [`${skipped} of ${depth} slices repeat an image-free (constant) slice the model already ran (${plan.groups} distinct): they took its answer instead of running again`]
      : []),
    ...(thirdPassSkipped > 0
      ? [`${thirdPassSkipped} of ${plan.run.length + extraRun} slices run skipped the third flipped pass: the plain and width-flipped outputs already decided every voxel's label, whatever the third could add`]
      : []),
    ...(extensionNote === undefined ? [] : [extensionNote]),
    ...notes,
    convention.reason,
  ];
  return {
    id: caseData.id,
    case: caseData,
    regions,
    get probabilities() {
      if (thirdPassSkipped > 0) {
        throw new ArgumentError('segmentCase', 'options.labelsOnly', `was set, and ${thirdPassSkipped} slice(s) skipped their third flipped pass: the probabilities were not all computed`);
      }
      return probabilitiesOnGrid();
    },
    masks,
    labels,
    labelMapping: convention.mapping,
    volumesMl: regionVolumesMl(regions, masks, [grid.spacing[0], grid.spacing[1], grid.spacing[2]]),
    inference,
    reasons,
    notices,
    warnings,
    engineCalls,
    timings: { load: loadSeconds, preprocess: preprocess + fillSeconds, inference: inferenceSeconds, postprocess },
  };
}
