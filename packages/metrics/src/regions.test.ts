import { describe, expect, it } from 'vitest';
import { ArgumentError } from './errors.js';
import {
  BRATS2017_LABELS,
  BRATS2023_LABELS,
  MSD_LABELS,
  computeVolumeMl,
  regionMasksFromLabels,
  voxelVolumeMl,
  type LabelRegionMapping,
} from './index.js';

describe('regionMasksFromLabels', () => {
  it.each([
    { mapping: MSD_LABELS, labels: [0, 1, 2, 3], WT: [0, 1, 1, 1], TC: [0, 0, 1, 1], ET: [0, 0, 0, 1] },
    { mapping: BRATS2017_LABELS, labels: [0, 1, 2, 4], WT: [0, 1, 1, 1], TC: [0, 1, 0, 1], ET: [0, 0, 0, 1] },
    { mapping: BRATS2023_LABELS, labels: [0, 1, 2, 3], WT: [0, 1, 1, 1], TC: [0, 1, 0, 1], ET: [0, 0, 0, 1] },
  ])('$mapping.name', ({ mapping, labels, WT, TC, ET }) => {
    const masks = regionMasksFromLabels(Int16Array.from(labels), mapping);
    expect(Array.from(masks.WT!)).toEqual(WT);
    expect(Array.from(masks.TC!)).toEqual(TC);
    expect(Array.from(masks.ET!)).toEqual(ET);
  });

  it('makes only the regions asked for', () => {
    expect(Object.keys(regionMasksFromLabels([0, 4], BRATS2017_LABELS, ['ET']))).toEqual(['ET']);
  });

  it.each([
    { name: 'a value its mapping does not know', call: () => regionMasksFromLabels([0, 4], MSD_LABELS), argument: 'labels' },
    { name: 'an unknown region', call: () => regionMasksFromLabels([0, 1], MSD_LABELS, ['NCR' as 'WT']), argument: 'options.regions' },
    { name: 'a bad mapping', call: () => regionMasksFromLabels([0, 1], {} as LabelRegionMapping), argument: 'mapping' },
  ])('rejects $name', ({ call, argument }) => {
    try {
      call();
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ArgumentError);
      expect((error as ArgumentError).functionName).toBe('regionMasksFromLabels');
      expect((error as ArgumentError).argument).toBe(argument);
    }
  });
});

describe('computeVolumeMl', () => {
  it.each([
    { mask: [1, 1, 1, 0], spacing: [1, 1, 1] as const, expected: 0.003 },
    { mask: [1, 1, 1, 0], spacing: [0.5, 2, 3] as const, expected: 0.009 },
    { mask: [0.2, 0.7, 0.9], spacing: [2, 2, 2] as const, expected: 0.016 },
    { mask: [0, 0], spacing: [1, 1, 1] as const, expected: 0 },
  ])('$mask at $spacing mm → $expected mL', ({ mask, spacing, expected }) => {
    expect(computeVolumeMl(mask, spacing)).toBeCloseTo(expected, 12);
  });

  it('a BraTS voxel is 1 µL and spacing is checked', () => {
    expect(voxelVolumeMl([1, 1, 1])).toBe(0.001);
    expect(() => computeVolumeMl([1], [1, -1, 1])).toThrow(ArgumentError);
  });
});
