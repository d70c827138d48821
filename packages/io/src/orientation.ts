/**
 * Voxel orientation: which way each voxel axis of a scan points in the patient (the NIfTI world is RAS+: x toward the
 * right, y anterior, z superior), and exact reorientation between two orientations by permuting and reversing axes
 * (no interpolation). A 2D model learnt its slices in one orientation (BraTS and the Decathlon store LPS: i toward the
 * left, j posterior, k superior, so each k slice is axial); a scan stored otherwise (RAS after a reorientation, or a
 * sagittal acquisition whose k runs left to right) must be turned to it first, or the model sees slices it never saw.
 * Written here because it is a few lines of index arithmetic on our own volume type, browser-safe, where the Python
 * tools that do it (nibabel's `io_orientation`, MONAI's `Orientation`) are not available to a Node or browser caller.
 */
import { ArgumentError, DatasetError } from './errors.js';
import type { CanonicalCase } from './layouts/case.js';
import { spacingFromAffine, type Affine, type Spacing, type Volume, type VoxelArray } from './volume.js';

/** The orientation the shipped models learnt, and that of a bundle that records none: BraTS and the Decathlon's. */
export const DEFAULT_MODEL_ORIENTATION = 'LPS';

/** The letter of the positive and the negative direction of each world axis (x, y, z). */
const TOWARD: readonly (readonly [string, string])[] = [
  ['R', 'L'],
  ['A', 'P'],
  ['S', 'I'],
];
const WORDS: Readonly<Record<string, string>> = { R: 'right', L: 'left', A: 'anterior', P: 'posterior', S: 'superior', I: 'inferior' };

/** The world axis (0 x, 1 y, 2 z) and direction (+1 or -1) of one orientation letter, or undefined. */
function letterAxis(letter: string): { axis: number; sign: 1 | -1 } | undefined {
  for (let axis = 0; axis < 3; axis++) {
    if (TOWARD[axis]![0] === letter) return { axis, sign: 1 };
    if (TOWARD[axis]![1] === letter) return { axis, sign: -1 };
  }
  return undefined;
}

/** Whether `text` is three orientation letters, one for each world axis (e.g. `LPS`, `RAS`, `PIR`). */
export function isOrientation(text: unknown): text is string {
  if (typeof text !== 'string' || text.length !== 3) return false;
  const axes = [...text].map((letter) => letterAxis(letter)?.axis);
  return axes.every((axis) => axis !== undefined) && new Set(axes).size === 3;
}

/** `LPS (voxel axes i, j, k toward left, posterior, superior)`: an orientation as a person reads it. */
export function describeOrientation(codes: string): string {
  return `${codes} (voxel axes i, j, k toward ${[...codes].map((letter) => WORDS[letter]).join(', ')})`;
}

/**
 * The anatomical direction (`left`, `inferior`, …) toward which voxel axis `axis` (0 i, 1 j, 2 k) of a grid in
 * orientation `codes` runs at its `low` end (index 0) or its `high` end: `axisEndDirection('LPS', 2, 'low')` is
 * `inferior`. It names a face of a grid the same way whatever order its axes are stored in.
 * @throws {ArgumentError} when `codes` is not an orientation.
 */
export function axisEndDirection(codes: string, axis: 0 | 1 | 2, end: 'low' | 'high'): string {
  if (!isOrientation(codes)) throw new ArgumentError('axisEndDirection', 'codes', `must be three orientation letters, one per world axis (e.g. LPS, RAS), found ${JSON.stringify(codes)}`);
  const { axis: world, sign } = letterAxis(codes[axis]!)!;
  const towardHigh = sign === 1 ? 0 : 1;
  return WORDS[TOWARD[world]![end === 'high' ? towardHigh : 1 - towardHigh]!]!;
}

/**
 * The orientation of a voxel-to-world affine: for each voxel axis, the world direction it runs closest to, each world
 * axis taken once (the largest remaining component first, as nibabel's `aff2axcodes` does for a non-degenerate
 * affine). An oblique scan gets the orientation nearest to it.
 * @throws {ArgumentError} when a voxel axis has no direction (a zero or non-finite column).
 */
export function orientationOf(affine: Affine): string {
  const problem = directionProblem(affine);
  if (problem !== undefined) throw new ArgumentError('orientationOf', 'affine', problem);
  const columns = [0, 1, 2].map((v) => {
    const column = [affine[0][v]!, affine[1][v]!, affine[2][v]!];
    const length = Math.hypot(...column);
    return column.map((value) => value / length);
  });
  const letters = ['', '', ''];
  const usedVoxel = new Set<number>();
  const usedWorld = new Set<number>();
  for (let round = 0; round < 3; round++) {
    let best = { v: -1, w: -1, size: -1 };
    for (let v = 0; v < 3; v++) {
      if (usedVoxel.has(v)) continue;
      for (let w = 0; w < 3; w++) {
        const size = usedWorld.has(w) ? -1 : Math.abs(columns[v]![w]!);
        if (size > best.size) best = { v, w, size };
      }
    }
    usedVoxel.add(best.v);
    usedWorld.add(best.w);
    letters[best.v] = TOWARD[best.w]![columns[best.v]![best.w]! >= 0 ? 0 : 1]!;
  }
  return letters.join('');
}

/** Why an affine has no orientation (a voxel axis with a zero or non-finite direction), or undefined when it has one. */
function directionProblem(affine: Affine): string | undefined {
  for (let v = 0; v < 3; v++) {
    const column = [affine[0][v]!, affine[1][v]!, affine[2][v]!];
    const length = Math.hypot(...column);
    if (!(length > 0) || !Number.isFinite(length)) return `voxel axis ${'ijk'[v]} has no direction (column ${v} is [${column.join(', ')}])`;
  }
  return undefined;
}

/** How a scan's voxel grid becomes a grid in another orientation, and back. */
export interface Reorientation {
  /** The scan's orientation. */
  from: string;
  /** The orientation of the reoriented grid. */
  to: string;
  /** True when the two are the same: every array comes back as it is. */
  identity: boolean;
  /** For each axis of the reoriented grid: the scan's axis it is, and whether it runs the other way. */
  axes: readonly { source: number; reversed: boolean }[];
  /** The scan's shape [i, j, k], and the reoriented grid's. */
  sourceShape: readonly [number, number, number];
  shape: readonly [number, number, number];
  /** The reoriented grid's voxel-to-world affine (the same world positions) and voxel size. */
  affine: Affine;
  spacing: Spacing;
  /** An i-j-k array on the scan's grid, on the reoriented grid (a new array; the same array when `identity`). */
  toTarget<T extends VoxelArray>(data: T): T;
  /** An i-j-k array on the reoriented grid, back on the scan's grid (a new array; the same array when `identity`). */
  toSource<T extends VoxelArray>(data: T): T;
}

/**
 * Plans the reorientation of a grid of `shape` and `affine` to the orientation `to`.
 * @throws {ArgumentError} when `to` is not an orientation or the affine has no orientation.
 */
export function planReorientation(shape: readonly number[], affine: Affine, to: string, spacing?: Spacing): Reorientation {
  if (!isOrientation(to)) throw new ArgumentError('planReorientation', 'to', `must be three orientation letters, one per world axis (e.g. LPS, RAS), found ${JSON.stringify(to)}`);
  const from = orientationOf(affine);
  const sourceShape = [shape[0]!, shape[1]!, shape[2]!] as const;
  const sourceSpacing = spacing ?? spacingFromAffine(affine);
  const axes = [...to].map((letter) => {
    const wanted = letterAxis(letter)!;
    const source = [...from].findIndex((code) => letterAxis(code)!.axis === wanted.axis);
    return { source, reversed: letterAxis(from[source]!)!.sign !== wanted.sign };
  });
  const targetShape = axes.map(({ source }) => sourceShape[source]!) as unknown as [number, number, number];
  // World = A · source voxel, source voxel s = reversed ? n_s - 1 - t : t: the columns move and change sign, and each
  // reversed axis moves the origin to the scan's far end along it.
  const rows = [0, 1, 2].map((r) => {
    const row = affine[r]!;
    const offset = axes.reduce((sum, { source, reversed }) => sum + (reversed ? row[source]! * (sourceShape[source]! - 1) : 0), row[3]);
    // 0 - x, not -x: a zero stays +0 (an affine with -0 would differ from its equal in tests and in JSON).
    return [...axes.map(({ source, reversed }) => (reversed ? 0 - row[source]! : row[source]!)), offset] as [number, number, number, number];
  });
  const targetAffine: Affine = [rows[0]!, rows[1]!, rows[2]!, [0, 0, 0, 1]];
  const identity = axes.every(({ source, reversed }, t) => source === t && !reversed);
  const strides = [1, sourceShape[0], sourceShape[0] * sourceShape[1]];
  // Source index = start + a·step[0] + b·step[1] + c·step[2] for target voxel (a, b, c).
  const steps = axes.map(({ source, reversed }) => (reversed ? -strides[source]! : strides[source]!));
  const start = axes.reduce((sum, { source, reversed }) => sum + (reversed ? (sourceShape[source]! - 1) * strides[source]! : 0), 0);
  const count = sourceShape[0] * sourceShape[1] * sourceShape[2];
  const move = <T extends VoxelArray>(data: T, toTarget: boolean, caller: string): T => {
    if (data.length !== count) throw new ArgumentError(caller, 'data', `has ${data.length} values for the grid [${sourceShape.join(', ')}]`);
    if (identity) return data;
    const out = new (data.constructor as new (length: number) => T)(count);
    const [na, nb, nc] = targetShape;
    let target = 0;
    for (let c = 0; c < nc; c++) {
      for (let b = 0; b < nb; b++) {
        let source = start + c * steps[2]! + b * steps[1]!;
        for (let a = 0; a < na; a++, target++, source += steps[0]!) {
          if (toTarget) out[target] = data[source]!;
          else out[source] = data[target]!;
        }
      }
    }
    return out;
  };
  return {
    from,
    to,
    identity,
    axes,
    sourceShape,
    shape: targetShape,
    affine: targetAffine,
    spacing: axes.map(({ source }) => sourceSpacing[source]!) as unknown as Spacing,
    toTarget: (data) => move(data, true, 'Reorientation.toTarget'),
    toSource: (data) => move(data, false, 'Reorientation.toSource'),
  };
}

/** A 3D volume on the reoriented grid of `plan` (its header geometry dropped: the affine says where it lies). */
function reorientVolume<V extends Volume>(volume: V, plan: Reorientation): V {
  const { header: _header, ...rest } = volume;
  return { ...rest, data: plan.toTarget(volume.data), shape: plan.shape, spacing: plan.spacing, affine: plan.affine } as V;
}

/**
 * A case turned to the orientation `to`: its channels and label map permuted and reversed voxel for voxel, and the
 * plan that puts arrays on the reoriented grid back on the scan's. The case itself when it is already so oriented.
 * @throws {DatasetError} naming the scan's first file when its affine has no orientation; {@link ArgumentError} when
 *   `to` is not an orientation.
 */
export function reorientCase(caseData: CanonicalCase, to: string): { case: CanonicalCase; plan: Reorientation } {
  const grid = caseData.channels[0];
  const problem = directionProblem(grid.affine);
  if (problem !== undefined) {
    throw new DatasetError(caseData.ref.images[0] ?? caseData.id, `its voxel-to-world affine has no orientation (${problem}): which way its slices run is unknown`, caseData.id);
  }
  const plan = planReorientation(grid.shape, grid.affine, to, grid.spacing);
  if (plan.identity) return { case: caseData, plan };
  const channels = caseData.channels.map((channel) => reorientVolume(channel, plan)) as unknown as CanonicalCase['channels'];
  const reoriented: CanonicalCase = { ...caseData, channels };
  if (caseData.labels !== undefined) reoriented.labels = reorientVolume(caseData.labels, plan);
  return { case: reoriented, plan };
}
