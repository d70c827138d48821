import { ArgumentError } from '@brats/io';
import { describe, expect, it } from 'vitest';
import { byteSum, regionVolumesMl } from './labels.js';

/** The plain byte loop byteSum must agree with. */
function plainSum(bytes: Uint8Array): number {
  let total = 0;
  for (let v = 0; v < bytes.length; v++) total += bytes[v]!;
  return total;
}

describe('byteSum', () => {
  it('adds every byte as a plain loop does, at any offset and length, with bytes up to 255 over many words', () => {
    const buffer = new Uint8Array(4 * 1000 + 7);
    for (let v = 0; v < buffer.length; v++) buffer[v] = (v * 37 + (v >> 3)) % 7 === 0 ? 255 : (v * 13) % 256;
    for (const [offset, length] of [[0, buffer.length], [1, 1000], [2, 3], [3, 4 * 300 + 2], [5, 0], [4, 4 * 999]] as const) {
      const view = buffer.subarray(offset, offset + length);
      expect(byteSum(view)).toBe(plainSum(view));
    }
    // Every byte 255 over more than 128 words: the lanes would overflow without folding.
    const full = new Uint8Array(4 * 1000).fill(255);
    expect(byteSum(full)).toBe(255 * 4000);
  });
});

describe('regionVolumesMl', () => {
  it('gives each region its voxel count times the voxel volume', () => {
    const wt = new Uint8Array(1001);
    wt.fill(1, 3, 503);
    const tc = new Uint8Array(1001);
    tc.fill(1, 10, 20);
    expect(regionVolumesMl(['WT', 'TC'], [wt, tc], [1, 2, 0.5])).toEqual({ WT: 0.5, TC: 0.01 });
    expect(() => regionVolumesMl(['WT'], [wt, tc], [1, 1, 1])).toThrow(ArgumentError);
  });
});
