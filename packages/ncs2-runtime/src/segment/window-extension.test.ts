import { describe, expect, it } from 'vitest';
import { EXTENSION_OVERLAP, describeFace, extensionStarts, inPlaneStarts, ownerMap, touchedFaces, writeWindow } from './window-extension.js';

describe('extensionStarts', () => {
  it('covers a BraTS scan beyond the centred 144 window with one window per side, each at the scan edge', () => {
    // 240 voxels, window at 48..191: the low side is 0..47, the high side 192..239.
    expect(extensionStarts(240, 144, 48, 'low')).toEqual([0]);
    expect(extensionStarts(240, 144, 48, 'high')).toEqual([96]);
    // Along k, 155 slices with the window at 5..148.
    expect(extensionStarts(155, 144, 5, 'low')).toEqual([0]);
    expect(extensionStarts(155, 144, 5, 'high')).toEqual([11]);
  });

  it('tiles a long way to the edge, each window reaching back the overlap into the one before', () => {
    // Window 100..109 of 10 in 140 voxels, overlap 5 (half the window): low 0..99 needs starts 95, 90, … 0.
    const low = extensionStarts(140, 10, 100, 'low');
    expect(low).toEqual([95, 90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 0]);
    // High 110..139: 105, 110, …, 130 (the last at the edge).
    expect(extensionStarts(140, 10, 100, 'high')).toEqual([105, 110, 115, 120, 125, 130]);
    // With the full overlap: window 300..443 in 600 voxels.
    expect(extensionStarts(600, 144, 300, 'low')).toEqual([300 - 144 + EXTENSION_OVERLAP, 300 - 2 * (144 - EXTENSION_OVERLAP), 0]);
    expect(extensionStarts(600, 144, 300, 'high')).toEqual([444 - EXTENSION_OVERLAP, 600 - 144]);
  });

  it('gives nothing where the window holds the whole axis', () => {
    expect(extensionStarts(144, 144, 0, 'low')).toEqual([]);
    expect(extensionStarts(100, 144, -22, 'high')).toEqual([]);
  });
});

describe('touchedFaces', () => {
  // A block of depth 3, height 4, width 5, 2 channels; the window starts at [2, 3, 1] in a 10 x 10 x 6 scan.
  const blockShape = [3, 4, 5, 2] as const;
  const set = (block: Float32Array, z: number, h: number, w: number, channel: number, value: number): void => {
    block[((z * 4 + h) * 5 + w) * 2 + channel] = value;
  };

  it('names each face whose outer layer holds a voxel above the threshold in the channel asked', () => {
    const block = new Float32Array(3 * 4 * 5 * 2);
    set(block, 1, 0, 2, 0, 0.9); // i-low
    set(block, 1, 2, 4, 0, 0.6); // j-high
    set(block, 2, 1, 1, 0, 0.5); // k-high, but not above 0.5
    set(block, 0, 2, 2, 1, 0.9); // k-low in the other channel only
    expect(touchedFaces(block, blockShape, [2, 3, 1], [10, 10, 6], 0, 0.5, [0, 1, 2])).toEqual([
      { axis: 0, side: 'low' },
      { axis: 1, side: 'high' },
    ]);
    expect(touchedFaces(block, blockShape, [2, 3, 1], [10, 10, 6], 1, 0.5, [0, 1, 2])).toEqual([{ axis: 2, side: 'low' }]);
    expect(touchedFaces(block, blockShape, [2, 3, 1], [10, 10, 6], 0, 0.5, [2])).toEqual([]);
  });

  it('ignores a face at the scan edge or beyond it: nothing lies past it', () => {
    const block = new Float32Array(3 * 4 * 5 * 2).fill(1);
    // The window starts at i 0 and ends at the scan's last j (3 + 5 = 8) and k (1 + 3 = 4).
    expect(touchedFaces(block, blockShape, [0, 3, 1], [10, 8, 4], 0, 0.5, [0, 1, 2])).toEqual([
      { axis: 0, side: 'high' },
      { axis: 1, side: 'low' },
      { axis: 2, side: 'low' },
    ]);
    // A window larger than the scan (negative start) on every axis.
    expect(touchedFaces(block, blockShape, [-1, -1, -1], [2, 3, 1], 0, 0.5, [0, 1, 2])).toEqual([]);
  });
});

describe('describeFace', () => {
  it('names a face of the window by its side of the head and by the end of the scan\'s own axis that faces it', () => {
    expect(describeFace({ axis: 2, side: 'low' }, 'LPS')).toBe('inferior (k-low)');
    expect(describeFace({ axis: 0, side: 'high' }, 'LPS')).toBe('left (i-high)');
    // A scan turned from RAS: the window's i-low (right) is the scan's i-high; from PIR, its k-low (inferior) is j-high.
    expect(describeFace({ axis: 0, side: 'low' }, 'LPS', 'RAS')).toBe('right (i-high)');
    expect(describeFace({ axis: 2, side: 'low' }, 'LPS', 'PIR')).toBe('inferior (j-high)');
    expect(describeFace({ axis: 1, side: 'high' }, 'LPS', 'PIR')).toBe('posterior (i-high)');
  });
});

describe('inPlaneStarts and ownerMap', () => {
  it('adds a window beyond each touched face and one for the corner beyond two', () => {
    const starts = inPlaneStarts([48, 48, 5], [144, 144, 144], [240, 240, 155], [
      { axis: 1, side: 'low' },
      { axis: 0, side: 'high' },
    ]);
    expect(starts).toEqual([
      [48, 0],
      [96, 48],
      [96, 0],
    ]);
  });

  it('gives each column to the first window that holds it', () => {
    // A 6 x 4 scan; windows of 3 x 2 at [1, 1] (the model's), [0, 0] and [3, 1].
    const owner = ownerMap(
      [
        [1, 1],
        [0, 0],
        [3, 1],
      ],
      [3, 2],
      [6, 4, 1],
    );
    // Rows j = 0..3, each i = 0..5.
    expect(Array.from(owner)).toEqual([
      ...[1, 1, 1, -1, -1, -1],
      ...[1, 0, 0, 0, 2, 2],
      ...[-1, 0, 0, 0, 2, 2],
      ...[-1, -1, -1, -1, -1, -1],
    ]);
  });
});

describe('writeWindow', () => {
  it('writes the owned columns of the asked slices, as probabilities or as masks', () => {
    // A 4 x 3 x 2 scan; a window of height 2 (i), width 2 (j), depth 2 (k) at [2, 1, 0], one channel.
    const blockShape = [2, 2, 2, 1] as const;
    const block = Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
    const owner = new Int16Array(12).fill(1);
    owner[3 + 4 * 2] = 0; // (i 3, j 2) belongs to another window
    const values = new Float32Array(24);
    // Slice z 1 alone: the block holds that slice only.
    writeWindow([values], block.subarray(4), blockShape, [2, 1, 0], [1], owner, 1, [4, 3, 2]);
    // Slice z 1 (k 1): h, w → block index (1 * 2 + h) * 2 + w: (0,0) 0.5 → i 2 j 1; (0,1) 0.6 → i 2 j 2;
    // (1,0) 0.7 → i 3 j 1; (1,1) 0.8 → i 3 j 2, not owned.
    const at = (i: number, j: number, k: number): number => values[i + 4 * (j + 3 * k)]!;
    expect([at(2, 1, 1), at(2, 2, 1), at(3, 1, 1), at(3, 2, 1)]).toEqual([0.5, 0.6, 0.7, 0].map(Math.fround));
    expect(values.reduce((sum, value) => sum + (value > 0 ? 1 : 0), 0)).toBe(3);
    const masks = new Uint8Array(24);
    writeWindow([masks], block, blockShape, [2, 1, 0], [0, 1], owner, 1, [4, 3, 2], [0.55]);
    expect(Array.from(masks).filter((value) => value === 1)).toHaveLength(2);
    expect(masks[2 + 4 * (2 + 3 * 1)]).toBe(1);
    expect(masks[3 + 4 * (1 + 3 * 1)]).toBe(1);
  });
});
