/**
 * The file side of folder evaluation: which prediction belongs to which labelled reference case, read one case at
 * a time. Scoring is @brats/metrics' `evaluateCases`, which takes what this yields.
 */
import type { CasePair, EvaluationProblem, LabelRegionMapping } from '@brats/metrics';
import path from 'node:path';
import { BratsError, DatasetError } from '../errors.js';
import { MAX_JSON_BYTES, readRegularFile } from '../safe-read.js';
import { readNifti } from '../nifti/read.js';
import { spatialShape } from '../volume.js';
import { findLabelMaps } from './label-maps.js';
import { caseMessage, loadCaseLabels, openDataset, type Dataset } from './dataset.js';

/** Options of {@link pairPredictionsWithReferences}. */
export interface PairPredictionsOptions {
  /** Label convention of the predictions (default: the reference dataset's). */
  predictionMapping?: LabelRegionMapping;
  /** Cap on the decompressed size of each file read, in bytes. */
  maxBytes?: number;
  /** Score only these reference cases (e.g. a validation split); default every labelled case. */
  caseIds?: readonly string[];
}

/** Predictions matched with the labelled cases of a reference dataset; nothing is read until `pairs` is iterated. */
export interface PredictionPairing {
  /** The reference dataset as opened. */
  reference: Dataset;
  /** The labelled reference cases: `pairs` yields one item for each. */
  caseCount: number;
  /**
   * One item per labelled reference case, in case-id order: the prediction and reference label maps (flat, NIfTI
   * i-j-k order, with shape and affine as read), or the problem that stopped them (no prediction, an unreadable
   * file). Each case is read when the iteration reaches it, so one case is in memory at a time; every iteration
   * reads afresh.
   */
  pairs: AsyncIterable<CasePair | EvaluationProblem>;
  /** Predictions whose id is no labelled reference case, in id order (kind `unmatched-prediction`). */
  unmatched: EvaluationProblem[];
}

/**
 * Matches the label maps in a prediction folder (`<id>.nii.gz`, `<id>_seg.nii.gz`, case folders, … as
 * `findLabelMaps` finds them) with the labelled cases of a reference dataset of any layout, by case id.
 * Problems name the folders as given, e.g. `case X: no prediction in preds/`.
 * @param predictionDir folder of predicted label maps; @param referenceDir reference dataset folder.
 * @throws {DatasetError} when either folder is missing, the reference holds no known layout, or two predictions
 *   claim one case id. Errors of single cases are not thrown but yielded as problems.
 * @example const pairing = await pairPredictionsWithReferences('preds', 'Task01_BrainTumour');
 *   const { cases, summary, problems } = await evaluateCases(pairing.pairs);
 */
export async function pairPredictionsWithReferences(
  predictionDir: string,
  referenceDir: string,
  options: PairPredictionsOptions = {},
): Promise<PredictionPairing> {
  const reference = await openDataset(referenceDir);
  const predictionMapping = options.predictionMapping ?? reference.labelMapping;
  const readOptions = options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes };
  const predictions = new Map((await findLabelMaps(predictionDir)).map((file) => [file.id, file.path]));
  const wanted = options.caseIds === undefined ? undefined : new Set(options.caseIds);
  const labelled = reference.cases.filter((ref) => ref.label !== undefined && (wanted === undefined || wanted.has(ref.id)));
  const labelledIds = new Set(labelled.map((ref) => ref.id));
  const unmatched: EvaluationProblem[] = [...predictions.keys()]
    .filter((id) => !labelledIds.has(id))
    .map((id) => ({
      caseId: id,
      kind: 'unmatched-prediction',
      message: `prediction ${id}: no labelled reference case with this id in ${referenceDir}`,
    }));

  async function* readPairs(): AsyncGenerator<CasePair | EvaluationProblem> {
    for (const ref of labelled) {
      const predictionPath = predictions.get(ref.id);
      if (predictionPath === undefined) {
        yield { caseId: ref.id, kind: 'missing-prediction', message: `case ${ref.id}: no prediction in ${predictionDir}` };
        continue;
      }
      let pair: CasePair;
      try {
        // Scoring needs the reference label map only: the case's images are never opened.
        const labels = await loadCaseLabels(ref, readOptions);
        const prediction = await readNifti(predictionPath, readOptions);
        pair = {
          caseId: ref.id,
          prediction: { values: prediction.data, shape: prediction.shape, affine: prediction.affine },
          predictionMapping,
          predictionSource: predictionPath,
          reference: { values: labels.data, shape: spatialShape(labels.shape), spacing: labels.spacing, affine: labels.affine },
          referenceMapping: reference.labelMapping,
        };
      } catch (error) {
        // One unreadable case is reported and the others are still scored; anything else is a bug and surfaces.
        if (!(error instanceof BratsError)) throw error;
        yield { caseId: ref.id, kind: 'unreadable', message: caseMessage(ref.id, error.message) };
        continue;
      }
      yield pair;
    }
  }

  return { reference, caseCount: labelled.length, pairs: { [Symbol.asyncIterator]: readPairs }, unmatched };
}

/** The file `brats predict` writes beside its label maps, saying what they hold. */
export const PREDICTIONS_SUMMARY_FILE = 'predictions.json';

/**
 * The label convention a prediction folder records in its `predictions.json` (`wt`, `brats2017`, `brats2023`,
 * `msd`), or undefined when the folder has no such file or it names none.
 * @throws {DatasetError} when predictions.json exists but cannot be read or is not JSON.
 */
export async function readPredictionLabels(predictionDir: string): Promise<string | undefined> {
  const file = path.join(predictionDir, PREDICTIONS_SUMMARY_FILE);
  const read = await readRegularFile(file, MAX_JSON_BYTES);
  if (!read.ok) {
    if (read.reason === 'file not found') return undefined;
    throw new DatasetError(file, read.reason);
  }
  let summary: unknown;
  try {
    summary = JSON.parse(read.bytes.toString('utf8'));
  } catch (error) {
    throw new DatasetError(file, `is not valid JSON (${(error as Error).message})`);
  }
  const labels = (summary as { labels?: unknown } | null)?.labels;
  return typeof labels === 'string' ? labels : undefined;
}
