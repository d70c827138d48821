/**
 * Argument checks shared by every public function of @brats/metrics, so each error names the function and
 * the argument it rejects.
 */
import { ArgumentError, ShapeMismatchError } from './errors.js';

/** A 3D grid shape `[i, j, k]` in NIfTI order (i varies fastest in memory); a 2D slice is `[i, j, 1]`. */
export type GridShape = readonly [number, number, number];

/** Voxel size in mm along i, j, k. */
export type GridSpacing = readonly [number, number, number];

/** Any flat array of voxel values: a typed array or a plain number array. */
export type VoxelValues = ArrayLike<number>;

/** Checks a shape tuple and returns its voxel count. */
export function checkShape(functionName: string, argument: string, shape: unknown): number {
  if (!Array.isArray(shape) || shape.length !== 3) {
    throw new ArgumentError(functionName, argument, 'must be a tuple [i, j, k] of three positive integers');
  }
  let count = 1;
  for (const n of shape as unknown[]) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
      throw new ArgumentError(functionName, argument, `must hold three positive integers, found ${String(n)}`);
    }
    count *= n;
  }
  return count;
}

/** Checks a spacing tuple (three finite positive mm values). */
export function checkSpacing(functionName: string, argument: string, spacing: unknown): GridSpacing {
  if (!Array.isArray(spacing) || spacing.length !== 3) {
    throw new ArgumentError(functionName, argument, 'must be a tuple [i, j, k] of three positive voxel sizes in mm');
  }
  for (const s of spacing as unknown[]) {
    if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) {
      throw new ArgumentError(functionName, argument, `must hold three finite positive voxel sizes, found ${String(s)}`);
    }
  }
  return spacing as unknown as GridSpacing;
}

/** Checks that `values` is array-like with a numeric length. */
export function checkValues(functionName: string, argument: string, values: unknown): VoxelValues {
  if (
    values === null ||
    typeof values !== 'object' ||
    typeof (values as { length?: unknown }).length !== 'number'
  ) {
    throw new ArgumentError(functionName, argument, 'must be a typed array or an array of numbers');
  }
  return values as VoxelValues;
}

/** Checks that two flat arrays have the same length. */
export function checkSameLength(functionName: string, argument: string, expected: number, actual: number): void {
  if (expected !== actual) {
    throw new ShapeMismatchError(`${functionName}(): argument '${argument}' length`, [expected], [actual]);
  }
}

/** Checks a flat array's length against a shape. */
export function checkLengthMatchesShape(
  functionName: string,
  argument: string,
  values: VoxelValues,
  shape: GridShape,
): void {
  if (values.length !== shape[0] * shape[1] * shape[2]) {
    throw new ShapeMismatchError(
      `${functionName}(): argument '${argument}' length must equal the voxel count of shape [${shape.join(', ')}]`,
      [shape[0] * shape[1] * shape[2]],
      [values.length],
    );
  }
}

/** Checks a binarisation threshold (finite number). */
export function checkThreshold(functionName: string, threshold: unknown): number {
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
    throw new ArgumentError(functionName, 'options.threshold', `must be a finite number, found ${String(threshold)}`);
  }
  return threshold;
}
