/**
 * Lesion-wise Dice and HD95, the scores that rank BraTS since 2023. Each reference lesion is scored on its own against
 * the predicted components that reach it, and every predicted component that reaches no lesion counts as a false
 * positive, so a missed small lesion or a stray blob weighs as much as a large tumour does. The definition follows the
 * BraTS 2023 lesion-wise scorer:
 * - reference lesions are the 26-connected components of the reference region after merging those that come within
 *   `dilation` steps of each other (a binary dilation with the 18-connected structuring element, repeated);
 * - a predicted 26-connected component matches a lesion when it meets that lesion's dilation;
 * - a lesion's Dice and HD95 compare it with the union of its matched components; a lesion with none scores Dice 0 and
 *   HD95 `penaltyMm`;
 * - lesions of `minimumVolumeMm3` or less are left out of the score (they still claim the components that reach them);
 * - Dice = Σ lesion Dice / (lesions + false positives), HD95 = (Σ lesion HD95 + false positives · penalty) / (lesions +
 *   false positives); with neither (both masks empty, or only lesions below the limit and no stray component), Dice 1
 *   and HD95 0.
 * HD95 is this package's (MONAI's surface definition, {@link computeHd95}); the challenge's scorer measures surfaces with
 * DeepMind's surface-distance package, so a lesion's HD95 can differ from its figure, while the Dice and the lesion
 * counts follow the definition above exactly.
 */
import { ArgumentError } from './errors.js';
import { labelComponents } from './components.js';
import { DEFAULT_THRESHOLD } from './overlap.js';
import { cropUnion, hausdorffFromDistances, surfaceDistances } from './surface.js';
import {
  checkLengthMatchesShape,
  checkShape,
  checkSpacing,
  checkThreshold,
  checkValues,
  type GridShape,
  type GridSpacing,
  type VoxelValues,
} from './validate.js';

/** How lesions are told apart and which are scored. */
export interface LesionWiseParameters {
  /** Iterations of the 18-connected dilation that merges nearby reference lesions and finds matches. */
  dilation: number;
  /** Reference lesions of this volume (mm³) or less are left out of the score. */
  minimumVolumeMm3: number;
  /** HD95 (mm) of a missed lesion and of each false-positive component. */
  penaltyMm: number;
}

/** The BraTS 2023 challenges' parameters (the penalty is 374 mm in all of them). */
export const LESION_WISE_CHALLENGES = {
  'BraTS-GLI': { dilation: 3, minimumVolumeMm3: 50, penaltyMm: 374 },
  'BraTS-SSA': { dilation: 3, minimumVolumeMm3: 50, penaltyMm: 374 },
  'BraTS-PED': { dilation: 3, minimumVolumeMm3: 50, penaltyMm: 374 },
  'BraTS-MEN': { dilation: 1, minimumVolumeMm3: 50, penaltyMm: 374 },
  'BraTS-MET': { dilation: 1, minimumVolumeMm3: 2, penaltyMm: 374 },
} as const satisfies Record<string, LesionWiseParameters>;

/** A challenge of {@link LESION_WISE_CHALLENGES}. */
export type LesionWiseChallenge = keyof typeof LESION_WISE_CHALLENGES;

/** The adult glioma challenge's parameters (BraTS-GLI), the default. */
export const DEFAULT_LESION_WISE: LesionWiseParameters = LESION_WISE_CHALLENGES['BraTS-GLI'];

/** Options of {@link computeLesionWise}: the grid, and any parameter to change from {@link DEFAULT_LESION_WISE}. */
export interface LesionWiseOptions extends Partial<LesionWiseParameters> {
  /** Grid shape `[i, j, k]`, NIfTI order, i fastest. */
  shape: GridShape;
  /** Voxel size in mm along i, j, k (default [1, 1, 1]). */
  spacing?: GridSpacing;
  /** A voxel is foreground when its value is ≥ threshold (default 0.5). */
  threshold?: number;
}

/** One reference lesion (after merging by dilation). */
export interface LesionScore {
  /** Its volume in mm³. */
  volumeMm3: number;
  /** Dice against the union of the predicted components that reach it (0 when none does). */
  dice: number;
  /** HD95 (mm) against that union (`penaltyMm` when none does). */
  hd95: number;
  /** How many predicted components reach it. */
  matchedComponents: number;
  /** Above `minimumVolumeMm3`, so part of the score. */
  counted: boolean;
}

/** Lesion-wise scores of one region of one case. */
export interface LesionWiseResult {
  dice: number;
  hd95: number;
  /** Counted reference lesions that some predicted component reaches. */
  truePositives: number;
  /** Predicted components that reach no reference lesion. */
  falsePositives: number;
  /** Counted reference lesions that no predicted component reaches. */
  falseNegatives: number;
  /** Every reference lesion, counted or not, in the order of its first voxel (i fastest). */
  lesions: LesionScore[];
  /** The parameters used. */
  parameters: LesionWiseParameters;
}

/** Offsets (di, dj, dk) of the 18-connected structuring element: the cube's centre, faces and edges, not its corners. */
const EIGHTEEN: readonly (readonly [number, number, number])[] = (() => {
  const offsets: [number, number, number][] = [];
  for (let dk = -1; dk <= 1; dk++) for (let dj = -1; dj <= 1; dj++) for (let di = -1; di <= 1; di++) {
    if (Math.abs(di) + Math.abs(dj) + Math.abs(dk) <= 2) offsets.push([di, dj, dk]);
  }
  return offsets;
})();

/** Binary dilation of a 0/1 mask by the 18-connected element, `iterations` times; outside the grid is background. */
function dilate(mask: Uint8Array, shape: GridShape, iterations: number): Uint8Array {
  const [ni, nj, nk] = shape;
  let current = mask;
  for (let step = 0; step < iterations; step++) {
    const next = new Uint8Array(current.length);
    for (let k = 0, v = 0; k < nk; k++) {
      for (let j = 0; j < nj; j++) {
        for (let i = 0; i < ni; i++, v++) {
          if (current[v] === 0) continue;
          for (const [di, dj, dk] of EIGHTEEN) {
            const a = i + di;
            const b = j + dj;
            const c = k + dk;
            if (a >= 0 && a < ni && b >= 0 && b < nj && c >= 0 && c < nk) next[a + ni * (b + nj * c)] = 1;
          }
        }
      }
    }
    current = next;
  }
  return current;
}

function checkParameter(functionName: string, argument: string, value: unknown, fallback: number, integer: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new ArgumentError(functionName, argument, `must be ${integer ? 'an integer' : 'a finite number'} ≥ 0, found ${String(value)}`);
  }
  return value;
}

/** The parameters of `given` (an object of some of them), the others from {@link DEFAULT_LESION_WISE}; checked. */
export function checkLesionWiseParameters(functionName: string, argument: string, given: Partial<LesionWiseParameters>): LesionWiseParameters {
  if (given === null || typeof given !== 'object') throw new ArgumentError(functionName, argument, 'must be an object of lesion-wise parameters');
  return {
    dilation: checkParameter(functionName, `${argument}.dilation`, given.dilation, DEFAULT_LESION_WISE.dilation, true),
    minimumVolumeMm3: checkParameter(functionName, `${argument}.minimumVolumeMm3`, given.minimumVolumeMm3, DEFAULT_LESION_WISE.minimumVolumeMm3, false),
    penaltyMm: checkParameter(functionName, `${argument}.penaltyMm`, given.penaltyMm, DEFAULT_LESION_WISE.penaltyMm, false),
  };
}

/** Per label 1..count, the lowest and highest i, j, k of the voxels of `labels` (in `shape`) where `counts(b)` holds. */
function boxesOf(labels: Int32Array, count: number, shape: GridShape, counts: (b: number) => boolean): { low: Int32Array; high: Int32Array } {
  const low = new Int32Array((count + 1) * 3).fill(2 ** 30);
  const high = new Int32Array((count + 1) * 3).fill(-1);
  const [ni, nj, nk] = shape;
  for (let k = 0, b = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++, b++) {
        const label = labels[b]!;
        if (label === 0 || !counts(b)) continue;
        const at = label * 3;
        if (i < low[at]!) low[at] = i;
        if (i > high[at]!) high[at] = i;
        if (j < low[at + 1]!) low[at + 1] = j;
        if (j > high[at + 1]!) high[at + 1] = j;
        if (k < low[at + 2]!) low[at + 2] = k;
        if (k > high[at + 2]!) high[at + 2] = k;
      }
    }
  }
  return { low, high };
}

/**
 * Lesion-wise Dice and HD95 of a predicted mask against a reference mask (one region of one case), as BraTS has ranked
 * since 2023: see the module's description. Masks are flat arrays in NIfTI i-j-k order of `options.shape` voxels,
 * binarised at `options.threshold`; volumes and distances use `options.spacing`.
 * @throws {ArgumentError} for a bad array, shape, spacing, threshold or parameter.
 * @throws {ShapeMismatchError} when a mask's length differs from the shape's voxel count.
 * @example computeLesionWise(predictedEt, referenceEt, { shape: [240, 240, 155] }).dice
 */
export function computeLesionWise(prediction: VoxelValues, reference: VoxelValues, options: LesionWiseOptions): LesionWiseResult {
  const name = 'computeLesionWise';
  if (options === null || typeof options !== 'object') throw new ArgumentError(name, 'options', 'must be an object with at least { shape }');
  checkValues(name, 'prediction', prediction);
  checkValues(name, 'reference', reference);
  checkShape(name, 'options.shape', options.shape);
  const spacing = checkSpacing(name, 'options.spacing', options.spacing ?? [1, 1, 1]);
  checkLengthMatchesShape(name, 'prediction', prediction, options.shape);
  checkLengthMatchesShape(name, 'reference', reference, options.shape);
  const threshold = checkThreshold(name, options.threshold ?? DEFAULT_THRESHOLD);
  const parameters = checkLesionWiseParameters(name, 'options', options);
  return lesionWiseScores(prediction, reference, options.shape, spacing, threshold, parameters);
}

/** Unchecked {@link computeLesionWise}, used inside the package. */
export function lesionWiseScores(
  prediction: VoxelValues,
  reference: VoxelValues,
  shape: GridShape,
  spacing: GridSpacing,
  threshold: number,
  parameters: LesionWiseParameters,
): LesionWiseResult {
  // Everything happens in the box of both masks, widened by the dilation (and by 1, so that an axis of the grid
  // longer than 1 stays longer than 1 in the box, as the surface definition needs).
  const cropped = cropUnion(prediction, reference, shape, threshold, Math.max(parameters.dilation, 1));
  if (cropped === undefined) return { dice: 1, hd95: 0, truePositives: 0, falsePositives: 0, falseNegatives: 0, lesions: [], parameters };
  const { prediction: predicted, reference: truth, shape: box } = cropped;
  const [bi, bj] = box;
  const size = predicted.length;

  // A lesion is a component of the dilated reference; its voxels are the reference voxels inside that component, and
  // the component itself is the lesion's own dilation (every voxel of it lies within `dilation` steps of one of them).
  const lesionLabels = labelComponents(dilate(truth, box, parameters.dilation), box);
  const lesionCount = lesionLabels.sizes.length - 1;
  const components = labelComponents(predicted, box);
  const matched = Array.from({ length: lesionCount + 1 }, () => new Set<number>());
  const claimed = new Uint8Array(components.sizes.length);
  const lesionSizes = new Float64Array(lesionCount + 1);
  const intersections = new Float64Array(lesionCount + 1);
  for (let b = 0; b < size; b++) {
    const lesion = lesionLabels.labels[b]!;
    if (lesion === 0) continue;
    const component = components.labels[b]!;
    if (component !== 0) {
      matched[lesion]!.add(component);
      claimed[component] = 1;
    }
    if (truth[b] === 1) {
      lesionSizes[lesion]!++;
      if (predicted[b] === 1) intersections[lesion]!++;
    }
  }

  // The box of each lesion and of each predicted component, so that a lesion's HD95 is measured in the box of it and
  // its matches alone: a reference of a thousand specks then costs a thousand small boxes, not a thousand big ones.
  const lesionBoxes = boxesOf(lesionLabels.labels, lesionCount, box, (b) => truth[b] === 1);
  const componentBoxes = boxesOf(components.labels, components.sizes.length - 1, box, () => true);
  const voxelMm3 = spacing[0] * spacing[1] * spacing[2];
  const lesions: LesionScore[] = [];
  for (let lesion = 1; lesion <= lesionCount; lesion++) {
    const reached = matched[lesion]!;
    let predictedSize = 0;
    for (const component of reached) predictedSize += components.sizes[component]!;
    const volumeMm3 = lesionSizes[lesion]! * voxelMm3;
    let hd95 = parameters.penaltyMm;
    if (reached.size > 0) {
      // The union of the boxes, widened by a voxel inside the box (an axis longer than 1 stays so, as above).
      const low = lesionBoxes.low.slice(lesion * 3, lesion * 3 + 3);
      const high = lesionBoxes.high.slice(lesion * 3, lesion * 3 + 3);
      for (const component of reached) {
        for (let axis = 0; axis < 3; axis++) {
          low[axis] = Math.min(low[axis]!, componentBoxes.low[component * 3 + axis]!);
          high[axis] = Math.max(high[axis]!, componentBoxes.high[component * 3 + axis]!);
        }
      }
      for (let axis = 0; axis < 3; axis++) {
        low[axis] = Math.max(0, low[axis]! - 1);
        high[axis] = Math.min(box[axis]! - 1, high[axis]! + 1);
      }
      const sub: GridShape = [high[0]! - low[0]! + 1, high[1]! - low[1]! + 1, high[2]! - low[2]! + 1];
      const lesionMask = new Uint8Array(sub[0] * sub[1] * sub[2]);
      const reachedMask = new Uint8Array(lesionMask.length);
      for (let k = 0, c = 0; k < sub[2]; k++) {
        for (let j = 0; j < sub[1]; j++) {
          const row = low[0]! + bi * (low[1]! + j + bj * (low[2]! + k));
          for (let i = 0; i < sub[0]; i++, c++) {
            const b = row + i;
            if (truth[b] === 1 && lesionLabels.labels[b] === lesion) lesionMask[c] = 1;
            const component = components.labels[b]!;
            if (component !== 0 && reached.has(component)) reachedMask[c] = 1;
          }
        }
      }
      hd95 = hausdorffFromDistances(surfaceDistances(reachedMask, lesionMask, sub, spacing, 0.5), 95, 'brats', sub, spacing);
    }
    lesions.push({
      volumeMm3,
      dice: (2 * intersections[lesion]!) / (predictedSize + lesionSizes[lesion]!),
      hd95,
      matchedComponents: reached.size,
      counted: volumeMm3 > parameters.minimumVolumeMm3,
    });
  }
  let falsePositives = 0;
  for (let component = 1; component < components.sizes.length; component++) if (claimed[component] === 0) falsePositives++;
  const counted = lesions.filter((lesion) => lesion.counted);
  const truePositives = counted.filter((lesion) => lesion.matchedComponents > 0).length;
  const denominator = counted.length + falsePositives;
  const dice = denominator === 0 ? 1 : counted.reduce((sum, lesion) => sum + lesion.dice, 0) / denominator;
  const hd95 = denominator === 0 ? 0 : (counted.reduce((sum, lesion) => sum + lesion.hd95, 0) + falsePositives * parameters.penaltyMm) / denominator;
  return { dice, hd95, truePositives, falsePositives, falseNegatives: counted.length - truePositives, lesions, parameters };
}
