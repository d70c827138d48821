/**
 * Post-processing chosen on validation cases, the way nnU-Net picks its post-processing on its validation folds:
 * every combination of test-time flips and largest component is run through the same {@link segmentCase} that
 * predict uses, scored against the reference, and the best mean wins (ties go to the simpler option).
 */
import path from 'node:path';
import { ArgumentError, regionMask, type CanonicalCase, type CaseRef, type InferenceDefaults, type InferenceSelectionRecord, type ModelManifest, type RegionName } from '@brats/io';
import { computeDice } from '@brats/metrics';
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
  /** Called after each case is scored under every option. */
  onCase?: (done: number, total: number, id: string) => void;
  /** The time recorded (default now). */
  now?: Date;
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
  const memo = new MemoRunner(runner);
  const perCase = INFERENCE_OPTIONS.map(() => [] as number[]);
  for (const [index, ref] of cases.entries()) {
    const labelled = 'channels' in ref ? ref.labels !== undefined : ref.label !== undefined;
    if (!labelled) throw new ArgumentError('tuneInference', 'cases', `case ${ref.id} has no reference label map`);
    let loaded: CanonicalCase | undefined;
    for (const [optionIndex, option] of INFERENCE_OPTIONS.entries()) {
      const segmentation = await segmentCase(loaded ?? ref, manifest, memo, { ...option, threshold: manifest.threshold, ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }) });
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
  return {
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
}
