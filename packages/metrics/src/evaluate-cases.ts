/**
 * Folder evaluation without the folder: the cases of a prediction set, each a pair of label maps already read
 * (by @brats/io or anything else), checked for a common grid, scored with {@link evaluateCase} and summarised.
 * What cannot be scored becomes a problem naming the case instead of stopping the run, so one bad file costs one
 * case. The CLI, the demo and the server all score through this function, so they agree.
 */
import { checkConvention } from './conventions.js';
import { ArgumentError, BratsError } from './errors.js';
import { evaluateCase, summarizeCases, type CaseEvaluation, type EvaluateCaseOptions, type EvaluationSummary } from './evaluate.js';
import type { LabelRegionMapping } from './labels.js';
import { checkLesionWiseParameters } from './lesion-wise.js';
import { checkRegions } from './regions.js';
import type { GridShape, GridSpacing, VoxelValues } from './validate.js';

/** A row of a 4x4 affine. */
export type GridAffineRow = readonly [number, number, number, number];

/** A 4x4 voxel → world (mm) matrix, rows first, as a NIfTI sform or qform gives it (@brats/io's `Affine`). */
export type GridAffine = readonly [GridAffineRow, GridAffineRow, GridAffineRow, GridAffineRow];

/** A label map's shape as its file has it: NIfTI i-j-k, or i-j-k-t for a 4D file. */
export type LabelMapShape = GridShape | readonly [number, number, number, number];

/** A predicted label map as read: flat values in NIfTI i-j-k order (i fastest), its shape and its affine. */
export interface PredictionLabelMap {
  /** Label values, flat, `shape` voxels. */
  values: VoxelValues;
  /** Shape as read; the case is scored only when it is 3D and equals the reference's. */
  shape: LabelMapShape;
  /** Voxel → world matrix; compared with the reference's when both are given. */
  affine?: GridAffine;
}

/** A reference label map as read: flat values in NIfTI i-j-k order (i fastest), its 3D grid and voxel size. */
export interface ReferenceLabelMap {
  /** Label values, flat, `shape` voxels. */
  values: VoxelValues;
  /** Grid shape `[i, j, k]`. */
  shape: GridShape;
  /** Voxel size in mm along i, j, k (distances and volumes use it). */
  spacing: GridSpacing;
  /** Voxel → world matrix; compared with the prediction's when both are given. */
  affine?: GridAffine;
}

/** One case to score: a predicted and a reference label map, each with its label convention. */
export interface CasePair {
  /** Case identifier, carried into the evaluation and into problems. */
  caseId: string;
  prediction: PredictionLabelMap;
  /** Label convention of the prediction (e.g. MSD_LABELS, or WHOLE_TUMOUR_LABELS for 0/1 masks). */
  predictionMapping: LabelRegionMapping;
  /** Where the prediction came from (e.g. its file path), named in problems; default `prediction`. */
  predictionSource?: string;
  reference: ReferenceLabelMap;
  /** Label convention of the reference (e.g. BRATS2017_LABELS). */
  referenceMapping: LabelRegionMapping;
}

/** Why a case was not scored. */
export type EvaluationProblemKind =
  /** A labelled reference case has no prediction. */
  | 'missing-prediction'
  /** A prediction has no labelled reference case. */
  | 'unmatched-prediction'
  /** A file of the case could not be read. */
  | 'unreadable'
  /** The prediction's shape differs from the reference's. */
  | 'shape-mismatch'
  /** The prediction's affine differs from the reference's: the two are not on the same grid. */
  | 'affine-mismatch'
  /** A label map holds values its convention does not know, or does not fill its shape. */
  | 'invalid-labels';

/** A case that was not scored, and the one line that says why (`case <id>: …`). */
export interface EvaluationProblem {
  /** The case (or, for `unmatched-prediction`, the prediction's id). */
  caseId: string;
  kind: EvaluationProblemKind;
  /** The line shown to a user and written to the JSON `problems` list. */
  message: string;
}

/** Options of {@link evaluateCases}: those of {@link evaluateCase}, plus the affine tolerance. */
export interface EvaluateCasesOptions extends EvaluateCaseOptions {
  /** Largest difference (mm) allowed in any affine entry for two label maps to share a grid (default 1e-3). */
  affineTolerance?: number;
}

/** Called after each item of the input, scored or not: `done` items so far, the last one's case id. */
export type EvaluationProgress = (done: number, caseId: string) => void;

/** The outcome of {@link evaluateCases}. */
export interface EvaluationResult {
  /** Evaluations of the scored cases, in input order. */
  cases: CaseEvaluation[];
  /** {@link summarizeCases} over `cases`. */
  summary: EvaluationSummary;
  /** The items that were not scored, in input order. */
  problems: EvaluationProblem[];
}

/** The affine tolerance used when none is given, in mm (the one @brats/io uses between a case's files). */
export const DEFAULT_AFFINE_TOLERANCE = 1e-3;

/** True when two checked 4x4 affines agree within `tolerance` (mm) in every entry (a NaN entry never agrees). */
function affinesAgree(a: GridAffine, b: GridAffine, tolerance: number): boolean {
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) if (!(Math.abs(a[r]![c]! - b[r]![c]!) <= tolerance)) return false;
  }
  return true;
}

function checkAffine(functionName: string, argument: string, affine: unknown): void {
  const valid =
    Array.isArray(affine) &&
    affine.length === 4 &&
    affine.every((row: unknown) => Array.isArray(row) && row.length === 4 && row.every((value: unknown) => typeof value === 'number'));
  if (!valid) throw new ArgumentError(functionName, argument, 'must be a 4x4 affine (four rows of four numbers)');
}

function checkTolerance(functionName: string, argument: string, tolerance: unknown): number {
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new ArgumentError(functionName, argument, `must be a finite number ≥ 0 (mm), found ${String(tolerance)}`);
  }
  return tolerance;
}

function isIterable(value: unknown): value is AsyncIterable<unknown> | Iterable<unknown> {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  const candidate = value as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown };
  return typeof candidate[Symbol.asyncIterator] === 'function' || typeof candidate[Symbol.iterator] === 'function';
}

/** Scores one pair, or says why it cannot be scored. */
function scorePair(pair: CasePair, options: EvaluateCaseOptions, tolerance: number): CaseEvaluation | EvaluationProblem {
  const { caseId, prediction, reference } = pair;
  const source = pair.predictionSource ?? 'prediction';
  if (prediction.shape.length !== 3 || prediction.shape.some((n, i) => n !== reference.shape[i])) {
    return {
      caseId,
      kind: 'shape-mismatch',
      message: `case ${caseId}: ${source}: shape [${prediction.shape.join(', ')}] differs from the reference [${reference.shape.join(', ')}]`,
    };
  }
  if (prediction.affine !== undefined && reference.affine !== undefined) {
    checkAffine('evaluateCases', `pairs[${caseId}].prediction.affine`, prediction.affine);
    checkAffine('evaluateCases', `pairs[${caseId}].reference.affine`, reference.affine);
    if (!affinesAgree(prediction.affine, reference.affine, tolerance)) {
      return {
        caseId,
        kind: 'affine-mismatch',
        message: `case ${caseId}: ${source}: affine differs from the reference's (not on the same grid)`,
      };
    }
  }
  try {
    return evaluateCase(
      {
        caseId,
        prediction: prediction.values,
        predictionMapping: pair.predictionMapping,
        reference: reference.values,
        referenceMapping: pair.referenceMapping,
        shape: reference.shape,
        spacing: reference.spacing,
      },
      options,
    );
  } catch (error) {
    // A label map that its convention does not describe is a fault of that case's data, not of the run.
    if (!(error instanceof BratsError)) throw error;
    return { caseId, kind: 'invalid-labels', message: `case ${caseId}: ${error.message}` };
  }
}

function isProblem(item: CasePair | EvaluationProblem): item is EvaluationProblem {
  return !('prediction' in item) && typeof (item as Partial<EvaluationProblem>).message === 'string';
}

/**
 * Scores a set of cases: each pair whose prediction has the reference's 3D shape and (when both are given) its
 * affine is evaluated with {@link evaluateCase}; a pair on another grid, a label map that its convention does not
 * describe, and every problem item passed in (a missing or unreadable file found while loading) become problems.
 * Items are consumed one at a time, so a loader that reads lazily holds one case in memory.
 * @param pairs the cases, in order: loaded pairs (label maps flat in NIfTI i-j-k order) or problems.
 * @param options convention, regions and affine tolerance; @param onProgress called after each item.
 * @throws {ArgumentError} for bad options, an input that is not iterable, an item that is neither a pair nor a
 *   problem, or a malformed affine. Errors from the iterable itself are not caught.
 * @example const { cases, summary, problems } = await evaluateCases(pairs, { convention: 'brats' });
 */
export async function evaluateCases(
  pairs: AsyncIterable<CasePair | EvaluationProblem> | Iterable<CasePair | EvaluationProblem>,
  options: EvaluateCasesOptions = {},
  onProgress?: EvaluationProgress,
): Promise<EvaluationResult> {
  const name = 'evaluateCases';
  if (!isIterable(pairs)) throw new ArgumentError(name, 'pairs', 'must be an iterable or async iterable of case pairs');
  if (options === null || typeof options !== 'object') throw new ArgumentError(name, 'options', 'must be an object');
  // Options are checked once here: inside the loop a bad option would turn into one problem per case.
  const caseOptions: EvaluateCaseOptions = {
    convention: checkConvention(name, options.convention),
    regions: checkRegions(name, options.regions),
  };
  if (options.lesionWise !== undefined) caseOptions.lesionWise = checkLesionWiseParameters(name, 'options.lesionWise', options.lesionWise);
  const tolerance = checkTolerance(name, 'options.affineTolerance', options.affineTolerance ?? DEFAULT_AFFINE_TOLERANCE);
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new ArgumentError(name, 'onProgress', 'must be a function');

  const cases: CaseEvaluation[] = [];
  const problems: EvaluationProblem[] = [];
  let done = 0;
  for await (const item of pairs) {
    if (item === null || typeof item !== 'object' || typeof item.caseId !== 'string') {
      throw new ArgumentError(name, `pairs[${done}]`, 'must be a CasePair or an EvaluationProblem with a string caseId');
    }
    if (isProblem(item)) {
      problems.push(item);
    } else if ('prediction' in item && item.prediction !== null && typeof item.prediction === 'object' && item.reference !== null && typeof item.reference === 'object') {
      const outcome = scorePair(item, caseOptions, tolerance);
      if ('regions' in outcome) cases.push(outcome);
      else problems.push(outcome);
    } else {
      throw new ArgumentError(name, `pairs[${done}]`, 'must have a prediction and a reference, or a problem message');
    }
    done++;
    onProgress?.(done, item.caseId);
  }
  return { cases, summary: summarizeCases(cases), problems };
}
