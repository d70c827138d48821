import { describe, expect, it } from 'vitest';
import { keepLargestComponent, labelComponents, removeSmallComponents } from './components.js';
import { ArgumentError } from './errors.js';

describe('connected components', () => {
  it('joins diagonal neighbours (26-connectivity) and keeps the largest component', () => {
    const mask = new Uint8Array(27 * 2);
    const at = (i: number, j: number, k: number) => i + 3 * (j + 3 * k);
    mask[at(0, 0, 0)] = 1;
    mask[at(1, 1, 1)] = 1; // touches (0,0,0) only by a corner
    mask[at(2, 2, 5)] = 1;
    mask[at(2, 1, 5)] = 1;
    mask[at(2, 0, 5)] = 1;
    const { sizes } = labelComponents(mask, [3, 3, 6]);
    expect(sizes.slice(1).sort()).toEqual([2, 3]);
    const kept = keepLargestComponent(mask, [3, 3, 6]);
    expect(kept.reduce((a, b) => a + b, 0)).toBe(3);
    expect(kept[at(2, 0, 5)]).toBe(1);
  });

  /** Labels by breadth-first search over the 26 neighbours, components numbered by their first voxel in i-j-k order. */
  function floodLabels(mask: Uint8Array, [nx, ny, nz]: readonly [number, number, number]): { labels: Int32Array; sizes: number[] } {
    const labels = new Int32Array(mask.length);
    const sizes = [0];
    for (let start = 0; start < mask.length; start++) {
      if (mask[start] === 0 || labels[start] !== 0) continue;
      const id = sizes.length;
      sizes.push(0);
      const queue = [start];
      labels[start] = id;
      while (queue.length > 0) {
        const index = queue.pop()!;
        sizes[id]!++;
        const [i, j, k] = [index % nx, Math.floor(index / nx) % ny, Math.floor(index / (nx * ny))];
        for (let dk = -1; dk <= 1; dk++) for (let dj = -1; dj <= 1; dj++) for (let di = -1; di <= 1; di++) {
          const [a, b, c] = [i + di, j + dj, k + dk];
          if (a < 0 || a >= nx || b < 0 || b >= ny || c < 0 || c >= nz) continue;
          const neighbour = a + nx * (b + ny * c);
          if (mask[neighbour] !== 0 && labels[neighbour] === 0) {
            labels[neighbour] = id;
            queue.push(neighbour);
          }
        }
      }
    }
    return { labels, sizes };
  }

  it.each([
    ['scattered voxels, some on the volume\'s faces', 0.08, 1],
    ['dense noise: large winding components', 0.35, 2],
    ['two equal blobs away from the faces (the first is kept)', 0, 3],
  ])('labels as a flood fill does and keeps the first largest: %s', (_name, density, seed) => {
    const shape = [13, 11, 9] as const;
    const mask = new Uint8Array(13 * 11 * 9);
    let state = seed;
    const random = (): number => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let v = 0; v < mask.length; v++) mask[v] = random() < density ? 1 : 0;
    if (density === 0) {
      // Two 2x2x2 cubes of equal size, far apart: the tie goes to the first in i-j-k order.
      for (const [i0, j0, k0] of [[7, 6, 5], [2, 2, 1]]) for (let k = 0; k < 2; k++) for (let j = 0; j < 2; j++) for (let i = 0; i < 2; i++) mask[i0! + i + 13 * (j0! + j + 11 * (k0! + k))] = 1;
    }
    const expected = floodLabels(mask, shape);
    const found = labelComponents(mask, shape);
    expect(found.sizes).toEqual(expected.sizes);
    expect(Array.from(found.labels)).toEqual(Array.from(expected.labels));
    let best = 1;
    for (let id = 2; id < expected.sizes.length; id++) if (expected.sizes[id]! > expected.sizes[best]!) best = id;
    expect(Array.from(keepLargestComponent(mask, shape))).toEqual(Array.from(expected.labels, (id) => (id === best ? 1 : 0)));
    if (density === 0) expect(keepLargestComponent(mask, shape)[2 + 13 * (2 + 11 * 1)]).toBe(1);
    // Components under 3 voxels left out, as the flood fill's sizes say.
    const small = removeSmallComponents(mask, shape, 3);
    expect(Array.from(small.mask)).toEqual(Array.from(expected.labels, (id) => (id !== 0 && expected.sizes[id]! >= 3 ? 1 : 0)));
    expect(small.removed).toBe(expected.sizes.slice(1).filter((size) => size < 3).length);
  });

  it('an empty mask has no component', () => {
    expect(labelComponents(new Uint8Array(24), [2, 3, 4]).sizes).toEqual([0]);
    expect(Array.from(keepLargestComponent(new Uint8Array(24), [2, 3, 4]))).toEqual(new Array(24).fill(0));
    expect(removeSmallComponents(new Uint8Array(24), [2, 3, 4], 5)).toEqual({ mask: new Uint8Array(24), removed: 0 });
  });

  it('refuses a mask whose length is not the shape\'s, naming the function', () => {
    expect(() => labelComponents(new Uint8Array(23), [2, 3, 4])).toThrow(ArgumentError);
    expect(() => labelComponents(new Uint8Array(23), [2, 3, 4])).toThrow(/labelComponents.*has 23 values for shape \[2, 3, 4\]/);
    expect(() => keepLargestComponent(new Uint8Array(25), [2, 3, 4])).toThrow(/keepLargestComponent.*has 25 values/);
  });
});
