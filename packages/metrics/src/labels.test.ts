import { describe, expect, it } from 'vitest';
import {
  ArgumentError,
  BRATS2017_LABELS,
  BRATS2023_LABELS,
  BratsError,
  LABEL_MAPPINGS,
  MSD_LABELS,
  REGION_NAMES,
  ShapeMismatchError,
  WHOLE_TUMOUR_LABELS,
  allowedLabels,
  convertLabels,
  getLabelMapping,
  regionMask,
} from './index.js';

describe('regionMask', () => {
  // One voxel per label value of each convention, plus values no convention has (5, 255, -1, 300).
  it.each([
    { mapping: MSD_LABELS, region: 'WT', expected: [0, 1, 1, 1, 0, 0, 0, 0, 0] },
    { mapping: MSD_LABELS, region: 'TC', expected: [0, 0, 1, 1, 0, 0, 0, 0, 0] },
    { mapping: MSD_LABELS, region: 'ET', expected: [0, 0, 0, 1, 0, 0, 0, 0, 0] },
    { mapping: BRATS2017_LABELS, region: 'WT', expected: [0, 1, 1, 0, 1, 0, 0, 0, 0] },
    { mapping: BRATS2017_LABELS, region: 'TC', expected: [0, 1, 0, 0, 1, 0, 0, 0, 0] },
    { mapping: BRATS2017_LABELS, region: 'ET', expected: [0, 0, 0, 0, 1, 0, 0, 0, 0] },
    { mapping: BRATS2023_LABELS, region: 'TC', expected: [0, 1, 0, 1, 0, 0, 0, 0, 0] },
    { mapping: WHOLE_TUMOUR_LABELS, region: 'WT', expected: [0, 1, 0, 0, 0, 0, 0, 0, 0] },
    { mapping: WHOLE_TUMOUR_LABELS, region: 'ET', expected: [0, 0, 0, 0, 0, 0, 0, 0, 0] },
  ] as const)('$mapping.name $region', ({ mapping, region, expected }) => {
    const mask = regionMask([0, 1, 2, 3, 4, 5, 255, -1, 300], mapping, region);
    expect(mask).toBeInstanceOf(Uint8Array);
    expect(Array.from(mask)).toEqual(expected);
  });
});

describe('convertLabels', () => {
  it.each([
    // oedema, non-enhancing / necrotic core, enhancing: MSD 1/2/3, BraTS 2017 2/1/4, BraTS 2023 2/1/3.
    { from: MSD_LABELS, to: BRATS2017_LABELS, labels: [0, 1, 2, 3], expected: [0, 2, 1, 4] },
    { from: BRATS2017_LABELS, to: MSD_LABELS, labels: [0, 2, 1, 4], expected: [0, 1, 2, 3] },
    { from: BRATS2017_LABELS, to: BRATS2023_LABELS, labels: [4, 2, 1, 0], expected: [3, 2, 1, 0] },
  ])('$from.name → $to.name', ({ from, to, labels, expected }) => {
    expect(Array.from(convertLabels(labels, from, to))).toEqual(expected);
  });

  it('rejects a value that is not a label of the source, and a target without a label for a region set', () => {
    expect(() => convertLabels([0, 4], MSD_LABELS, BRATS2017_LABELS)).toThrow(/holds value 4, not a msd label/);
    expect(() => convertLabels([0, 1], MSD_LABELS, WHOLE_TUMOUR_LABELS)).toThrow(ArgumentError);
  });
});

describe('label tables', () => {
  it('allowedLabels holds background and every label value', () => {
    expect([...allowedLabels(BRATS2017_LABELS)].sort()).toEqual([0, 1, 2, 4]);
    expect([...allowedLabels(WHOLE_TUMOUR_LABELS)].sort()).toEqual([0, 1]);
  });

  it('getLabelMapping finds the named mappings and lists them for an unknown name', () => {
    expect(Object.keys(LABEL_MAPPINGS)).toEqual(['msd', 'brats2017', 'brats2023', 'wt']);
    expect(getLabelMapping('brats2023')).toBe(BRATS2023_LABELS);
    expect(() => getLabelMapping('brats2018')).toThrow("getLabelMapping(): argument 'name' 'brats2018' is unknown; known: msd, brats2017, brats2023, wt");
  });

  it('regions are WT, TC, ET in that order', () => {
    expect(REGION_NAMES).toEqual(['WT', 'TC', 'ET']);
  });
});

describe('errors', () => {
  it('carry a stable code, their fields and their class name, and share the base class', () => {
    const argument = new ArgumentError('computeDice', 'options.threshold', 'must be a finite number');
    expect(argument).toBeInstanceOf(BratsError);
    expect(argument).toBeInstanceOf(Error);
    expect(argument.code).toBe('ARGUMENT');
    expect(argument.name).toBe('ArgumentError');
    expect(argument.message).toBe("computeDice(): argument 'options.threshold' must be a finite number");
    const shape = new ShapeMismatchError('mask', [2, 3], [3, 2]);
    expect(shape).toBeInstanceOf(BratsError);
    expect(shape.code).toBe('SHAPE_MISMATCH');
    expect(shape.message).toBe('mask: expected shape [2, 3], found [3, 2]');
    expect([shape.expected, shape.actual]).toEqual([[2, 3], [3, 2]]);
  });
});
