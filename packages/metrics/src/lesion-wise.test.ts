import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError, ShapeMismatchError } from './errors.js';
import { evaluateCase } from './evaluate.js';
import { evaluateCases } from './evaluate-cases.js';
import { evaluationToCsv, evaluationToJson } from './evaluation-output.js';
import { BRATS2017_LABELS, regionMask } from './labels.js';
import { DEFAULT_LESION_WISE, LESION_WISE_CHALLENGES, computeLesionWise } from './lesion-wise.js';
import { computeHd95 } from './surface.js';
import { maskWhere, randomBlobs, seededRandom } from './test-helpers.js';
import type { GridShape, GridSpacing } from './validate.js';

const SHAPE: GridShape = [40, 12, 12];

/** A cube of `side` voxels whose lowest corner is (i, j, k). */
const cube = (i: number, j: number, k: number, side: number) => (a: number, b: number, c: number): boolean =>
  a >= i && a < i + side && b >= j && b < j + side && c >= k && c < k + side;
const union = (...parts: ((a: number, b: number, c: number) => boolean)[]) => (a: number, b: number, c: number): boolean => parts.some((part) => part(a, b, c));

describe('computeLesionWise: hand-computed cases', () => {
  it('scores two empty masks Dice 1 and HD95 0, with no lesion', () => {
    const empty = new Uint8Array(40 * 12 * 12);
    expect(computeLesionWise(empty, empty, { shape: SHAPE })).toEqual({
      dice: 1, hd95: 0, truePositives: 0, falsePositives: 0, falseNegatives: 0, lesions: [], parameters: DEFAULT_LESION_WISE,
    });
  });

  it('scores a perfect prediction of one 64 mm³ lesion Dice 1 and HD95 0', () => {
    const reference = maskWhere(SHAPE, cube(2, 2, 2, 4));
    const result = computeLesionWise(reference, reference, { shape: SHAPE });
    expect([result.dice, result.hd95, result.truePositives, result.falsePositives, result.falseNegatives]).toEqual([1, 0, 1, 0, 0]);
    expect(result.lesions).toEqual([{ volumeMm3: 64, dice: 1, hd95: 0, matchedComponents: 1, counted: true }]);
  });

  it('gives a missed lesion Dice 0 and the 374 mm penalty, and so a stray component', () => {
    const reference = maskWhere(SHAPE, cube(2, 2, 2, 4));
    const missed = computeLesionWise(new Uint8Array(reference.length), reference, { shape: SHAPE });
    expect([missed.dice, missed.hd95, missed.truePositives, missed.falsePositives, missed.falseNegatives]).toEqual([0, 374, 0, 0, 1]);
    const stray = computeLesionWise(reference, new Uint8Array(reference.length), { shape: SHAPE });
    expect([stray.dice, stray.hd95, stray.truePositives, stray.falsePositives, stray.falseNegatives]).toEqual([0, 374, 0, 1, 0]);
  });

  it('merges two lesions 6 voxels apart (their 3-step dilations touch) and keeps them apart at 7', () => {
    // Cube one covers i = 2..5; its dilation reaches i = 8. A cube from i = 12 reaches down to i = 9: one lesion.
    // From i = 13 it reaches down to i = 10, and i = 9 stays empty: two lesions.
    const first = cube(2, 2, 2, 4);
    for (const [gap, lesions] of [[6, 1], [7, 2]] as const) {
      const second = cube(6 + gap, 2, 2, 4);
      const reference = maskWhere(SHAPE, union(first, second));
      const prediction = maskWhere(SHAPE, first);
      const result = computeLesionWise(prediction, reference, { shape: SHAPE });
      expect(result.lesions).toHaveLength(lesions);
      if (lesions === 1) {
        // One 128 mm³ lesion, half of it predicted: 2·64 / (64 + 128).
        expect(result.dice).toBeCloseTo(2 / 3, 12);
        expect(result.hd95).toBe(computeHd95(prediction, reference, { shape: SHAPE }));
        expect([result.truePositives, result.falsePositives, result.falseNegatives]).toEqual([1, 0, 0]);
      } else {
        // The first lesion found exactly, the second missed: (1 + 0) / 2 and (0 + 374) / 2.
        expect([result.dice, result.hd95, result.truePositives, result.falsePositives, result.falseNegatives]).toEqual([0.5, 187, 1, 0, 1]);
      }
    }
  });

  it('counts a component that comes within the dilation of a lesion as its match, not as a false positive', () => {
    // The prediction lies 2 voxels beyond the lesion's face (i = 8..9 against 2..5): no overlap, but inside the dilation.
    const reference = maskWhere(SHAPE, cube(2, 2, 2, 4));
    const prediction = maskWhere(SHAPE, (a, b, c) => a >= 8 && a < 10 && b >= 2 && b < 6 && c >= 2 && c < 6);
    const result = computeLesionWise(prediction, reference, { shape: SHAPE });
    expect([result.dice, result.truePositives, result.falsePositives, result.falseNegatives]).toEqual([0, 1, 0, 0]);
    expect(result.hd95).toBe(computeHd95(prediction, reference, { shape: SHAPE }));
    expect(result.hd95).toBeLessThan(10);
  });

  it('leaves a lesion of 50 mm³ or less out of the score, measured in mm³ with the spacing', () => {
    // A 27-voxel lesion far from a 64-voxel one, both found exactly, plus nothing else.
    const small = cube(30, 4, 4, 3);
    const reference = maskWhere(SHAPE, union(cube(2, 2, 2, 4), small));
    const onlyLarge = maskWhere(SHAPE, cube(2, 2, 2, 4));
    const oneMm = computeLesionWise(onlyLarge, reference, { shape: SHAPE });
    expect(oneMm.lesions.map((lesion) => [lesion.volumeMm3, lesion.counted])).toEqual([[64, true], [27, false]]);
    expect([oneMm.dice, oneMm.hd95, oneMm.truePositives, oneMm.falseNegatives]).toEqual([1, 0, 1, 0]);
    // At 2 mm the small lesion is 216 mm³ and counts: missed, it halves the Dice.
    const twoMm = computeLesionWise(onlyLarge, reference, { shape: SHAPE, spacing: [2, 2, 2] });
    expect(twoMm.lesions.map((lesion) => lesion.volumeMm3)).toEqual([512, 216]);
    expect([twoMm.dice, twoMm.hd95, twoMm.falseNegatives]).toEqual([0.5, 187, 1]);
    // Exactly 50 mm³ (5 x 5 x 2 voxels) is not above the limit.
    const fifty = maskWhere(SHAPE, union(cube(2, 2, 2, 4), (a, b, c) => a >= 30 && a < 35 && b >= 2 && b < 7 && c >= 2 && c < 4));
    expect(computeLesionWise(onlyLarge, fifty, { shape: SHAPE }).lesions.map((lesion) => [lesion.volumeMm3, lesion.counted])).toEqual([[64, true], [50, false]]);
    // A small lesion still claims the component that reaches it: predicting it is no false positive.
    const both = computeLesionWise(reference, reference, { shape: SHAPE });
    expect([both.dice, both.falsePositives]).toEqual([1, 0]);
    // Only below-limit lesions and no stray component: nothing to score, Dice 1 and HD95 0.
    const smallOnly = maskWhere(SHAPE, small);
    expect(computeLesionWise(new Uint8Array(smallOnly.length), smallOnly, { shape: SHAPE })).toMatchObject({ dice: 1, hd95: 0, falseNegatives: 0 });
  });

  it('adds a stray component far away to the denominator, with the penalty', () => {
    const reference = maskWhere(SHAPE, cube(2, 2, 2, 4));
    const prediction = maskWhere(SHAPE, union(cube(2, 2, 2, 4), cube(34, 8, 8, 2)));
    const result = computeLesionWise(prediction, reference, { shape: SHAPE });
    expect([result.dice, result.hd95, result.truePositives, result.falsePositives, result.falseNegatives]).toEqual([0.5, 187, 1, 1, 0]);
  });

  it('uses the challenge parameters it is given: BraTS-MET keeps lesions apart that BraTS-GLI merges', () => {
    const reference = maskWhere(SHAPE, union(cube(2, 2, 2, 4), cube(10, 2, 2, 4)));
    expect(computeLesionWise(reference, reference, { shape: SHAPE }).lesions).toHaveLength(1);
    const met = computeLesionWise(reference, reference, { shape: SHAPE, ...LESION_WISE_CHALLENGES['BraTS-MET'] });
    expect(met.lesions).toHaveLength(2);
    expect(met.parameters).toEqual({ dilation: 1, minimumVolumeMm3: 2, penaltyMm: 374 });
  });

  it('refuses bad parameters and mismatched masks with the package errors', () => {
    const mask = new Uint8Array(40 * 12 * 12);
    expect(() => computeLesionWise(mask, mask, { shape: SHAPE, dilation: 1.5 })).toThrow(ArgumentError);
    expect(() => computeLesionWise(mask, mask, { shape: SHAPE, dilation: 1.5 })).toThrow(/computeLesionWise\(\): argument 'options\.dilation' must be an integer ≥ 0, found 1\.5/);
    expect(() => computeLesionWise(mask, mask, { shape: SHAPE, penaltyMm: Number.NaN })).toThrow(/options\.penaltyMm/);
    expect(() => computeLesionWise(mask, new Uint8Array(5), { shape: SHAPE })).toThrow(ShapeMismatchError);
  });
});

// The official scorer's steps in scipy (test/official_lesion_wise.py), an independent reference.
const OFFICIAL_STEPS = readFileSync(new URL('../test/official_lesion_wise.py', import.meta.url), 'utf8');

const python = referencePython(['scipy', 'numpy']);
const scratch = mkdtempSync(path.join(tmpdir(), 'brats-lesions-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(!python)(`computeLesionWise against the official steps in scipy${python ? '' : ' (skipped: /usr/bin/python3 with scipy and numpy is not available)'}`, () => {
  it.each([
    ['scattered blobs, 1 mm, BraTS-GLI', 11, [48, 40, 30], [1, 1, 1], 'BraTS-GLI'],
    ['scattered blobs, anisotropic voxels, BraTS-GLI', 12, [48, 40, 30], [1.2, 0.9, 2], 'BraTS-GLI'],
    ['scattered blobs, BraTS-MET (dilation 1, 2 mm³)', 13, [48, 40, 30], [1, 1, 1], 'BraTS-MET'],
    ['many small blobs, BraTS-MEN', 14, [60, 50, 20], [1, 1, 1], 'BraTS-MEN'],
  ] as const)('%s', (_name, seed, shape, spacing, challenge) => {
    const random = seededRandom(seed);
    const grid = shape as unknown as GridShape;
    // Several lesions of many sizes; the prediction keeps some, moves some, misses some and adds strays.
    const small = (count: number): Uint8Array => {
      const mask = new Uint8Array(grid[0] * grid[1] * grid[2]);
      for (let b = 0; b < count; b++) {
        const [ci, cj, ck] = [random() * grid[0], random() * grid[1], random() * grid[2]];
        const radius = 1 + random() * 3.5;
        for (let k = 0; k < grid[2]; k++) for (let j = 0; j < grid[1]; j++) for (let i = 0; i < grid[0]; i++) {
          if ((i - ci) ** 2 + (j - cj) ** 2 + (k - ck) ** 2 <= radius * radius) mask[i + grid[0] * (j + grid[1] * k)] = 1;
        }
      }
      return mask;
    };
    const reference = small(14);
    const large = randomBlobs(grid, 1, random);
    for (let v = 0; v < reference.length; v++) reference[v] ||= large[v]!;
    const prediction = new Uint8Array(reference.length);
    const noise = small(6);
    for (let v = 0; v < reference.length; v++) {
      const [i, j, k] = [v % grid[0], Math.floor(v / grid[0]) % grid[1], Math.floor(v / (grid[0] * grid[1]))];
      // Keep the reference where i + j + k is not a multiple of 7 (a sparse lattice of holes), drop its top layer of j.
      prediction[v] = (reference[v] === 1 && (i + j + k) % 7 !== 0 && j < grid[1] - 8) || noise[v] === 1 ? 1 : 0;
    }
    const parameters = LESION_WISE_CHALLENGES[challenge];
    const ours = computeLesionWise(prediction, reference, { shape: grid, spacing: spacing as unknown as GridSpacing, ...parameters });
    writeFileSync(path.join(scratch, 'p.raw'), prediction);
    writeFileSync(path.join(scratch, 'r.raw'), reference);
    const theirs = runPythonJson<{ dice: number; hd95: number; truePositives: number; falsePositives: number; falseNegatives: number; lesions: { volume: number; dice: number; hd95: number; hits: number }[] }>(
      python!,
      OFFICIAL_STEPS,
      [path.join(scratch, 'p.raw'), path.join(scratch, 'r.raw'), JSON.stringify(shape), JSON.stringify(spacing), String(parameters.dilation), String(parameters.minimumVolumeMm3), String(parameters.penaltyMm)],
    );
    // The draw is rich enough to test something: several lesions, some left out by volume, strays and misses.
    expect(theirs.lesions.length).toBeGreaterThan(3);
    expect(theirs.falsePositives + theirs.falseNegatives).toBeGreaterThan(0);
    expect([ours.truePositives, ours.falsePositives, ours.falseNegatives]).toEqual([theirs.truePositives, theirs.falsePositives, theirs.falseNegatives]);
    // Lesions in the same order (first voxel in i-j-k order: scipy numbers components in C order, so sort both).
    const key = (lesion: { volume: number; dice: number }): string => `${lesion.volume.toFixed(6)}:${lesion.dice.toFixed(12)}`;
    expect(ours.lesions.map((lesion) => key({ volume: lesion.volumeMm3, dice: lesion.dice })).sort()).toEqual(theirs.lesions.map(key).sort());
    expect(ours.dice).toBeCloseTo(theirs.dice, 12);
    expect(ours.hd95).toBeCloseTo(theirs.hd95, 9);
  });
});

describe('lesion-wise scores through evaluateCase, evaluateCases and the written forms', () => {
  // BraTS 2017 labels: a core (1) of 64 voxels inside oedema (2), an enhancing blob (4) and a stray enhancing voxel pair.
  const reference = maskWhere(SHAPE, union(cube(2, 2, 2, 6), cube(20, 2, 2, 4)));
  const core = maskWhere(SHAPE, cube(3, 3, 3, 4));
  const referenceLabels = Uint8Array.from(reference, (value, v) => (core[v] ? 4 : value ? 2 : 0));
  const stray = maskWhere(SHAPE, cube(34, 8, 8, 2));
  const predictionLabels = Uint8Array.from(referenceLabels, (value, v) => (stray[v] ? 4 : v % 5 === 0 && value === 2 ? 0 : value));
  const input = { prediction: predictionLabels, predictionMapping: BRATS2017_LABELS, reference: referenceLabels, referenceMapping: BRATS2017_LABELS, shape: SHAPE, spacing: [1, 1, 1] as const, caseId: 'c1' };

  it('scores each region as computeLesionWise does on its masks, and only when asked', () => {
    expect(evaluateCase(input).regions.WT!.lesionWise).toBeUndefined();
    const evaluation = evaluateCase(input, { convention: 'brats', lesionWise: LESION_WISE_CHALLENGES['BraTS-GLI'] });
    expect(evaluation.lesionWise).toEqual(DEFAULT_LESION_WISE);
    for (const region of ['WT', 'TC', 'ET'] as const) {
      const expected = computeLesionWise(regionMask(predictionLabels, BRATS2017_LABELS, region), regionMask(referenceLabels, BRATS2017_LABELS, region), { shape: SHAPE });
      const { lesions: _lesions, parameters: _parameters, ...scores } = expected;
      expect(evaluation.regions[region]!.lesionWise).toEqual(scores);
    }
    // WT: two lesions, the far one's stray pair a false positive; ET: one lesion found exactly and the same stray.
    expect(evaluation.regions.WT!.lesionWise).toMatchObject({ truePositives: 2, falsePositives: 1, falseNegatives: 0 });
    expect(evaluation.regions.ET!.lesionWise).toEqual({ dice: 0.5, hd95: 187, truePositives: 1, falsePositives: 1, falseNegatives: 0 });
  });

  it('summarises and writes them: JSON fields, summary statistics and CSV columns', async () => {
    const { cases, summary, problems } = await evaluateCases(
      [{ caseId: 'c1', prediction: { values: predictionLabels, shape: SHAPE }, predictionMapping: BRATS2017_LABELS, reference: { values: referenceLabels, shape: SHAPE, spacing: [1, 1, 1] }, referenceMapping: BRATS2017_LABELS }],
      { convention: 'brats', lesionWise: { dilation: 3 } },
    );
    expect(summary.regions.ET!.lesionWiseDice!.mean).toBe(0.5);
    expect(summary.regions.ET!.lesionWiseHd95!.mean).toBe(187);
    const json = evaluationToJson(cases, summary, problems);
    expect(json.lesionWise).toEqual({ dilation: 3, minimumVolumeMm3: 50, penaltyMm: 374 });
    expect(json.cases[0]!.ET!.lesionWise).toEqual({ dice: 0.5, hd95: 187, truePositives: 1, falsePositives: 1, falseNegatives: 0 });
    expect(json.summary.ET!.lesionWiseDice).toEqual({ mean: 0.5, median: 0.5, std: 0, count: 1, nanCount: 0 });
    const csv = evaluationToCsv(cases).trim().split('\n');
    expect(csv[0]!.endsWith(',volume_ml_prediction,lesion_wise_dice,lesion_wise_hd95,lesion_true_positives,lesion_false_positives,lesion_false_negatives')).toBe(true);
    expect(csv[3]!.split(',').slice(-5)).toEqual(['0.5', '187', '1', '1', '0']);
    // Without lesion-wise scores the forms are what they were: no field, no column.
    const plain = await evaluateCases([{ caseId: 'c1', prediction: { values: predictionLabels, shape: SHAPE }, predictionMapping: BRATS2017_LABELS, reference: { values: referenceLabels, shape: SHAPE, spacing: [1, 1, 1] }, referenceMapping: BRATS2017_LABELS }]);
    expect('lesionWise' in evaluationToJson(plain.cases, plain.summary, [])).toBe(false);
    expect(evaluationToCsv(plain.cases).split('\n')[0]!.endsWith(',volume_ml_prediction')).toBe(true);
    expect(Object.keys(plain.summary.regions.WT!)).not.toContain('lesionWiseDice');
  });

  it('refuses bad lesion-wise options once, before any case', async () => {
    await expect(evaluateCases([], { lesionWise: { dilation: -1 } })).rejects.toThrow(/evaluateCases\(\): argument 'options\.lesionWise\.dilation' must be an integer ≥ 0, found -1/);
  });
});
