import { ArgumentError, createRandom, type RandomSource } from '@brats/io';
import { describe, expect, it } from 'vitest';
import { augmentBatch } from './augment.js';
import { planEpoch } from './sampler.js';

/** A random source replaying fixed values for next() (flip draws, affine draw); nextUint32 gives rotation counts. */
function scripted(nexts: number[], uint32s: number[] = [0]): RandomSource {
  let n = 0;
  let u = 0;
  return {
    next: () => nexts[n++ % nexts.length]!,
    nextUint32: () => uint32s[u++ % uint32s.length]!,
    uniform: (low, high) => (low + high) / 2,
    normal: () => 0,
    fill: (target, count = target.length) => {
      for (let i = 0; i < count; i++) target[i] = uint32s[u++ % uint32s.length]!;
    },
  };
}

const NO_EXTRAS = { maxRotationDegrees: 0, maxShearDegrees: 0, maxScale: 0, intensityScale: 0, intensityShift: 0 };

/** One 3x3 slice, one channel, values 1..9 row by row; mask marks the top-left pixel. */
function slice(): { images: Float32Array; masks: Uint8Array } {
  const images = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const masks = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0]);
  return { images, masks };
}

describe('augmentBatch', () => {
  it.each([
    ['an up-down flip (first draw)', [0.2, 0.9], [0], [7, 8, 9, 4, 5, 6, 1, 2, 3], 6],
    ['a left-right flip (second draw)', [0.9, 0.2], [0], [3, 2, 1, 6, 5, 4, 9, 8, 7], 2],
    ['both flips', [0.2, 0.2], [0], [9, 8, 7, 6, 5, 4, 3, 2, 1], 8],
    ['a quarter turn', [0.9, 0.9], [1], [3, 6, 9, 2, 5, 8, 1, 4, 7], 6],
  ])('%s moves image and mask together', (_name, nexts, turns, expected, maskAt) => {
    const { images, masks } = slice();
    augmentBatch(images, masks, [1, 3, 3, 1], 1, scripted([...nexts, 0.99], turns), { ...NO_EXTRAS, affineProbability: 0 });
    expect(Array.from(images, (v) => Math.round(v * 1e6) / 1e6)).toEqual(expected);
    expect(masks.indexOf(1)).toBe(maskAt);
    expect(masks.reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('scales and shifts intensities per channel and leaves masks alone', () => {
    const images = Float32Array.from([1, 10, 2, 20]); // 2 pixels, 2 channels
    const masks = Uint8Array.from([1, 0]);
    augmentBatch(images, masks, [1, 1, 2, 2], 1, scripted([0.9, 0.9, 0.99]), { ...NO_EXTRAS, intensityScale: 0.2, intensityShift: 0.5, rotate90: false });
    // The scripted uniform() returns the midpoint: scale 1, shift 0 → unchanged.
    expect(Array.from(images)).toEqual([1, 10, 2, 20]);
    const random = createRandom(5);
    augmentBatch(images, masks, [1, 1, 2, 2], 1, random, { ...NO_EXTRAS, flips: false, rotate90: false, intensityScale: 0.2, intensityShift: 0.5 });
    // Each channel is a·x + b with its own a in [0.8, 1.2] and b in [-0.5, 0.5]: the ratio of differences within a channel is kept.
    expect((images[2]! - images[0]!) / (2 - 1)).toBeGreaterThanOrEqual(0.8);
    expect((images[2]! - images[0]!) / (2 - 1)).toBeLessThanOrEqual(1.2);
    expect(Array.from(masks)).toEqual([1, 0]);
  });

  it('keeps image and mask aligned under random rotations, shears and zooms', () => {
    // Channel 0 is the mask itself; nearest-neighbour masks and bilinear images agree wherever the image is 0 or 1.
    const size = 32;
    const images = new Float32Array(4 * size * size);
    const masks = new Uint8Array(4 * size * size);
    for (let b = 0; b < 4; b++) for (let y = 8; y < 20; y++) for (let x = 10; x < 24; x++) {
      images[(b * size + y) * size + x] = 1;
      masks[(b * size + y) * size + x] = 1;
    }
    augmentBatch(images, masks, [4, size, size, 1], 1, createRandom(7), { intensityScale: 0, intensityShift: 0, affineProbability: 1 });
    let agree = 0;
    let definite = 0;
    for (let v = 0; v < images.length; v++) {
      if (images[v]! > 0.999 || images[v]! < 0.001) {
        definite++;
        if ((images[v]! > 0.5 ? 1 : 0) === masks[v]) agree++;
      }
    }
    expect(agree).toBe(definite);
    expect(definite).toBeGreaterThan(images.length * 0.8);
  });

  it('is deterministic by seed', () => {
    const run = (seed: number) => {
      const images = Float32Array.from({ length: 2 * 16 * 16 * 2 }, (_, v) => Math.sin(v));
      const masks = Uint8Array.from({ length: 2 * 16 * 16 }, (_, v) => v % 3 === 0 ? 1 : 0);
      augmentBatch(images, masks, [2, 16, 16, 2], 1, createRandom(seed));
      return [Array.from(images), Array.from(masks)];
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('rejects arrays that do not match the shape', () => {
    expect(() => augmentBatch(new Float32Array(5), new Uint8Array(9), [1, 3, 3, 1], 1, createRandom(1))).toThrow(ArgumentError);
  });
});

describe('planEpoch', () => {
  it('visits every slice once per epoch in the seed plain shuffle, in batches', () => {
    const batches = planEpoch({ sliceCount: 10, batchSize: 4, seed: 1, epoch: 1 });
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('epoch 1 draws the order that the first epoch drew before epochs were counted from 1', () => {
    // Recorded from the sampler when its first epoch was numbered 0: renumbering must not change any run's data.
    expect(planEpoch({ sliceCount: 10, batchSize: 4, seed: 1, epoch: 1 })).toEqual([[7, 9, 4, 3], [5, 8, 2, 1], [6, 0]]);
    expect(planEpoch({ sliceCount: 12, batchSize: 4, seed: 816, epoch: 2, tumourSlices: [0, 1, 2], tumourFraction: 0.5, stepsPerEpoch: 2 })).toEqual([
      [1, 11, 10, 2],
      [0, 4, 1, 8],
    ]);
  });

  it('depends only on seed and epoch', () => {
    const a = planEpoch({ sliceCount: 50, batchSize: 8, seed: 2, epoch: 3 });
    expect(planEpoch({ sliceCount: 50, batchSize: 8, seed: 2, epoch: 3 })).toEqual(a);
    expect(planEpoch({ sliceCount: 50, batchSize: 8, seed: 2, epoch: 4 })).not.toEqual(a);
  });

  it('draws the requested fraction of tumour slices into every batch', () => {
    const tumourSlices = [3, 7, 11, 19];
    const batches = planEpoch({ sliceCount: 40, batchSize: 8, seed: 5, epoch: 1, tumourSlices, tumourFraction: 0.25, stepsPerEpoch: 6 });
    expect(batches).toHaveLength(6);
    for (const batch of batches) {
      expect(batch).toHaveLength(8);
      expect(batch.filter((index) => tumourSlices.includes(index))).toHaveLength(2);
    }
    // Shuffled passes: the 12 tumour draws cover each tumour slice exactly 3 times.
    const counts = tumourSlices.map((slice) => batches.flat().filter((index) => index === slice).length);
    expect(counts).toEqual([3, 3, 3, 3]);
  });

  it.each([
    [{ sliceCount: 0, batchSize: 4 }, 'sliceCount'],
    [{ sliceCount: 4, batchSize: 0 }, 'batchSize'],
    [{ sliceCount: 4, batchSize: 2, tumourFraction: 1.5 }, 'tumourFraction'],
    [{ sliceCount: 4, batchSize: 2, epoch: 0 }, 'epoch'],
  ])('rejects %j', (options, argument) => {
    try {
      planEpoch({ seed: 1, epoch: 1, ...options });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });
});
