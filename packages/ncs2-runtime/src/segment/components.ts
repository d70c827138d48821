/**
 * 3D connected components of a binary mask, for keep-largest-component post-processing. Hand-written
 * (a two-pass union-find over the 26-neighbourhood's already visited half) because no maintained
 * JavaScript package labels 3D typed-array volumes.
 */
import { ArgumentError } from '@brats/io/browser';

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

/**
 * Labels the 26-connected components of a mask (non-zero voxels), flat in NIfTI i-j-k order.
 * @returns per-voxel component ids (0 = background, 1..count) and each component's size (index 0 unused).
 * @throws {ArgumentError} when the mask length differs from the shape.
 */
export function labelComponents(mask: ArrayLike<number>, shape: readonly [number, number, number]): { labels: Int32Array; sizes: number[] } {
  const [nx, ny, nz] = shape;
  if (mask.length !== nx * ny * nz) throw new ArgumentError('labelComponents', 'mask', `has ${mask.length} values for shape [${shape.join(', ')}]`);
  const labels = new Int32Array(mask.length);
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
  for (let k = 0; k < nz; k++) {
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const index = i + nx * (j + ny * k);
        if (mask[index] === 0) continue;
        let label = 0;
        // Neighbours already visited: previous slice (9), previous row (3), previous voxel (1).
        for (let dk = -1; dk <= 0; dk++) {
          const kk = k + dk;
          if (kk < 0) continue;
          for (let dj = -1; dj <= 1; dj++) {
            const jj = j + dj;
            if (jj < 0 || jj >= ny) continue;
            if (dk === 0 && dj > 0) continue;
            for (let di = -1; di <= 1; di++) {
              const ii = i + di;
              if (ii < 0 || ii >= nx) continue;
              if (dk === 0 && dj === 0 && di >= 0) continue;
              const neighbour = labels[ii + nx * (jj + ny * kk)]!;
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
        labels[index] = label;
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

/** A copy of `mask` (0/1) keeping only its largest 26-connected component. */
export function keepLargestComponent(mask: ArrayLike<number>, shape: readonly [number, number, number]): Uint8Array {
  const { labels, sizes } = labelComponents(mask, shape);
  const out = new Uint8Array(labels.length);
  if (sizes.length <= 1) return out;
  let best = 1;
  for (let id = 2; id < sizes.length; id++) if (sizes[id]! > sizes[best]!) best = id;
  for (let index = 0; index < labels.length; index++) if (labels[index] === best) out[index] = 1;
  return out;
}
