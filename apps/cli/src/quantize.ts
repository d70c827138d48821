/**
 * `brats export --precision int8`: the bundle's ONNX model quantised to INT8 (QDQ) with activation ranges calibrated
 * on its training cases, then measured against the FP32 model on its validation cases (Dice per region and engine
 * seconds per slice, both models on the same engine and threads). The INT8 model is kept, and recorded in the
 * manifest, only when its mean WT Dice is within {@link INT8_DICE_TOLERANCE} of FP32's.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  bundlePath,
  openDataset,
  readModelManifest,
  regionMask,
  writeFileAtomic,
  writeModelManifest,
  type CaseRef,
  type ModelManifest,
  type QuantizationRecord,
  type RegionName,
} from '@brats/io';
import { BratsError, computeDice } from '@brats/metrics';
import { datasetReference, openOrtModelRunner, segmentCase, type OrtModelRunner, type SliceRunner } from '@brats/ncs2-runtime';
import { UsageError } from './errors.js';
import { loadTrainingPackage } from './training-package.js';

/** The file the INT8 model is written to, beside model.onnx. */
export const INT8_MODEL_FILE = 'model-int8.onnx';
/** Largest drop of the mean validation WT Dice that INT8 may cost. */
export const INT8_DICE_TOLERANCE = 0.005;

/** The INT8 model costs more Dice than {@link INT8_DICE_TOLERANCE}: it is not written. */
export class QuantizationError extends BratsError {
  constructor(
    readonly bundle: string,
    readonly fp32Dice: number,
    readonly int8Dice: number,
  ) {
    super(
      'INT8_ACCURACY',
      `${bundle}: INT8 costs ${(fp32Dice - int8Dice).toFixed(4)} of mean validation WT Dice (${int8Dice.toFixed(4)} against ${fp32Dice.toFixed(4)} FP32), more than ${INT8_DICE_TOLERANCE}: no INT8 model written`,
    );
  }
}

/** Options of {@link quantizeBundle}. */
export interface QuantizeOptions {
  /** Dataset folder holding the bundle's training (calibration) and validation cases. */
  data: string;
  /** Training cases whose slices calibrate the ranges (default 6). */
  calibrationCases?: number;
  /** Intra-op threads of both models while measured (engine default when absent). */
  threads?: number;
  /** Called with a line per step. */
  onStep?: (line: string) => void;
  /** Called after each case, calibration and validation alike: cases done, cases in all, e.g. `validate int8 ID`. */
  onCase?: (done: number, total: number, label: string) => void;
}

/** The outcome: the record written to the manifest and where the model is. */
export interface QuantizeResult {
  file: string;
  record: QuantizationRecord;
}

/** A slice runner over one output of an {@link OrtModelRunner}, timing its calls. */
class TimedRunner implements SliceRunner {
  seconds = 0;
  slices = 0;
  #running = 0;
  #busySince = 0;
  constructor(
    private readonly model: OrtModelRunner,
    private readonly observe?: (outputs: Record<string, Float32Array>) => void,
  ) {}

  async run(input: Float32Array, batch: number): Promise<Float32Array> {
    // segmentCase keeps several batches in flight: the time counted is the time with at least one in the engine,
    // not the sum of each call's wait.
    if (this.#running++ === 0) this.#busySince = performance.now();
    try {
      const outputs = await this.model.run(input, batch);
      this.slices += batch;
      this.observe?.(outputs);
      return outputs[this.model.outputNames[0]!]!;
    } finally {
      if (--this.#running === 0) this.seconds += (performance.now() - this.#busySince) / 1000;
    }
  }
}

function casesById(all: readonly CaseRef[], ids: readonly string[], data: string, what: string): CaseRef[] {
  const byId = new Map(all.map((ref) => [ref.id, ref]));
  const missing = ids.filter((id) => !byId.has(id));
  if (missing.length > 0) throw new UsageError(`${data} has no ${what} case ${missing.join(', ')} (the bundle's split); give --data the dataset it was trained on`);
  return ids.map((id) => byId.get(id)!);
}

/** Mean Dice per region of `runner` over labelled `cases`, with the bundle's inference settings. */
async function validationDice(cases: readonly CaseRef[], manifest: ModelManifest, runner: SliceRunner, onCase: (id: string) => void): Promise<Partial<Record<RegionName, number>>> {
  const sums = manifest.regions.map(() => 0);
  for (const ref of cases) {
    const segmentation = await segmentCase(ref, manifest, runner, {});
    const reference = segmentation.case.labels;
    if (reference === undefined) throw new UsageError(`case ${ref.id} has no label map to score the INT8 model against`);
    manifest.regions.forEach((region, r) => {
      sums[r]! += computeDice(segmentation.masks[r]!, regionMask(reference.data, segmentation.case.labelMapping, region), { convention: 'brats' });
    });
    onCase(ref.id);
  }
  return Object.fromEntries(manifest.regions.map((region, r) => [region, sums[r]! / cases.length]));
}

/**
 * Quantises `bundle`'s model.onnx to {@link INT8_MODEL_FILE} and records it (`files.onnxInt8`, `quantization`).
 * @throws {UsageError} when the bundle has no ONNX model or no split, or the dataset lacks its cases.
 * @throws {QuantizationError} when INT8 costs more than {@link INT8_DICE_TOLERANCE} of WT Dice (nothing is written).
 */
export async function quantizeBundle(bundle: string, options: QuantizeOptions): Promise<QuantizeResult> {
  const manifest = await readModelManifest(bundle);
  if (manifest.files.onnx === undefined) throw new UsageError(`${bundle} has no model.onnx to quantise: run brats export ${bundle} first`);
  const split = manifest.training?.split;
  if (split === undefined || split.train.length === 0 || split.validation.length === 0) {
    throw new UsageError(`${bundle} records no training and validation cases: INT8 is calibrated on the first and checked on the second`);
  }
  const { ActivationRanges, quantizableActivations, quantizeQdq, withActivationOutputs } = await loadTrainingPackage('export --precision int8');
  const dataset = await openDataset(options.data);
  const count = Math.min(options.calibrationCases ?? 6, split.train.length);
  // Spread over the training list rather than its first few, which a sorted split would draw from one site.
  const calibrationIds = Array.from({ length: count }, (_, index) => split.train[Math.floor((index * split.train.length) / count)]!);
  const calibrationCases = casesById(dataset.cases, calibrationIds, options.data, 'training');
  const validationCases = casesById(dataset.cases, split.validation, options.data, 'validation');
  const engineOptions = options.threads === undefined ? {} : { threads: options.threads };
  const slice = manifest.model.inputShape;
  const total = calibrationCases.length + 2 * validationCases.length;
  let done = 0;
  const caseDone = (label: string): void => options.onCase?.(++done, total, label);

  const fp32 = new Uint8Array(await fs.readFile(bundlePath(bundle, manifest.files.onnx)));
  const names = quantizableActivations(fp32);
  const ranges = new ActivationRanges();
  const calibration = await openOrtModelRunner(withActivationOutputs(fp32, names), slice, engineOptions);
  const calibrating = new TimedRunner(calibration, (outputs) => {
    for (const name of names) ranges.observe(name, outputs[name]!);
  });
  try {
    for (const ref of calibrationCases) {
      // The slices the model sees at inference (crop, normalisation), without flips: flipped slices hold the same values.
      await segmentCase(ref, manifest, calibrating, { tta: false, largestComponent: false });
      caseDone(`calibrate ${ref.id}`);
    }
  } finally {
    await calibration.dispose();
  }
  const { model: int8, summary } = quantizeQdq(fp32, ranges);
  options.onStep?.(`calibrated ${names.length} activations on ${calibrating.slices} slices of ${calibrationCases.length} training cases; ${summary.convolutions} convolutions quantised`);

  const measure = async (bytes: Uint8Array, label: 'fp32' | 'int8'): Promise<{ dice: Partial<Record<RegionName, number>>; secondsPerSlice: number; version: string }> => {
    const model = await openOrtModelRunner(bytes, slice, engineOptions);
    try {
      const runner = new TimedRunner(model);
      const dice = await validationDice(validationCases, manifest, runner, (id) => caseDone(`validate ${label} ${id}`));
      return { dice, secondsPerSlice: runner.seconds / runner.slices, version: model.version };
    } finally {
      await model.dispose();
    }
  };
  const measuredFp32 = await measure(fp32, 'fp32');
  const measuredInt8 = await measure(int8, 'int8');
  const record: QuantizationRecord = {
    method: 'static QDQ: uint8 activations per tensor (MinMax over the calibration slices), int8 weights per output channel (7 bits), int32 biases',
    calibration: { data: datasetReference(bundle, options.data), cases: calibrationIds, slices: calibrating.slices },
    validation: { cases: [...split.validation], fp32: measuredFp32.dice, int8: measuredInt8.dice },
    speed: { engine: `${measuredFp32.version}${options.threads === undefined ? '' : `, ${options.threads} threads`}`, fp32SecondsPerSlice: measuredFp32.secondsPerSlice, int8SecondsPerSlice: measuredInt8.secondsPerSlice },
    createdAt: new Date().toISOString(),
  };
  const [fp32Wt, int8Wt] = [measuredFp32.dice.WT ?? 0, measuredInt8.dice.WT ?? 0];
  if (fp32Wt - int8Wt > INT8_DICE_TOLERANCE) throw new QuantizationError(bundle, fp32Wt, int8Wt);
  const file = path.join(bundle, INT8_MODEL_FILE);
  await writeFileAtomic(file, int8);
  await writeModelManifest(bundle, { ...manifest, files: { ...manifest.files, onnxInt8: INT8_MODEL_FILE }, quantization: record });
  return { file, record };
}

/** What the INT8 model costs and gains, in one line, from its record. */
export function describeQuantization(record: QuantizationRecord): string {
  const regions = Object.keys(record.validation.fp32) as RegionName[];
  const dice = regions.map((region) => `${region} ${record.validation.int8[region]!.toFixed(4)} vs ${record.validation.fp32[region]!.toFixed(4)}`).join(', ');
  const ratio = record.speed.fp32SecondsPerSlice / record.speed.int8SecondsPerSlice;
  return `validation Dice ${dice} FP32 (${record.validation.cases.length} cases); ${(record.speed.int8SecondsPerSlice * 1000).toFixed(2)} ms per slice vs ${(record.speed.fp32SecondsPerSlice * 1000).toFixed(2)} ms FP32 (${ratio.toFixed(2)}x, ${record.speed.engine})`;
}
