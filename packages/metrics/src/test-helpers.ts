/**
 * Fixtures for the tests of this package: a seeded random generator and random blob masks.
 */
import type { GridShape } from './validate.js';

/** mulberry32: a small seeded generator, so random fixtures are the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 0/1 mask that is the union of `count` random ellipsoids (some may touch the volume border). */
export function randomBlobs(shape: GridShape, count: number, random: () => number): Uint8Array {
  const [ni, nj, nk] = shape;
  const mask = new Uint8Array(ni * nj * nk);
  for (let b = 0; b < count; b++) {
    const center = [random() * ni, random() * nj, random() * nk];
    const radius = [2 + random() * ni * 0.25, 2 + random() * nj * 0.25, 2 + random() * nk * 0.25];
    for (let k = 0; k < nk; k++) {
      for (let j = 0; j < nj; j++) {
        for (let i = 0; i < ni; i++) {
          const x = (i - center[0]!) / radius[0]!;
          const y = (j - center[1]!) / radius[1]!;
          const z = (k - center[2]!) / radius[2]!;
          if (x * x + y * y + z * z <= 1) mask[i + ni * (j + nj * k)] = 1;
        }
      }
    }
  }
  return mask;
}

/** A copy of `mask` moved by whole voxels (voxels moved outside are dropped). */
export function shiftMask(mask: Uint8Array, shape: GridShape, shift: readonly [number, number, number]): Uint8Array {
  const [ni, nj, nk] = shape;
  const out = new Uint8Array(mask.length);
  for (let k = 0; k < nk; k++) {
    for (let j = 0; j < nj; j++) {
      for (let i = 0; i < ni; i++) {
        if (mask[i + ni * (j + nj * k)] === 0) continue;
        const a = i + shift[0];
        const b = j + shift[1];
        const c = k + shift[2];
        if (a >= 0 && a < ni && b >= 0 && b < nj && c >= 0 && c < nk) out[a + ni * (b + nj * c)] = 1;
      }
    }
  }
  return out;
}

/** A 0/1 mask with the voxels at the given `[i, j, k]` positions set. */
export function maskWith(shape: GridShape, voxels: readonly (readonly [number, number, number])[]): Uint8Array {
  const mask = new Uint8Array(shape[0] * shape[1] * shape[2]);
  for (const [i, j, k] of voxels) mask[i + shape[0] * (j + shape[1] * k)] = 1;
  return mask;
}

/** A 0/1 mask that is 1 where `inside(i, j, k)` holds. */
export function maskWhere(shape: GridShape, inside: (i: number, j: number, k: number) => boolean): Uint8Array {
  const [ni, nj, nk] = shape;
  const mask = new Uint8Array(ni * nj * nk);
  for (let k = 0; k < nk; k++) for (let j = 0; j < nj; j++) for (let i = 0; i < ni; i++) mask[i + ni * (j + nj * k)] = inside(i, j, k) ? 1 : 0;
  return mask;
}
