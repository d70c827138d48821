/**
 * Post-processing chosen on validation cases, the way nnU-Net picks its post-processing on its validation folds:
 * every combination of test-time flips and largest component is run through the same {@link segmentCase} that
 * predict uses, scored against the reference, and the best mean wins (ties go to the simpler option). For a model
 * of several regions the thresholds come next, and the largest component is then decided again on the masks they give.
 */
import path from 'node:path';
import { ArgumentError, regionMask, type CanonicalCase, type CaseRef, type InferenceDefaults, type InferenceSelectionRecord, type ModelManifest, type RegionName } from '@brats/io';
import { computeDice, computeLesionWise, DEFAULT_LESION_WISE } from '@brats/metrics';
import { postprocessRegions, type PostprocessSettings, type SegmentOptions } from './segment-core.js';
import { segmentCase, type SliceRunner } from './segment-case.js';

/** One post-processing option. */
export interface InferenceOption {
  readonly tta: boolean;
  readonly largestComponent: boolean;
}

/** The options tried, simplest first (a tie keeps the earlier one). */
export const INFERENCE_OPTIONS: readonly InferenceOption[] = [
  { tta: false, largestComponent: false },
  { tta: false, largestComponent: true },
  { tta: true, largestComponent: false },
  { tta: true, largestComponent: true },
];

/** Options of {@link tuneInference}. */
export interface TuneInferenceOptions {
  /** The dataset the cases come from, recorded relative to `bundle` (or by name when on another volume). */
  data: string;
  /** The bundle folder the choice is written to (for the relative dataset path). */
  bundle: string;
  /** Slices per engine call (default 16). */
  batchSize?: number;
  /** Segment beyond the model's window where the tumour reaches it, as predict does (default true; see SegmentOptions). */
  extendWindow?: boolean;
  /** Called after each case is scored under every option. */
  onCase?: (done: number, total: number, id: string) => void;
  /** The time recorded (default now). */
  now?: Date;
}

/** The options of tuning that every segmentation it scores runs with: the batch size and the windows beyond. */
function segmentSettings(options: TuneInferenceOptions): Pick<SegmentOptions, 'batchSize' | 'extendWindow'> {
  return {
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.extendWindow === undefined ? {} : { extendWindow: options.extendWindow }),
  };
}

/**
 * A runner that answers a batch it has seen before from memory: the options share the plain and flipped engine
 * passes, so a case costs three passes with flips, not eight. Keyed by a hash of the input plus its length and
 * batch, and checked against the stored input so a collision cannot give a wrong answer.
 */
class MemoRunner implements SliceRunner {
  readonly #inner: SliceRunner;
  #entries = new Map<string, { input: Float32Array; output: Float32Array }[]>();
  calls = 0;

  constructor(inner: SliceRunner) {
    this.#inner = inner;
  }

  static #hash(values: Float32Array): number {
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
    let hash = 0x811c9dc5;
    for (let i = 0; i < words.length; i++) hash = Math.imul(hash ^ words[i]!, 0x01000193);
    return hash >>> 0;
  }

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    const key = `${MemoRunner.#hash(input)}:${input.length}:${batch}`;
    const bucket = this.#entries.get(key) ?? [];
    for (const entry of bucket) {
      if (entry.input.length === input.length && entry.input.every((value, index) => Object.is(value, input[index]))) return entry.output.slice();
    }
    const output = await this.#inner.run(input, batch);
    this.calls++;
    bucket.push({ input: input.slice(), output: output.slice() });
    this.#entries.set(key, bucket);
    return output;
  }

  clear(): void {
    this.#entries = new Map();
  }
}

/** The dataset as the bundle records it: relative to the bundle folder, or the folder's name when on another volume. */
export function datasetReference(bundle: string, data: string): string {
  const relative = path.relative(path.resolve(bundle), path.resolve(data));
  return relative === '' ? '.' : path.isAbsolute(relative) ? path.basename(path.resolve(data)) : relative.split(path.sep).join('/');
}

/**
 * Scores every post-processing option on labelled cases and returns the bundle's new `inference` field: the best
 * mean Dice over the model's regions (BraTS rule for empty masks: both empty scores 1), with every option's figures.
 * @throws {ArgumentError} when no case is given or a case has no reference label map.
 * @throws {DatasetError} when a case cannot be read; the engine's errors.
 */
export async function tuneInference(cases: readonly (CaseRef | CanonicalCase)[], manifest: ModelManifest, runner: SliceRunner, options: TuneInferenceOptions): Promise<InferenceDefaults & { selection: InferenceSelectionRecord }> {
  if (cases.length === 0) throw new ArgumentError('tuneInference', 'cases', 'is empty: give the labelled validation cases');
  const regions: readonly RegionName[] = manifest.regions;
  // Every option is scored as it stands, not on top of a choice the bundle already records (a bundle tuned again).
  const { inference: _recorded, ...untuned } = manifest;
  const memo = new MemoRunner(runner);
  const perCase = INFERENCE_OPTIONS.map(() => [] as number[]);
  for (const [index, ref] of cases.entries()) {
    const labelled = 'channels' in ref ? ref.labels !== undefined : ref.label !== undefined;
    if (!labelled) throw new ArgumentError('tuneInference', 'cases', `case ${ref.id} has no reference label map`);
    let loaded: CanonicalCase | undefined;
    for (const [optionIndex, option] of INFERENCE_OPTIONS.entries()) {
      const segmentation = await segmentCase(loaded ?? ref, untuned, memo, {
        ...option,
        threshold: manifest.threshold,
        minEnhancingVoxels: 0,
        ...segmentSettings(options),
      });
      loaded = segmentation.case;
      const reference = segmentation.case.labels!;
      const scores = regions.map((region, r) =>
        computeDice(segmentation.masks[r]!, regionMask(reference.data, segmentation.case.labelMapping, region), { convention: 'brats' }),
      );
      perCase[optionIndex]!.push(scores.reduce((sum, value) => sum + value, 0) / scores.length);
    }
    memo.clear();
    options.onCase?.(index + 1, cases.length, ref.id);
  }
  const candidates = INFERENCE_OPTIONS.map((option, optionIndex) => ({
    ...option,
    mean: perCase[optionIndex]!.reduce((sum, value) => sum + value, 0) / cases.length,
    perCase: perCase[optionIndex]!,
  }));
  let best = candidates[0]!;
  for (const candidate of candidates) if (candidate.mean > best.mean) best = candidate;
  const chosen: InferenceDefaults & { selection: InferenceSelectionRecord } = {
    tta: best.tta,
    largestComponent: best.largestComponent,
    selection: {
      metric: `mean ${regions.join('/')} Dice`,
      data: datasetReference(options.bundle, options.data),
      cases: cases.map((ref) => ref.id),
      candidates,
      chosenAt: (options.now ?? new Date()).toISOString(),
    },
  };
  if (regions.length > 1) await tuneRegions(cases, untuned, runner, chosen, options);
  return chosen;
}

/** Thresholds tried per region (with the manifest's own, which wins a tie). */
export const THRESHOLD_CANDIDATES: readonly number[] = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7];
/** Smallest enhancing tumour tried (voxels), 0 (keep every one) first. */
export const ENHANCING_MINIMUM_CANDIDATES: readonly number[] = [0, 25, 50, 100, 200, 400, 800];
/** Smallest component kept per region tried (voxels), 0 (keep every one) first. */
export const COMPONENT_MINIMUM_CANDIDATES: readonly number[] = [0, 10, 20, 50, 100, 200, 400];

/**
 * For a model of several regions, under the chosen flips: a threshold per region (WT, then TC, then ET, each with
 * the ones before it fixed, since nesting ties them), then the largest component decided again on the masks those
 * thresholds give, then the smallest enhancing tumour kept as such, then per region (WT, TC, ET) the smallest
 * component kept, scored by the region's mean lesion-wise Dice (BraTS-GLI), the score stray specks cost most. The
 * component comes after the thresholds as nnU-Net decides its component step last, on the final predictions: a WT
 * threshold below 0.5 adds scattered voxels
 * that the choice at 0.5 never saw; with it on, TC's and then ET's own largest component are tried the same way.
 * Every candidate goes through {@link postprocessRegions}, the path predict takes;
 * thresholds and the minimum are scored by the mean Dice of their region over the cases, the component by the mean
 * over the regions (as the first choice), all with the BraTS rule for empty masks; among equal scores the threshold
 * nearest the manifest's, no component step, and the smaller minimum win. Writes `thresholds`, `largestComponent`,
 * `componentRegions`, `minEnhancingVoxels`, `minComponentVoxels` and their candidates into `chosen`.
 */
async function tuneRegions(
  cases: readonly (CaseRef | CanonicalCase)[],
  manifest: ModelManifest,
  runner: SliceRunner,
  chosen: InferenceDefaults & { selection: InferenceSelectionRecord },
  options: TuneInferenceOptions,
): Promise<void> {
  const regions = manifest.regions;
  const scored: { probabilities: Float32Array[]; references: Uint8Array[]; shape: [number, number, number]; spacing: [number, number, number] }[] = [];
  for (const ref of cases) {
    const segmentation = await segmentCase(ref, manifest, runner, {
      tta: chosen.tta,
      largestComponent: chosen.largestComponent,
      threshold: manifest.threshold,
      minEnhancingVoxels: 0,
      ...segmentSettings(options),
    });
    const labels = segmentation.case.labels!;
    const [x, y, z] = segmentation.labels.shape;
    const [sx, sy, sz] = segmentation.labels.spacing;
    scored.push({
      probabilities: segmentation.probabilities,
      references: regions.map((region) => regionMask(labels.data, segmentation.case.labelMapping, region)),
      shape: [x, y, z!],
      spacing: [sx, sy, sz!],
    });
  }
  // Each case's Dice averaged over the regions, and those averaged over the cases: how the component steps are scored.
  const regionMean = (settings: PostprocessSettings): { mean: number; perCase: number[] } => {
    const perCase = scored.map((entry) => {
      const { masks } = postprocessRegions(entry.probabilities, regions, entry.shape, settings);
      return regions.reduce((sum, _, r) => sum + computeDice(masks[r]!, entry.references[r]!, { convention: 'brats' }), 0) / regions.length;
    });
    return { mean: perCase.reduce((sum, value) => sum + value, 0) / perCase.length, perCase };
  };
  const meanDice = (region: number, settings: PostprocessSettings): number =>
    scored.reduce((sum, entry) => sum + computeDice(postprocessRegions(entry.probabilities, regions, entry.shape, settings).masks[region]!, entry.references[region]!, { convention: 'brats' }), 0) / scored.length;
  const thresholds = regions.map(() => manifest.threshold);
  const settings = (): PostprocessSettings => ({ thresholds, largestComponent: chosen.largestComponent, componentRegions: chosen.componentRegions ?? [], minEnhancingVoxels: 0 });
  // Nearest the manifest's threshold first: among equal scores the least change wins.
  const ordered = [...new Set([manifest.threshold, ...THRESHOLD_CANDIDATES])].sort((a, b) => Math.abs(a - manifest.threshold) - Math.abs(b - manifest.threshold) || a - b);
  const thresholdCandidates: Partial<Record<RegionName, { threshold: number; mean: number }[]>> = {};
  for (const [r, region] of regions.entries()) {
    const tried = ordered.map((threshold) => {
      thresholds[r] = threshold;
      return { threshold, mean: meanDice(r, settings()) };
    });
    const winner = tried.reduce((top, entry) => (entry.mean > top.mean ? entry : top));
    thresholds[r] = winner.threshold;
    thresholdCandidates[region] = [...tried].sort((a, b) => a.threshold - b.threshold);
  }
  chosen.thresholds = Object.fromEntries(regions.map((region, r) => [region, thresholds[r]!]));
  chosen.selection.thresholdCandidates = thresholdCandidates;
  const componentCandidates = [false, true].map((largestComponent) => ({ largestComponent, ...regionMean({ thresholds, largestComponent, minEnhancingVoxels: 0 }) }));
  chosen.largestComponent = componentCandidates[1]!.mean > componentCandidates[0]!.mean;
  chosen.selection.componentCandidates = componentCandidates;
  // Then each inner region's own largest component, as nnU-Net decides its component step per region: TC, then ET,
  // each kept only if it raises the mean over the regions. Without the whole tumour's step, none is tried.
  const componentRegions: RegionName[] = [];
  const innerCandidates: { region: RegionName; largestComponent: boolean; mean: number; perCase: number[] }[] = [];
  const scoreWith = (inner: readonly RegionName[]): { mean: number; perCase: number[] } =>
    regionMean({ thresholds, largestComponent: chosen.largestComponent, componentRegions: inner, minEnhancingVoxels: 0 });
  if (chosen.largestComponent) {
    for (const region of (['TC', 'ET'] as const).filter((name) => regions.includes(name))) {
      const without = scoreWith(componentRegions);
      const withIt = scoreWith([...componentRegions, region]);
      innerCandidates.push({ region, largestComponent: false, ...without }, { region, largestComponent: true, ...withIt });
      if (withIt.mean > without.mean) componentRegions.push(region);
    }
    chosen.componentRegions = componentRegions;
    chosen.selection.innerComponentCandidates = innerCandidates;
  }
  const et = regions.indexOf('ET');
  if (et >= 0) {
    const tried = ENHANCING_MINIMUM_CANDIDATES.map((minEnhancingVoxels) => ({ minEnhancingVoxels, mean: meanDice(et, { ...settings(), minEnhancingVoxels }) }));
    chosen.minEnhancingVoxels = tried.reduce((top, entry) => (entry.mean > top.mean ? entry : top)).minEnhancingVoxels;
    chosen.selection.enhancingCandidates = tried;
  }
  // Last, per region, the smallest component kept. A stray speck barely moves the Dice over the whole region but is a
  // false-positive lesion, scored 0, in BraTS's lesion-wise Dice: that is the score each minimum is chosen by (the
  // region's mean over the cases); the whole-region Dice is recorded beside it. Among equal scores the smaller minimum wins.
  const minComponentVoxels: Partial<Record<RegionName, number>> = {};
  const minimumCandidates: Partial<Record<RegionName, { minComponentVoxels: number; lesionWiseDice: number; dice: number }[]>> = {};
  for (const [r, region] of regions.entries()) {
    const tried = COMPONENT_MINIMUM_CANDIDATES.map((minimum) => {
      const candidate: PostprocessSettings = { ...settings(), minEnhancingVoxels: chosen.minEnhancingVoxels ?? 0, minComponentVoxels: { ...minComponentVoxels, [region]: minimum } };
      let lesionWiseDice = 0;
      let dice = 0;
      for (const entry of scored) {
        const mask = postprocessRegions(entry.probabilities, regions, entry.shape, candidate).masks[r]!;
        lesionWiseDice += computeLesionWise(mask, entry.references[r]!, { shape: entry.shape, spacing: entry.spacing, ...DEFAULT_LESION_WISE }).dice / scored.length;
        dice += computeDice(mask, entry.references[r]!, { convention: 'brats' }) / scored.length;
      }
      return { minComponentVoxels: minimum, lesionWiseDice, dice };
    });
    const winner = tried.reduce((top, entry) => (entry.lesionWiseDice > top.lesionWiseDice ? entry : top));
    if (winner.minComponentVoxels > 0) minComponentVoxels[region] = winner.minComponentVoxels;
    minimumCandidates[region] = tried;
  }
  chosen.minComponentVoxels = minComponentVoxels;
  chosen.selection.componentMinimumCandidates = minimumCandidates;
}
