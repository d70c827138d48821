import { describe, expect, it } from 'vitest';
import { ArgumentError } from './errors.js';
import { createVolume, frameView, selectFrame } from './volume.js';

describe('frameView', () => {
  // 3 x 2 x 2 voxels, 3 frames: value 100 * t + voxel index, so a frame's origin shows in every value.
  const volume = createVolume('float32', Float32Array.from({ length: 36 }, (_, v) => 100 * Math.floor(v / 12) + (v % 12)), [3, 2, 2, 3]);

  it('holds the same voxels, shape and geometry as the copy selectFrame makes', () => {
    for (let t = 0; t < 3; t++) {
      const view = frameView(volume, t);
      const copy = selectFrame(volume, t);
      expect(Array.from(view.data)).toEqual(Array.from(copy.data));
      expect(Array.from(view.data)).toEqual(Array.from({ length: 12 }, (_, v) => 100 * t + v));
      expect(view.shape).toEqual([3, 2, 2]);
      expect(view.affine).toEqual(volume.affine);
      expect(view.spacing).toEqual(volume.spacing);
    }
  });

  it('shares the 4D volume memory: a write through the view is a write to the volume', () => {
    const own = createVolume('int16', Int16Array.from({ length: 24 }, (_, v) => v), [2, 2, 3, 2]);
    const view = frameView(own, 1);
    view.data[0] = -7;
    expect(own.data[12]).toBe(-7);
    expect(selectFrame(own, 1).data[0]).toBe(-7);
  });

  it.each([
    ['a 3D volume', () => frameView(createVolume('float32', new Float32Array(8), [2, 2, 2]), 0), /must be 4D/],
    ['a frame past the last', () => frameView(volume, 3), /must be an integer in \[0, 2\], got 3/],
    ['a fractional frame', () => frameView(volume, 0.5), /got 0.5/],
  ])('refuses %s with an ArgumentError', (_name, call, message) => {
    expect(call).toThrow(ArgumentError);
    expect(call).toThrow(message);
  });
});
