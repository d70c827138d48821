import { describe, expect, it } from 'vitest';
import { ArgumentError } from './errors.js';
import { CANONICAL_CHANNELS } from './layouts/channels.js';
import type { CanonicalCase } from './layouts/dataset.js';
import { MSD_LABELS, regionMask } from './regions.js';
import { ThresholdedCrop, prepareSlices, preprocessCase, resolvePreprocessing, restoreCrop, restoreCropThresholded, type PreprocessOptions } from './preprocess.js';
import { createVolume, type Volume } from './volume.js';

/** A case whose channel c holds value f(i, j, k) + channelOffset * c, so every voxel's origin can be recognised. */
function makeCase(
  shape: [number, number, number],
  f: (i: number, j: number, k: number) => number,
  labelAt?: (i: number, j: number, k: number) => number,
  channelOffset = 100,
): CanonicalCase {
  const [nx, ny, nz] = shape;
  const channel = (c: number): Volume<'float32'> => {
    const data = new Float32Array(nx * ny * nz);
    for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) data[i + nx * (j + ny * k)] = f(i, j, k) + channelOffset * c;
    return createVolume('float32', data, shape);
  };
  const result: CanonicalCase = {
    id: 'toy',
    layout: 'msd',
    channels: [channel(0), channel(1), channel(2), channel(3)],
    labelMapping: MSD_LABELS,
    ref: { id: 'toy', layout: 'msd', images: [] },
  };
  if (labelAt) {
    const labels = new Uint8Array(nx * ny * nz);
    for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) labels[i + nx * (j + ny * k)] = labelAt(i, j, k);
    result.labels = createVolume('uint8', labels, shape);
  }
  return result;
}

/** Scan shapes and crop windows: inside the scan, and larger than it on some or every axis (zero padding). */
const CROP_WINDOWS = [
  ['inside the scan', [9, 8, 7], [5, 4, 3]],
  ['larger than the scan on two axes (zero padding)', [7, 5, 4], [6, 8, 6]],
  ['larger on every axis', [3, 4, 2], [5, 6, 4]],
] as const;

describe('preprocessCase', () => {
  it.each(CROP_WINDOWS)('gathers the crop window voxel for voxel as a plain index walk does: %s', (_name, shape, crop) => {
    const seeded = (i: number, j: number, k: number): number => Math.sin(i * 12.9898 + j * 78.233 + k * 37.719) * 43758.5453 % 7;
    // Every mode, the four BraTS channels (their own loops) and three in another order (the general loops), float32
    // channels and int16 ones (a case keeps its stored integers).
    const variants = (['block', 'nonzero'] as const).flatMap((normalize) =>
      [CANONICAL_CHANNELS, ['T2w', 'FLAIR', 'T1gd'] as const].flatMap((channels) => (['float32', 'int16'] as const).map((dtype) => ({ normalize, channels, dtype }))),
    );
    for (const { normalize, channels, dtype } of variants) {
      const floats = makeCase([...shape], (i, j, k) => ((i + j + k) % 4 === 0 ? 0 : dtype === 'int16' ? Math.round(seeded(i, j, k) * 1000) : seeded(i, j, k)));
      const caseData: CanonicalCase =
        dtype === 'float32' ? floats : { ...floats, channels: floats.channels.map((channel) => createVolume('int16', Int16Array.from(channel.data), channel.shape)) as unknown as CanonicalCase['channels'] };
      const result = preprocessCase(caseData, { cropSize: [...crop], normalize, channels });
      const [nx, ny, nz] = shape;
      const [height, width, depth] = crop;
      const [i0, j0, k0] = result.params.cropStart;
      expect(result.shape).toEqual([depth, height, width, channels.length]);
      channels.forEach((name, c) => {
        const channel = caseData.channels[CANONICAL_CHANNELS.indexOf(name)]!;
        // The window walked in the slices' own [k][i][j] order, zero outside the scan, then z-scored as documented.
        const block: number[] = [];
        for (let z = 0; z < depth; z++) {
          for (let h = 0; h < height; h++) {
            for (let w = 0; w < width; w++) {
              const [i, j, k] = [i0 + h, j0 + w, k0 + z];
              block.push(i >= 0 && i < nx && j >= 0 && j < ny && k >= 0 && k < nz ? Math.fround(channel.data[i + nx * (j + ny * k)]!) : 0);
            }
          }
        }
        const counted = normalize === 'nonzero' ? block.filter((value) => value !== 0) : block;
        const mean = counted.reduce((a, b) => a + b, 0) / counted.length;
        // Four integer channels get exact statistics: the variance's numerator n·Σx² − (Σx)² in integers, then one
        // division and a square root. Other channels: squared deviations from the mean summed in the image's order.
        const exact = dtype === 'int16' && channels.length === 4;
        const integerNumerator = (): bigint =>
          BigInt(counted.length) * counted.reduce((a, b) => a + BigInt(b) * BigInt(b), 0n) - counted.reduce((a, b) => a + BigInt(b), 0n) ** 2n;
        const std = exact
          ? Math.sqrt(Number(integerNumerator()) / counted.length ** 2)
          : Math.sqrt(counted.reduce((a, b) => a + (b - mean) * (b - mean), 0) / counted.length);
        const variant = `${normalize}, ${channels.join('/')}, ${dtype}`;
        expect(result.params.channelStats[c], variant).toEqual({ mean, std });
        // Bit for bit: the same values and the same arithmetic as the documented z-score.
        const scale = 1 / std;
        const stride = channels.length;
        block.forEach((value, v) => {
          const expected = Math.fround(normalize === 'nonzero' && value === 0 ? 0 : (value - mean) * scale);
          expect(Object.is(result.image[v * stride + c], expected), `${variant}: voxel ${v} channel ${c}: ${result.image[v * stride + c]} vs ${expected}`).toBe(true);
        });
      });
    }
  });

  it.each(CROP_WINDOWS)('cuts the masks and counts tumour voxels as regionMask over the whole scan and an index walk do: %s', (_name, shape, crop) => {
    // Every Decathlon label (0 background, 1 oedema, 2 non-enhancing, 3 enhancing) scattered over the scan.
    const labelAt = (i: number, j: number, k: number): number => (i * 7 + j * 3 + k * 5) % 4;
    const caseData = makeCase([...shape], (i, j, k) => i + j + k + 1, labelAt);
    const [nx, ny, nz] = shape;
    const [height, width, depth] = crop;
    for (const target of ['wt', 'regions'] as const) {
      const result = preprocessCase(caseData, { cropSize: [...crop], target });
      const regions = target === 'wt' ? (['WT'] as const) : (['WT', 'TC', 'ET'] as const);
      // The whole scan's masks (WT for the wt target: any label above 0), then the window walked in [k][i][j] order.
      const full = regions.map((region) => (target === 'wt' ? caseData.labels!.data.map((value) => (value > 0 ? 1 : 0)) : regionMask(caseData.labels!.data, MSD_LABELS, region)));
      const [i0, j0, k0] = result.params.cropStart;
      const expectedMask: number[] = [];
      const expectedTumour: number[] = [];
      for (let z = 0; z < depth; z++) {
        let tumour = 0;
        for (let h = 0; h < height; h++) {
          for (let w = 0; w < width; w++) {
            const [i, j, k] = [i0 + h, j0 + w, k0 + z];
            const inside = i >= 0 && i < nx && j >= 0 && j < ny && k >= 0 && k < nz;
            const index = i + nx * (j + ny * k);
            for (const mask of full) expectedMask.push(inside ? mask[index]! : 0);
            if (inside && caseData.labels!.data[index]! > 0) tumour++;
          }
        }
        expectedTumour.push(tumour);
      }
      expect(Array.from(result.mask!), target).toEqual(expectedMask);
      expect(Array.from(result.tumourVoxels!), target).toEqual(expectedTumour);
      // Not vacuous: every region has voxels in the window.
      for (let r = 0; r < regions.length; r++) expect(expectedMask.filter((value, v) => v % regions.length === r && value === 1).length).toBeGreaterThan(0);
    }
  });

  it('centre-crops like the seed: 240x240x155 to 144 keeps x,y 48..191 and z 5..148', () => {
    const settings = resolvePreprocessing();
    expect(settings).toEqual({ cropSize: [144, 144, 144], cropMode: 'center', normalize: 'block', target: 'wt', channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'] });
    // A thin fake scan keeps the test light while checking the rule per axis: floor((n - s) / 2).
    const out = preprocessCase(makeCase([240, 4, 155], (i) => i), { crop: [144, 2, 144], normalize: 'block' });
    expect(out.params.cropStart).toEqual([48, 1, 5]);
    expect(out.shape).toEqual([144, 144, 2, 4]);
  });

  it('accepts resolved settings, as a model manifest records them', () => {
    const settings = resolvePreprocessing({ crop: [2, 2, 1], normalize: 'nonzero', channels: ['T2w'] });
    expect(resolvePreprocessing(settings)).toEqual(settings);
    const out = preprocessCase(makeCase([4, 3, 2], (i) => i + 1), settings);
    expect(out.shape).toEqual([1, 2, 2, 1]);
    expect(out.params.normalize).toBe('nonzero');
  });

  it('lays slices out as [z][i][j][channel] and normalises each channel over the block', () => {
    // 4x3x2 scan, crop 2x3x2 from i=1: values i + 10 j + 100 k (channel 0).
    const out = preprocessCase(makeCase([4, 3, 2], (i, j, k) => i + 10 * j + 1000 * k), { crop: [2, 3, 2], channels: ['FLAIR', 'T2w'] });
    expect(out.params.cropStart).toEqual([1, 0, 0]);
    const raw: number[] = [];
    for (let k = 0; k < 2; k++) for (let i = 1; i < 3; i++) for (let j = 0; j < 3; j++) raw.push(i + 10 * j + 1000 * k);
    const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
    const std = Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / raw.length);
    expect(out.params.channelStats[0]!.mean).toBeCloseTo(mean, 9);
    expect(out.params.channelStats[0]!.std).toBeCloseTo(std, 9);
    expect(out.params.channelStats[1]!.mean).toBeCloseTo(mean + 300, 9);
    // Element (z=1, h=0 -> i=1, w=2 -> j=2, channel 0)
    const index = ((1 * 2 + 0) * 3 + 2) * 2 + 0;
    expect(out.image[index]).toBeCloseTo((1 + 20 + 1000 - mean) / std, 5);
    // Channel 1 is T2w = channel 0 + 300, normalised to the same values.
    expect(out.image[index + 1]).toBeCloseTo(out.image[index]!, 5);
  });

  it('gives uint16 channels whose sums of squares pass 2^53 the general statistics, not inexact integer ones', () => {
    // 2.2 M voxels near 65535: the sum of squares is about 9.4e15, past 2^53 (9.0e15), where float64 integer sums
    // stop being exact; the statistics must then be those of the squared deviations summed in the image's order.
    const shape = [130, 130, 130] as const;
    const value = (i: number, j: number, k: number): number => 65535 - ((i * 7 + j * 13 + k * 3) % 50);
    const floats = makeCase([...shape], value);
    const caseData: CanonicalCase = { ...floats, channels: floats.channels.map((channel) => createVolume('uint16', Uint16Array.from(channel.data), channel.shape)) as unknown as CanonicalCase['channels'] };
    const result = preprocessCase(caseData, { crop: [...shape] });
    const block = caseData.channels[0].data;
    // The image's [k][i][j] order: the scan's i-fastest voxels visited k, then i, then j.
    let sum = 0;
    for (let k = 0; k < 130; k++) for (let i = 0; i < 130; i++) for (let j = 0; j < 130; j++) sum += block[i + 130 * (j + 130 * k)]!;
    const mean = sum / block.length;
    let squares = 0;
    for (let k = 0; k < 130; k++) for (let i = 0; i < 130; i++) for (let j = 0; j < 130; j++) squares += (block[i + 130 * (j + 130 * k)]! - mean) ** 2;
    expect(result.params.channelStats[0]).toEqual({ mean, std: Math.sqrt(squares / block.length) });
  });

  it('normalises over non-zero voxels only in nonzero mode and keeps the background at 0', () => {
    const out = preprocessCase(makeCase([4, 1, 1], (i) => [0, 2, 4, 0][i]! ), { crop: [4, 1, 1], normalize: 'nonzero', channels: ['FLAIR'] });
    expect(out.params.channelStats[0]).toEqual({ mean: 3, std: 1 });
    expect(Array.from(out.image)).toEqual([0, -1, 1, 0]);
  });

  it('pads with zeros when the window is larger than the scan, and restoreCrop inverts the crop', () => {
    const scan = makeCase([3, 2, 2], (i, j, k) => 1 + i + 3 * j + 6 * k, (i) => (i === 1 ? 3 : 0));
    const out = preprocessCase(scan, { crop: [5, 2, 2], channels: ['FLAIR'], target: 'regions' });
    expect(out.params.cropStart).toEqual([-1, 0, 0]);
    expect(out.shape).toEqual([2, 5, 2, 1]);
    expect(out.mask!.length).toBe(2 * 5 * 2 * 3);
    // Label 3 (MSD enhancing) is in WT, TC and ET.
    expect(Array.from(out.mask!.slice(((0 * 5 + 2) * 2 + 0) * 3, ((0 * 5 + 2) * 2 + 0) * 3 + 3))).toEqual([1, 1, 1]);
    expect(Array.from(out.tumourVoxels!)).toEqual([2, 2]);
    const [wt, tc, et] = restoreCrop(out.mask!, [2, 5, 2, 3], out.params);
    expect(Array.from(wt!)).toEqual(Array.from(scan.labels!.data, (v) => (v > 0 ? 1 : 0)));
    expect(Array.from(tc!)).toEqual(Array.from(wt!));
    expect(Array.from(et!)).toEqual(Array.from(wt!));
  });

  it('centres a brain crop on the bounding box of non-zero voxels', () => {
    // Brain occupies i in 6..9 of 12; a 4-wide window starts at 6, not at the centre 4.
    const out = preprocessCase(makeCase([12, 1, 1], (i) => (i >= 6 && i <= 9 ? 5 : 0), undefined, 0), { crop: [4, 1, 1], cropMode: 'brain', channels: ['FLAIR'] });
    expect(out.params.cropStart).toEqual([6, 0, 0]);
  });

  it.each<[PreprocessOptions, string]>([
    [{ crop: 0 }, 'crop'],
    [{ normalize: 'zscore' as never }, 'normalize'],
    [{ channels: ['PD' as never] }, 'channels'],
    [{ channels: ['FLAIR', 'flair' as never] }, 'channels'],
  ])('rejects %j with an ArgumentError naming the argument', (options, argument) => {
    const error = (() => {
      try {
        resolvePreprocessing(options);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).argument).toBe(argument);
  });
});

describe('prepareSlices', () => {
  /**
   * A case of `dtype` channels. Slice k of the scan: for k % 4 === 0 blank (0); 1: one value per channel (`constant`
   * + c); 2: an image; 3: one value per channel but for channel 3 - (k >> 2) % 4, which holds an image.
   */
  const slicedCase = (shape: readonly [number, number, number], dtype: 'float32' | 'int16', constant: number): CanonicalCase => {
    const [nx, ny] = shape;
    const image = (index: number): number => Math.round(Math.sin(index * 12.9898) * 4000) / 7;
    const channels = CANONICAL_CHANNELS.map((_, c) => {
      const data = Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, (_, index) => {
        const k = Math.floor(index / (nx * ny));
        const kind = k % 4;
        const value = kind === 0 ? 0 : kind === 2 || (kind === 3 && c === 3 - ((k >> 2) % 4)) ? image(index + c) : constant + c;
        return dtype === 'int16' ? Math.round(value) : value;
      });
      return dtype === 'int16' ? createVolume('int16', Int16Array.from(data), [...shape]) : createVolume('float32', data, [...shape]);
    });
    return { ...makeCase([...shape], () => 0), channels: channels as unknown as CanonicalCase['channels'] };
  };

  it.each(CROP_WINDOWS)('fills any slices, in any order, with the bits of the image of preprocessCase: %s', (_name, shape, crop) => {
    for (const normalize of ['block', 'nonzero'] as const) {
      for (const channels of [CANONICAL_CHANNELS, ['T2w', 'FLAIR', 'T1gd'] as const]) {
        for (const dtype of ['float32', 'int16'] as const) {
          const variant = `${normalize}, ${channels.join('/')}, ${dtype}`;
          const caseData = slicedCase(shape, dtype, 37);
          const options = { cropSize: [...crop] as [number, number, number], normalize, channels };
          const whole = preprocessCase(caseData, options);
          const prepared = prepareSlices(caseData, options);
          expect(prepared.shape, variant).toEqual(whole.shape);
          expect(prepared.params, variant).toEqual(whole.params);
          const [depth, height, width, count] = whole.shape;
          const sliceValues = height * width * count;
          // Backwards, with a repeat, into an array that holds other values: every value is written.
          const indices = [...Array.from({ length: depth }, (_, z) => depth - 1 - z), 0];
          const out = new Float32Array(indices.length * sliceValues).fill(Number.NaN);
          prepared.fill(indices, out);
          indices.forEach((z, j) => {
            const expected = whole.image.subarray(z * sliceValues, (z + 1) * sliceValues);
            const got = out.subarray(j * sliceValues, (j + 1) * sliceValues);
            const first = got.findIndex((value, v) => !Object.is(value, expected[v]));
            expect(first, `${variant}: slice ${z}, value ${first}: ${got[first]} vs ${expected[first]}`).toBe(-1);
          });
        }
      }
    }
  });

  it.each(CROP_WINDOWS)('keys only slices whose every pixel is alike, equal keys only for equal inputs: %s', (_name, shape, crop) => {
    let unkeyed = 0;
    for (const normalize of ['block', 'nonzero'] as const) {
      for (const dtype of ['float32', 'int16'] as const) {
        for (const constant of [37, 0]) {
          const variant = `${normalize}, ${dtype}, constant slices ${constant}`;
          const caseData = slicedCase(shape, dtype, constant);
          const whole = preprocessCase(caseData, { cropSize: [...crop], normalize });
          const prepared = prepareSlices(caseData, { cropSize: [...crop], normalize });
          const [depth, height, width, count] = whole.shape;
          const sliceValues = height * width * count;
          const slice = (z: number): Float32Array => whole.image.subarray(z * sliceValues, (z + 1) * sliceValues);
          const flat = (z: number): boolean => slice(z).every((value, v) => Object.is(value, slice(z)[v % count]));
          const keys = Array.from({ length: depth }, (_, z) => prepared.constantKey(z));
          // Integers are compared before normalisation: in nonzero mode zero and a non-zero mean both become 0, so
          // a slice of those two values is alike only once normalised and may go unkeyed (it then runs). Elsewhere
          // normalising keeps distinct values distinct, and every flat slice has a key.
          const complete = !(normalize === 'nonzero' && dtype === 'int16');
          for (let z = 0; z < depth; z++) {
            if (keys[z] !== undefined) expect(flat(z), `${variant}: slice ${z} is keyed`).toBe(true);
            else if (complete) expect(flat(z), `${variant}: slice ${z} is not keyed`).toBe(false);
            for (let other = 0; other < depth; other++) {
              if (keys[z] === undefined || keys[other] === undefined) continue;
              const same = slice(z).every((value, v) => Object.is(value, slice(other)[v]));
              expect(keys[z] === keys[other], `${variant}: slices ${z} and ${other}`).toBe(same);
            }
          }
          expect(keys.some((key) => key !== undefined), variant).toBe(true);
          unkeyed += keys.filter((key) => key === undefined).length;
        }
      }
    }
    // Not vacuous: slices with an image go unkeyed.
    expect(unkeyed).toBeGreaterThan(0);
  });

  it('fills another window of the case with the statistics it is given: (x - mean) / std, zero beyond the scan', () => {
    // A 9 x 8 x 7 case; a window of 5 x 4 x 3 at (6, -1, 2): i 6..8 then 2 rows beyond the scan, j from -1.
    for (const dtype of ['float32', 'int16'] as const) {
      for (const normalize of ['block', 'nonzero'] as const) {
        const caseData = slicedCase([9, 8, 7], dtype, 37);
        const own = prepareSlices(caseData, { crop: [5, 4, 3], normalize });
        const stats = [
          { mean: 3, std: 2 },
          { mean: -1, std: 4 },
          { mean: 0.5, std: 0 },
          { mean: 10, std: 0.25 },
        ];
        const prepared = prepareSlices(caseData, { crop: [5, 4, 3], normalize }, { cropStart: [6, -1, 2], channelStats: stats });
        expect(prepared.params.cropStart).toEqual([6, -1, 2]);
        expect(prepared.params.channelStats).toEqual(stats);
        const out = new Float32Array(3 * 5 * 4 * 4);
        prepared.fill([0, 1, 2], out);
        for (let z = 0; z < 3; z++) for (let h = 0; h < 5; h++) for (let w = 0; w < 4; w++) for (let c = 0; c < 4; c++) {
          const [i, j, k] = [6 + h, -1 + w, 2 + z];
          const inside = i < 9 && j >= 0;
          const x = inside ? caseData.channels[c]!.data[i + 9 * (j + 8 * k)]! : 0;
          const { mean, std } = stats[c]!;
          // A channel without spread has its mean subtracted only; nonzero mode leaves zeros at zero.
          const expected = normalize === 'nonzero' && x === 0 ? 0 : (x - mean) * (std > 0 ? 1 / std : 1);
          // float32 arithmetic: within a relative 1e-6.
          const got = out[((z * 5 + h) * 4 + w) * 4 + c]!;
          expect(Math.abs(got - expected), `${dtype} ${normalize} (${i}, ${j}, ${k}) channel ${c}: ${got} vs ${expected}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(expected)));
        }
        // The case's own window is untouched by the other.
        expect(own.params.cropStart).toEqual([2, 2, 2]);
      }
    }
    const caseData = slicedCase([9, 8, 7], 'int16', 37);
    expect(() => prepareSlices(caseData, { crop: [5, 4, 3] }, { cropStart: [0, 0.5, 0], channelStats: [{ mean: 0, std: 1 }] })).toThrow(/window.cropStart/);
    expect(() => prepareSlices(caseData, { crop: [5, 4, 3] }, { cropStart: [0, 0, 0], channelStats: [{ mean: 0, std: 1 }] })).toThrow(/window.channelStats/);
    expect(() => prepareSlices(caseData, { crop: [5, 4, 3] }, { cropStart: [0, 0, 0], channelStats: [0, 1, 2, 3].map(() => ({ mean: Number.NaN, std: 1 })) })).toThrow(ArgumentError);
  });

  it('refuses an array of the wrong size and a slice outside the block with an ArgumentError', () => {
    for (const dtype of ['float32', 'int16'] as const) {
      const prepared = prepareSlices(slicedCase([9, 8, 7], dtype, 37), { crop: [5, 4, 3] });
      const sliceValues = 5 * 4 * 4;
      expect(() => prepared.fill([0, 1], new Float32Array(sliceValues)), dtype).toThrow(ArgumentError);
      expect(() => prepared.fill([3], new Float32Array(sliceValues)), dtype).toThrow(/3 is not a slice of a block of depth 3/);
      expect(() => prepared.fill([-1], new Float32Array(sliceValues)), dtype).toThrow(ArgumentError);
    }
  });
});

describe('restoreCropThresholded', () => {
  it.each(CROP_WINDOWS)('gives the masks of thresholding restoreCrop, voxel for voxel: %s', (_name, shape, crop) => {
    const out = preprocessCase(makeCase([...shape], (i, j, k) => i + j + k), { crop: [...crop] });
    const [height, width, depth] = crop;
    const K = 3;
    const block = Float32Array.from({ length: depth * height * width * K }, (_, v) => Math.abs(Math.sin(v * 12.9898) * 43758.5453) % 1);
    // A value exactly at a threshold is not above it; a negative threshold makes every voxel outside the window 1.
    block[5] = 0.5;
    for (const thresholds of [[0.5, 0.3, 0.8], [-0.1, 0.5, 1]]) {
      const restored = restoreCrop(block, [depth, height, width, K], out.params);
      const expected = restored.map((volume, r) => Array.from(volume, (value) => (value > thresholds[r]! ? 1 : 0)));
      const masks = restoreCropThresholded(block, [depth, height, width, K], out.params, thresholds);
      expect(masks.map((mask) => Array.from(mask))).toEqual(expected);
      expect(expected.flat().filter((value) => value === 1).length).toBeGreaterThan(0);
    }
  });

  it('refuses thresholds that are not one per channel, and a block of the wrong size', () => {
    const out = preprocessCase(makeCase([4, 4, 2], (i) => i), { crop: [2, 2, 2] });
    expect(() => restoreCropThresholded(new Float32Array(16), [2, 2, 2, 2], out.params, [0.5])).toThrow(ArgumentError);
    expect(() => restoreCropThresholded(new Float32Array(15), [2, 2, 2, 2], out.params, [0.5, 0.5])).toThrow(ArgumentError);
  });
});

describe('ThresholdedCrop', () => {
  it.each(CROP_WINDOWS)('gives the masks of restoreCropThresholded once every slice is added, in any order and pieces: %s', (_name, shape, crop) => {
    const out = preprocessCase(makeCase([...shape], (i, j, k) => i + j + k), { crop: [...crop] });
    const [height, width, depth] = crop;
    const K = 2;
    const blockShape = [depth, height, width, K] as const;
    const block = Float32Array.from({ length: depth * height * width * K }, (_, v) => Math.abs(Math.sin(v * 78.233) * 43758.5453) % 1);
    for (const thresholds of [[0.5, 0.2], [-0.1, 0.7]]) {
      const whole = restoreCropThresholded(block, blockShape, out.params, thresholds);
      const pieces = new ThresholdedCrop(blockShape, out.params, thresholds);
      // The second half as one range, then the first half one slice at a time from its end.
      const half = Math.floor(depth / 2);
      pieces.addSlices(block, half, depth);
      for (let z = half - 1; z >= 0; z--) pieces.addSlices(block, z, z + 1);
      expect(pieces.masks.map((mask) => Array.from(mask))).toEqual(whole.map((mask) => Array.from(mask)));
      // Before its slices are added a window voxel holds the fill (0 > threshold), not its answer.
      const partial = new ThresholdedCrop(blockShape, out.params, thresholds);
      partial.addSlices(block, 0, Math.floor(depth / 2));
      const differs = partial.masks.some((mask, r) => mask.some((value, v) => value !== whole[r]![v]));
      expect(differs).toBe(true);
    }
  });

  it('refuses a block of another size, a range outside the slices and thresholds that are not one per channel', () => {
    const out = preprocessCase(makeCase([4, 4, 2], (i) => i), { crop: [2, 2, 2] });
    const masks = new ThresholdedCrop([2, 2, 2, 1], out.params, [0.5]);
    expect(() => masks.addSlices(new Float32Array(7), 0, 1)).toThrow(ArgumentError);
    expect(() => masks.addSlices(new Float32Array(8), 1, 3)).toThrow(ArgumentError);
    expect(() => masks.addSlices(new Float32Array(8), -1, 1)).toThrow(ArgumentError);
    expect(() => new ThresholdedCrop([2, 2, 2, 2], out.params, [0.5])).toThrow(ArgumentError);
    expect(() => new ThresholdedCrop([3, 2, 2, 1], out.params, [0.5])).toThrow(ArgumentError);
  });
});
