/**
 * Empty-mask conventions: what a metric returns when the reference or the prediction has no foreground.
 *
 * - `monai`: an undefined value is NaN (and counted as such by accumulators and summaries). Dice and IoU are
 *   NaN when the reference is empty (MONAI's `ignore_empty=True`); sensitivity, specificity and precision are
 *   NaN when their denominator is 0; surface distances are NaN when either mask is empty.
 * - `brats` (challenge style): both empty is a perfect score (Dice, IoU 1; HD95, Hausdorff, ASSD 0); one empty
 *   is the worst score (Dice, IoU 0; distances = the image diagonal in mm). A ratio whose denominator is 0 is 1
 *   when prediction and reference are identical, else 0.
 */
import { ArgumentError } from './errors.js';
import type { GridShape, GridSpacing } from './validate.js';

/** How metrics treat empty masks; see the module comment and the package README. */
export type EmptyConvention = 'monai' | 'brats';

/** Every empty-mask convention. */
export const EMPTY_CONVENTIONS: readonly EmptyConvention[] = ['monai', 'brats'];

/** The convention used when none is given. */
export const DEFAULT_EMPTY_CONVENTION: EmptyConvention = 'monai';

/** Checks a convention name (undefined gives the default). */
export function checkConvention(functionName: string, convention: unknown): EmptyConvention {
  if (convention === undefined) return DEFAULT_EMPTY_CONVENTION;
  if (typeof convention !== 'string' || !(EMPTY_CONVENTIONS as readonly string[]).includes(convention)) {
    throw new ArgumentError(
      functionName,
      'options.convention',
      `is '${String(convention)}', which is unknown; known: ${EMPTY_CONVENTIONS.join(', ')}`,
    );
  }
  return convention as EmptyConvention;
}

/**
 * Length in mm of the diagonal of the image box, √Σ(n·s)² over i, j, k (373.13 mm for 240x240x155 at 1 mm,
 * the value BraTS assigns to HD95 when exactly one mask is empty).
 * @param shape `[i, j, k]` voxel counts; @param spacing voxel size in mm along i, j, k.
 */
export function imageDiagonalMm(shape: GridShape, spacing: GridSpacing): number {
  const x = shape[0] * spacing[0];
  const y = shape[1] * spacing[1];
  const z = shape[2] * spacing[2];
  return Math.sqrt(x * x + y * y + z * z);
}
