import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { ArgumentError } from '../errors.js';
import { unstrippedWarning } from '../layouts/case.js';
import type { Volume } from '../volume.js';
import { PHANTOM_TISSUES, generatePhantom, phantomAffine, type PhantomCase } from './generate.js';

// The BraTS field of view (240 x 240 x 155 mm) at 2 mm: the same anatomy as the default grid, 1/8 of the voxels.
const SIZE = [120, 120, 78] as const;
const SPACING = [2, 2, 155 / 78] as const;
const VOXEL_ML = (SPACING[0] * SPACING[1] * SPACING[2]) / 1000;

const cache = new Map<number, PhantomCase>();
function phantomFor(seed: number): PhantomCase {
  let phantom = cache.get(seed);
  if (phantom === undefined) {
    phantom = generatePhantom({ seed, size: SIZE, spacing: SPACING });
    cache.set(seed, phantom);
  }
  return phantom;
}

/** Mean of `values` where `select(index)` holds, and how many voxels that is. */
function meanWhere(values: ArrayLike<number>, select: (index: number) => boolean): { mean: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let index = 0; index < values.length; index++) {
    if (select(index)) {
      sum += values[index]!;
      count++;
    }
  }
  return { mean: sum / count, count };
}

function labelCounts(labels: Volume<'uint8'>): Map<number, number> {
  const counts = new Map<number, number>();
  for (const value of labels.data) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
}

function centroid(labels: Volume<'uint8'>): [number, number, number] {
  const [nx, ny] = labels.shape;
  const sum = [0, 0, 0];
  let count = 0;
  labels.data.forEach((value, index) => {
    if (value === 0) return;
    sum[0]! += index % nx;
    sum[1]! += Math.floor(index / nx) % ny;
    sum[2]! += Math.floor(index / (nx * ny));
    count++;
  });
  return [sum[0]! / count, sum[1]! / count, sum[2]! / count];
}

const SEEDS = [1, 2, 3, 4, 5, 6];

describe('generatePhantom', () => {
  it('is deterministic: the same seed gives identical arrays', () => {
    const first = phantomFor(11);
    const again = generatePhantom({ seed: 11, size: SIZE, spacing: SPACING });
    for (const name of ['FLAIR', 'T1w', 'T1gd', 'T2w'] as const) {
      expect(Buffer.from(again.channels[name].data.buffer).equals(Buffer.from(first.channels[name].data.buffer))).toBe(true);
    }
    expect(Buffer.from(again.labels.data).equals(Buffer.from(first.labels.data))).toBe(true);
  });

  it('puts the tumour elsewhere for another seed', () => {
    const [a, b] = [centroid(phantomFor(1).labels), centroid(phantomFor(2).labels)];
    const distanceMm = Math.hypot((a[0] - b[0]) * SPACING[0], (a[1] - b[1]) * SPACING[1], (a[2] - b[2]) * SPACING[2]);
    expect(distanceMm).toBeGreaterThan(5);
    expect(Buffer.from(phantomFor(1).labels.data).equals(Buffer.from(phantomFor(2).labels.data))).toBe(false);
  });

  it('has the BraTS grid, dtypes and affine', () => {
    const phantom = phantomFor(1);
    expect(phantom.channels.FLAIR.shape).toEqual([120, 120, 78]);
    expect(phantom.channels.T2w.dtype).toBe('int16');
    expect(phantom.labels.dtype).toBe('uint8');
    expect(phantom.labels.affine).toEqual([
      [-2, 0, 0, 0],
      [0, -2, 0, 238],
      [0, 0, SPACING[2], 0],
      [0, 0, 0, 1],
    ]);
    expect(phantomAffine([240, 240, 155], [1, 1, 1])[1]).toEqual([0, -1, 0, 239]);
  });

  it.each(SEEDS)('seed %i: labels are 0/1/2/4, all three tumour labels present, whole tumour 20-150 mL', (seed) => {
    const counts = labelCounts(phantomFor(seed).labels);
    expect([...counts.keys()].sort()).toEqual([0, 1, 2, 4]);
    const wholeMl = ((counts.get(1) ?? 0) + (counts.get(2) ?? 0) + (counts.get(4) ?? 0)) * VOXEL_ML;
    expect(wholeMl).toBeGreaterThan(20);
    expect(wholeMl).toBeLessThan(150);
    // The core is a real part of the tumour, not a speck: at least 3 mL.
    expect(((counts.get(1) ?? 0) + (counts.get(4) ?? 0)) * VOXEL_ML).toBeGreaterThan(3);
  });

  it.each(SEEDS)('seed %i: enhancing tumour wraps the necrotic core and oedema wraps both (6-neighbourhood)', (seed) => {
    const { labels } = phantomFor(seed);
    const [nx, ny, nz] = labels.shape;
    const data = labels.data;
    let coreNextToOutside = 0;
    let tumourNextToBackground = 0;
    for (let k = 1; k < nz - 1; k++) {
      for (let j = 1; j < ny - 1; j++) {
        for (let i = 1; i < nx - 1; i++) {
          const index = i + nx * (j + ny * k);
          const value = data[index]!;
          if (value !== 1 && value !== 4) continue;
          for (const step of [1, -1, nx, -nx, nx * ny, -nx * ny]) {
            const neighbour = data[index + step]!;
            if (value === 1 && neighbour !== 1 && neighbour !== 4) coreNextToOutside++;
            if (neighbour === 0) tumourNextToBackground++;
          }
        }
      }
    }
    expect(coreNextToOutside).toBe(0);
    expect(tumourNextToBackground).toBe(0);
  });

  it.skipIf(referencePython(['scipy', 'numpy']) === undefined)(
    'every connected piece of the whole tumour holds core (scipy.ndimage.label, Debian python)',
    async () => {
      const python = referencePython(['scipy', 'numpy'])!;
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-phantom-components-'));
      try {
        const files = await Promise.all(
          SEEDS.map(async (seed) => {
            const file = path.join(dir, `labels-${seed}.raw`);
            await fs.writeFile(file, phantomFor(seed).labels.data);
            return file;
          }),
        );
        const script = `
import json, sys
import numpy as np
from scipy import ndimage
shape = json.loads(sys.argv[1])
out = []
for file in sys.argv[2:]:
    labels = np.fromfile(file, dtype=np.uint8).reshape(shape[::-1])
    pieces, count = ndimage.label(labels > 0)  # default structure: 6-connectivity
    core = np.isin(labels, [1, 4])
    out.append({'pieces': int(count), 'withoutCore': int(sum(1 for p in range(1, count + 1) if not core[pieces == p].any()))})
print(json.dumps(out))
`;
        const result = runPythonJson<{ pieces: number; withoutCore: number }[]>(python, script, [JSON.stringify(SIZE), ...files]);
        for (const entry of result) {
          expect(entry.pieces).toBeGreaterThanOrEqual(1);
          expect(entry.withoutCore).toBe(0);
        }
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    },
  );

  it.each(SEEDS)('seed %i: each sequence shows its contrast', (seed) => {
    const { channels, labels, tissues } = phantomFor(seed);
    const label = labels.data;
    const tissue = tissues.data;
    const white = (index: number): boolean => tissue[index] === PHANTOM_TISSUES.whiteMatter && label[index] === 0;
    // FLAIR: oedema brighter than white matter.
    const flairOedema = meanWhere(channels.FLAIR.data, (index) => label[index] === 2).mean;
    expect(flairOedema).toBeGreaterThan(1.4 * meanWhere(channels.FLAIR.data, white).mean);
    // T1gd: the enhancing rim brighter than the rest of the tumour.
    const t1gdEnhancing = meanWhere(channels.T1gd.data, (index) => label[index] === 4).mean;
    expect(t1gdEnhancing).toBeGreaterThan(1.5 * meanWhere(channels.T1gd.data, (index) => label[index] === 1 || label[index] === 2).mean);
    // T1w: the necrotic core darker than white matter.
    expect(meanWhere(channels.T1w.data, (index) => label[index] === 1).mean).toBeLessThan(0.7 * meanWhere(channels.T1w.data, white).mean);
    // T2w: CSF and oedema brighter than white matter.
    const t2White = meanWhere(channels.T2w.data, white).mean;
    expect(meanWhere(channels.T2w.data, (index) => tissue[index] === PHANTOM_TISSUES.csf).mean).toBeGreaterThan(1.5 * t2White);
    expect(meanWhere(channels.T2w.data, (index) => label[index] === 2).mean).toBeGreaterThan(1.3 * t2White);
    // FLAIR suppresses CSF: darker than white matter.
    expect(meanWhere(channels.FLAIR.data, (index) => tissue[index] === PHANTOM_TISSUES.csf).mean).toBeLessThan(
      meanWhere(channels.FLAIR.data, white).mean,
    );
  });

  it('is 0 outside the head and at least 1 inside, with a brain of plausible volume', () => {
    const { channels, tissues } = phantomFor(3);
    let outsideNonZero = 0;
    let insideZero = 0;
    let head = 0;
    for (let index = 0; index < tissues.data.length; index++) {
      const inside = tissues.data[index] !== 0;
      if (inside) head++;
      for (const name of ['FLAIR', 'T1w', 'T1gd', 'T2w'] as const) {
        const value = channels[name].data[index]!;
        if (inside && value < 1) insideZero++;
        if (!inside && value !== 0) outsideNonZero++;
      }
    }
    expect(outsideNonZero).toBe(0);
    expect(insideZero).toBe(0);
    // Adult brains with their CSF: about 1.2-1.8 L (the real BraTS masks hold about 1.5 L).
    expect(head * VOXEL_ML).toBeGreaterThan(1200);
    expect(head * VOXEL_ML).toBeLessThan(1800);
  });

  it('has white and grey matter with T1w white brighter than grey, and ventricles', () => {
    const { channels, tissues } = phantomFor(4);
    const counts = labelCounts(tissues);
    for (const tissue of [PHANTOM_TISSUES.csf, PHANTOM_TISSUES.greyMatter, PHANTOM_TISSUES.whiteMatter, PHANTOM_TISSUES.deepGreyMatter]) {
      expect(counts.get(tissue) ?? 0).toBeGreaterThan(1000);
    }
    expect(counts.get(PHANTOM_TISSUES.bone) ?? 0).toBe(0);
    const t1 = channels.T1w.data;
    expect(meanWhere(t1, (index) => tissues.data[index] === PHANTOM_TISSUES.whiteMatter).mean).toBeGreaterThan(
      1.15 * meanWhere(t1, (index) => tissues.data[index] === PHANTOM_TISSUES.greyMatter).mean,
    );
    // Ventricles: CSF at the centre of the brain.
    const [nx, ny, nz] = tissues.shape;
    const i = Math.round(nx / 2);
    const k = Math.round(nz / 2) + 6;
    let centralCsf = 0;
    for (let di = -12; di <= 12; di++) {
      for (let j = Math.round(ny * 0.35); j < Math.round(ny * 0.65); j++) {
        if (tissues.data[i + di + nx * (j + ny * k)] === PHANTOM_TISSUES.csf) centralCsf++;
      }
    }
    expect(centralCsf).toBeGreaterThan(20);
  });

  it('adds skull and fat-bright scalp on request, and leaves the tumour out on request', () => {
    const phantom = generatePhantom({ seed: 9, size: [64, 64, 48], spacing: [3.75, 3.75, 155 / 48], skull: true, tumour: false });
    const counts = labelCounts(phantom.tissues);
    expect(counts.get(PHANTOM_TISSUES.bone) ?? 0).toBeGreaterThan(100);
    expect(counts.get(PHANTOM_TISSUES.scalp) ?? 0).toBeGreaterThan(100);
    expect(labelCounts(phantom.labels).get(0)).toBe(64 * 64 * 48);
    const t1 = phantom.channels.T1w.data;
    const tissue = phantom.tissues.data;
    expect(meanWhere(t1, (index) => tissue[index] === PHANTOM_TISSUES.scalp).mean).toBeGreaterThan(
      meanWhere(t1, (index) => tissue[index] === PHANTOM_TISSUES.whiteMatter).mean,
    );
    expect(meanWhere(t1, (index) => tissue[index] === PHANTOM_TISSUES.bone).mean).toBeLessThan(
      0.5 * meanWhere(t1, (index) => tissue[index] === PHANTOM_TISSUES.greyMatter).mean,
    );
  });

  it('leaves a raw scan\'s Rayleigh noise around a head with its skull, so the check for unstripped scans warns of it', () => {
    const size = [64, 64, 48] as const;
    const spacing = [3.75, 3.75, 155 / 48] as const;
    const head = generatePhantom({ seed: 9, size, spacing, skull: true });
    const tissue = head.tissues.data;
    for (const channel of [head.channels.FLAIR, head.channels.T1w, head.channels.T1gd, head.channels.T2w]) {
      let count = 0;
      let zeros = 0;
      let sum = 0;
      let sumOfSquares = 0;
      for (let index = 0; index < tissue.length; index++) {
        if (tissue[index] !== PHANTOM_TISSUES.background) continue;
        const value = channel.data[index]!;
        count++;
        if (value === 0) zeros++;
        sum += value;
        sumOfSquares += value * value;
      }
      expect(count).toBeGreaterThan(0.3 * tissue.length);
      expect(zeros / count).toBeLessThan(0.02);
      // A Rayleigh variable R has E[R]^2 / E[R^2] = pi / 4 whatever its sigma (Gaussian noise would give 0, a constant 1).
      expect((sum / count) ** 2 / (sumOfSquares / count)).toBeCloseTo(Math.PI / 4, 2);
    }
    const fieldMl = (size[0] * size[1] * size[2] * spacing[0] * spacing[1] * spacing[2]) / 1000;
    expect(unstrippedWarning(head.channels.FLAIR, 'head_flair.nii.gz')).toMatch(
      new RegExp(`^head_flair\\.nii\\.gz: FLAIR is non-zero over ${(fieldMl / 1000).toFixed(1)} L, more than any skull-stripped brain`),
    );
    // The same case skull-stripped: 0 outside the brain, and no warning.
    const brain = generatePhantom({ seed: 9, size, spacing });
    expect(brain.channels.FLAIR.data.filter((_, index) => brain.tissues.data[index] === PHANTOM_TISSUES.background).every((value) => value === 0)).toBe(true);
    expect(unstrippedWarning(brain.channels.FLAIR, 'brain_flair.nii.gz')).toBeUndefined();
  });

  it('makes the default 240x240x155 BraTS grid with a glioma of 20-150 mL', () => {
    const phantom = generatePhantom({ seed: 2026 });
    expect(phantom.channels.FLAIR.shape).toEqual([240, 240, 155]);
    expect(phantom.id).toBe('phantom-2026');
    const counts = labelCounts(phantom.labels);
    const wholeMl = ((counts.get(1) ?? 0) + (counts.get(2) ?? 0) + (counts.get(4) ?? 0)) / 1000;
    expect(wholeMl).toBeGreaterThan(20);
    expect(wholeMl).toBeLessThan(150);
  });

  it('scales the anatomy with a small grid and keeps all three labels', () => {
    const phantom = generatePhantom({ seed: 5, size: [48, 48, 32] });
    expect([...labelCounts(phantom.labels).keys()].sort()).toEqual([0, 1, 2, 4]);
  });

  it.each([
    [{ seed: -1 }, 'seed'],
    [{ seed: 0.5 }, 'seed'],
    [{ seed: 1, size: [8, 64, 64] as const }, 'size'],
    [{ seed: 1, size: [64, 64, 64.5] as const }, 'size'],
    [{ seed: 1, spacing: [1, 0, 1] as const }, 'spacing'],
    [{ seed: 1, spacing: [1, 1, Number.NaN] as const }, 'spacing'],
  ])('rejects %j naming %s', (options, argument) => {
    let caught: unknown;
    try {
      generatePhantom(options);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ArgumentError);
    expect((caught as ArgumentError).argument).toBe(argument);
  });
});
