/**
 * 3D connected components of a binary mask, for keep-largest-component post-processing and lesion-wise scores. Hand-written
 * (a two-pass union-find over the 26-neighbourhood's already visited half) because no maintained
 * JavaScript package labels 3D typed-array volumes.
 */
import { ArgumentError } from './errors.js';

function find(parent: Int32Array, x: number): number {
  let root = x;
  while (parent[root]! !== root) root = parent[root]!;
  while (parent[x]! !== root) {
    const next = parent[x]!;
    parent[x] = root;
    x = next;
  }
  return root;
}

/** The smallest box [low, high) per axis that holds every non-zero voxel; undefined for an empty mask. */
function nonzeroBox(mask: ArrayLike<number>, shape: readonly [number, number, number]): { low: [number, number, number]; high: [number, number, number] } | undefined {
  const [nx, ny, nz] = shape;
  const low: [number, number, number] = [nx, ny, nz];
  const high: [number, number, number] = [0, 0, 0];
  for (let k = 0, index = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++, index += nx) {
      let first = -1;
      for (let i = 0; i < nx; i++) {
        if (mask[index + i] !== 0) {
          first = i;
          break;
        }
      }
      if (first < 0) continue;
      let last = nx - 1;
      while (mask[index + last] === 0) last--;
      if (first < low[0]) low[0] = first;
      if (last + 1 > high[0]) high[0] = last + 1;
      if (j < low[1]) low[1] = j;
      if (j + 1 > high[1]) high[1] = j + 1;
      if (k < low[2]) low[2] = k;
      high[2] = k + 1;
    }
  }
  return high[2] === 0 ? undefined : { low, high };
}

/**
 * The components of the part of `mask` inside `box`, labelled in i-j-k order: every voxel outside the box is zero,
 * so the components, their numbering (order of first voxel) and sizes are those of the whole mask, for a pass
 * over the box only (a tumour's box is a small part of a scan).
 */
function labelBox(mask: ArrayLike<number>, shape: readonly [number, number, number], box: { low: readonly number[]; high: readonly number[] }): { labels: Int32Array; sizes: number[] } {
  const [nx, ny] = shape;
  const [i0, j0, k0] = box.low as [number, number, number];
  const [bx, by, bz] = [box.high[0]! - i0, box.high[1]! - j0, box.high[2]! - k0];
  const labels = new Int32Array(bx * by * bz);
  let parentArray = new Int32Array(1024);
  let next = 1;
  const union = (a: number, b: number): number => {
    const ra = find(parentArray, a);
    const rb = find(parentArray, b);
    if (ra === rb) return ra;
    const low = Math.min(ra, rb);
    parentArray[Math.max(ra, rb)] = low;
    return low;
  };
  for (let k = 0; k < bz; k++) {
    for (let j = 0; j < by; j++) {
      const row = i0 + nx * (j0 + j + ny * (k0 + k));
      for (let i = 0; i < bx; i++) {
        if (mask[row + i] === 0) continue;
        let label = 0;
        // Neighbours already visited: previous slice (9), previous row (3), previous voxel (1).
        for (let dk = -1; dk <= 0; dk++) {
          const kk = k + dk;
          if (kk < 0) continue;
          for (let dj = -1; dj <= 1; dj++) {
            const jj = j + dj;
            if (jj < 0 || jj >= by) continue;
            if (dk === 0 && dj > 0) continue;
            for (let di = -1; di <= 1; di++) {
              const ii = i + di;
              if (ii < 0 || ii >= bx) continue;
              if (dk === 0 && dj === 0 && di >= 0) continue;
              const neighbour = labels[ii + bx * (jj + by * kk)]!;
              if (neighbour === 0) continue;
              label = label === 0 ? find(parentArray, neighbour) : union(label, neighbour);
            }
          }
        }
        if (label === 0) {
          if (next >= parentArray.length) {
            const grown = new Int32Array(parentArray.length * 2);
            grown.set(parentArray);
            parentArray = grown;
          }
          parentArray[next] = next;
          label = next++;
        }
        labels[i + bx * (j + by * k)] = label;
      }
    }
  }
  // Second pass: roots renumbered 1..count.
  const renumber = new Int32Array(next);
  const sizes: number[] = [0];
  for (let index = 0; index < labels.length; index++) {
    const label = labels[index]!;
    if (label === 0) continue;
    const root = find(parentArray, label);
    if (renumber[root] === 0) {
      renumber[root] = sizes.length;
      sizes.push(0);
    }
    const id = renumber[root]!;
    labels[index] = id;
    sizes[id]!++;
  }
  return { labels, sizes };
}

/** Calls `each(boxIndex, volumeIndex)` for every voxel of `box`, in i-j-k order. */
function forEachInBox(shape: readonly [number, number, number], box: { low: readonly number[]; high: readonly number[] }, each: (boxIndex: number, index: number) => void): void {
  const [nx, ny] = shape;
  const [i0, j0, k0] = box.low as [number, number, number];
  const [i1, j1, k1] = box.high as [number, number, number];
  for (let k = k0, boxIndex = 0; k < k1; k++) {
    for (let j = j0; j < j1; j++) {
      for (let i = i0, index = i0 + nx * (j + ny * k); i < i1; i++, index++, boxIndex++) each(boxIndex, index);
    }
  }
}

function checkMask(fn: string, mask: ArrayLike<number>, [nx, ny, nz]: readonly [number, number, number]): void {
  if (mask.length !== nx * ny * nz) throw new ArgumentError(fn, 'mask', `has ${mask.length} values for shape [${nx}, ${ny}, ${nz}]`);
}

/**
 * Labels the 26-connected components of a mask (non-zero voxels), flat in NIfTI i-j-k order; components are
 * numbered in the order of their first voxel in that order.
 * @returns per-voxel component ids (0 = background, 1..count) and each component's size (index 0 unused).
 * @throws {ArgumentError} when the mask length differs from the shape.
 */
export function labelComponents(mask: ArrayLike<number>, shape: readonly [number, number, number]): { labels: Int32Array; sizes: number[] } {
  checkMask('labelComponents', mask, shape);
  const labels = new Int32Array(mask.length);
  const box = nonzeroBox(mask, shape);
  if (box === undefined) return { labels, sizes: [0] };
  const inBox = labelBox(mask, shape, box);
  forEachInBox(shape, box, (boxIndex, index) => (labels[index] = inBox.labels[boxIndex]!));
  return { labels, sizes: inBox.sizes };
}

/**
 * A copy of `mask` (0/1) keeping only its largest 26-connected component (the first of equal ones).
 * @throws {ArgumentError} when the mask length differs from the shape.
 */
export function keepLargestComponent(mask: ArrayLike<number>, shape: readonly [number, number, number]): Uint8Array {
  checkMask('keepLargestComponent', mask, shape);
  const out = new Uint8Array(mask.length);
  const box = nonzeroBox(mask, shape);
  if (box === undefined) return out;
  const { labels, sizes } = labelBox(mask, shape, box);
  let best = 1;
  for (let id = 2; id < sizes.length; id++) if (sizes[id]! > sizes[best]!) best = id;
  forEachInBox(shape, box, (boxIndex, index) => {
    if (labels[boxIndex] === best) out[index] = 1;
  });
  return out;
}

/**
 * A copy of `mask` (0/1) without its 26-connected components of fewer than `minimum` voxels, and how many it left out.
 * @throws {ArgumentError} when the mask length differs from the shape.
 */
export function removeSmallComponents(mask: ArrayLike<number>, shape: readonly [number, number, number], minimum: number): { mask: Uint8Array; removed: number } {
  checkMask('removeSmallComponents', mask, shape);
  const out = new Uint8Array(mask.length);
  const box = nonzeroBox(mask, shape);
  if (box === undefined) return { mask: out, removed: 0 };
  const { labels, sizes } = labelBox(mask, shape, box);
  let removed = 0;
  for (let id = 1; id < sizes.length; id++) if (sizes[id]! < minimum) removed++;
  forEachInBox(shape, box, (boxIndex, index) => {
    const id = labels[boxIndex]!;
    if (id !== 0 && sizes[id]! >= minimum) out[index] = 1;
  });
  return { mask: out, removed };
}
