/**
 * Synthetic brain-tumour phantoms: a brain-like anatomy (white and grey matter, deep grey nuclei, CSF,
 * ventricles, optional skull) with a glioma (oedema, necrotic core, enhancing rim) in the contrasts of the
 * four BraTS sequences, a smooth bias field and Rician noise. Every field is analytic or a sum of
 * separable products of 1D tables, so a 240x240x155 case takes well under a second and no 3D
 * convolution is needed.
 */
import { ArgumentError } from '../errors.js';
import { affineToQuaternion } from '../nifti/geometry.js';
import { createVolume, type Affine, type NiftiGeometry, type Spacing, type Volume } from '../volume.js';
import { checkSeed, createRandom, type RandomSource } from './random.js';

/** Options of {@link generatePhantom}. */
export interface GeneratePhantomOptions {
  /** Seed of every random choice; the same seed (and options) gives identical arrays. */
  seed: number;
  /** Grid size `[i, j, k]` in voxels (default `[240, 240, 155]`, like BraTS). The anatomy fills the grid at any size. */
  size?: readonly [number, number, number];
  /** Voxel size in mm along i, j, k (default `[1, 1, 1]`). */
  spacing?: Spacing;
  /**
   * Keep skull and scalp, and the background noise a scanner leaves outside the head (default false: skull-stripped
   * like BraTS, every voxel outside the brain 0).
   */
  skull?: boolean;
  /** Add a tumour (default true). */
  tumour?: boolean;
  /** Case id (default `phantom-<seed>`). */
  id?: string;
}

/** The four sequences of a phantom, int16 3D volumes on one grid (NIfTI i-j-k). */
export interface PhantomChannels {
  FLAIR: Volume<'int16'>;
  T1w: Volume<'int16'>;
  T1gd: Volume<'int16'>;
  T2w: Volume<'int16'>;
}

/** A generated case: images, BraTS 2017 label map and the ground-truth tissue map. */
export interface PhantomCase {
  id: string;
  seed: number;
  channels: PhantomChannels;
  /** uint8 label map in the BraTS 2017 convention: 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing. */
  labels: Volume<'uint8'>;
  /** uint8 map of the dominant tissue of each voxel, values of {@link PHANTOM_TISSUES}. */
  tissues: Volume<'uint8'>;
}

/** Tissue codes of {@link PhantomCase.tissues}. */
export const PHANTOM_TISSUES = {
  background: 0,
  csf: 1,
  greyMatter: 2,
  whiteMatter: 3,
  deepGreyMatter: 4,
  bone: 5,
  scalp: 6,
  oedema: 7,
  enhancing: 8,
  necrosis: 9,
} as const;

/** Default phantom grid `[i, j, k]`: the BraTS 240x240x155 grid. */
export const DEFAULT_PHANTOM_SIZE: readonly [number, number, number] = [240, 240, 155];

const CHANNEL_COUNT = 4;
const TISSUE_COUNT = 10;

/**
 * Mean intensity of each tissue (rows in PHANTOM_TISSUES order) in FLAIR, T1w, T1gd and T2w, on the scale
 * of BraTS int16 files. FLAIR: suppressed CSF, bright oedema; T1w: dark CSF and necrosis, bright fat;
 * T1gd: T1w plus a bright enhancing rim; T2w: bright CSF, oedema and necrosis.
 */
const TISSUE_INTENSITY: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 0],
  [70, 160, 170, 1500],
  [330, 420, 440, 780],
  [260, 560, 560, 560],
  [300, 480, 490, 690],
  [30, 50, 50, 60],
  [300, 900, 900, 620],
  [560, 360, 380, 1150],
  [470, 430, 1150, 900],
  [380, 220, 240, 1300],
];

/** Reference length (mm) that anatomical sizes are given in: the mean brain semi-axis at the default grid. */
const REFERENCE_LENGTH = 71;

/**
 * Band-limited noise as a sum of plane waves cos(k·x + φ) with random directions. A plane wave is a
 * product of 1D complex exponentials, so the sum costs two multiplications per wave and voxel once a
 * row's (j, k) part is known, and its zero surfaces wind like sulci instead of forming a lattice.
 */
class PlaneWaves {
  private readonly terms: number;
  private readonly x: Float64Array;
  private readonly y: Float64Array;
  private readonly z: Float64Array;
  private readonly row: Float64Array;

  constructor(
    random: RandomSource,
    coordinates: readonly [Float64Array, Float64Array, Float64Array],
    terms: number,
    minimumFrequency: number,
    maximumFrequency: number,
    amplitude: number,
  ) {
    this.terms = terms;
    // A sum of `terms` cosines with random phases has variance terms / 2.
    const scale = amplitude * Math.sqrt(2 / terms);
    const tables = coordinates.map((coordinate) => new Float64Array(coordinate.length * terms * 2));
    for (let m = 0; m < terms; m++) {
      const direction = randomDirection(random);
      const frequency = 2 * Math.PI * random.uniform(minimumFrequency, maximumFrequency);
      const phase = random.uniform(0, 2 * Math.PI);
      for (let axis = 0; axis < 3; axis++) {
        const coordinate = coordinates[axis as 0 | 1 | 2];
        const table = tables[axis]!;
        const factor = axis === 0 ? scale : 1;
        for (let n = 0; n < coordinate.length; n++) {
          const angle = frequency * direction[axis]! * coordinate[n]! + (axis === 0 ? phase : 0);
          table[(n * terms + m) * 2] = factor * Math.cos(angle);
          table[(n * terms + m) * 2 + 1] = factor * Math.sin(angle);
        }
      }
    }
    [this.x, this.y, this.z] = tables as [Float64Array, Float64Array, Float64Array];
    this.row = new Float64Array(terms * 2);
  }

  /** Prepares {@link at} for the row (j, k). */
  setRow(j: number, k: number): void {
    const { y, z, row, terms } = this;
    for (let m = 0; m < terms; m++) {
      const yr = y[(j * terms + m) * 2]!;
      const yi = y[(j * terms + m) * 2 + 1]!;
      const zr = z[(k * terms + m) * 2]!;
      const zi = z[(k * terms + m) * 2 + 1]!;
      row[m * 2] = yr * zr - yi * zi;
      row[m * 2 + 1] = yr * zi + yi * zr;
    }
  }

  /** The field at voxel i of the current row. */
  at(i: number): number {
    const { x, row, terms } = this;
    let sum = 0;
    const base = i * terms * 2;
    for (let m = 0; m < terms * 2; m += 2) sum += x[base + m]! * row[m]! - x[base + m + 1]! * row[m + 1]!;
    return sum;
  }
}

function randomDirection(random: RandomSource): [number, number, number] {
  const x = random.normal();
  const y = random.normal();
  const z = random.normal();
  const norm = Math.hypot(x, y, z) || 1;
  return [x / norm, y / norm, z / norm];
}

/** Linear ramp from 0 to 1 over `width` centred on 0: a cheap partial-volume edge. */
function ramp(value: number, width: number): number {
  const t = 0.5 + value / width;
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

function validateOptions(options: GeneratePhantomOptions): {
  size: readonly [number, number, number];
  spacing: Spacing;
} {
  checkSeed('generatePhantom', options.seed);
  const size = options.size ?? DEFAULT_PHANTOM_SIZE;
  if (size.length !== 3 || !size.every((n) => Number.isInteger(n) && n >= 16 && n <= 1024)) {
    throw new ArgumentError('generatePhantom', 'size', `must be three integers in [16, 1024], got [${size.join(', ')}]`);
  }
  const spacing = options.spacing ?? [1, 1, 1];
  if (spacing.length !== 3 || !spacing.every((s) => Number.isFinite(s) && s > 0)) {
    throw new ArgumentError('generatePhantom', 'spacing', `must be three positive numbers (mm), got [${spacing.join(', ')}]`);
  }
  return { size, spacing };
}

/**
 * The BraTS-style affine of a phantom grid: i runs right to left and j anterior to posterior
 * (world x = -i·sx, y = (ny - 1 - j)·sy), k inferior to superior (z = k·sz), as in the BraTS files.
 */
export function phantomAffine(size: readonly [number, number, number], spacing: Spacing): Affine {
  return [
    [-spacing[0], 0, 0, 0],
    [0, -spacing[1], 0, (size[1] - 1) * spacing[1]],
    [0, 0, spacing[2], 0],
    [0, 0, 0, 1],
  ];
}

function phantomHeader(affine: Affine, spacing: Spacing): NiftiGeometry {
  const q = affineToQuaternion(affine);
  return {
    // As the BraTS files: qform "aligned anatomical", sform "scanner", units mm.
    qformCode: 2,
    sformCode: 1,
    quaternion: q.quaternion,
    qoffset: q.offset,
    qfac: q.qfac,
    srow: [affine[0].slice(), affine[1].slice(), affine[2].slice()],
    xyztUnits: 2,
    pixdim: [spacing[0], spacing[1], spacing[2], 0, 0, 0, 0],
    description: 'brats phantom',
  };
}

interface Ellipsoid {
  centre: [number, number, number];
  radii: [number, number, number];
}

/** The anatomy of one phantom, in brain-normalised coordinates (the brain is about the unit ball). */
class Anatomy {
  readonly u: Float64Array;
  readonly v: Float64Array;
  readonly w: Float64Array;
  /** Brain semi-axes in mm. */
  readonly semiAxes: readonly [number, number, number];
  readonly skull: boolean;
  /** Outermost normalised radius that holds anything. */
  readonly outerRadius: number;
  /** Fractions of CSF, grey, white, deep grey, bone and scalp after {@link sample}. */
  readonly fractions = new Float64Array(6);
  /** Depth below the brain surface (mm at the reference size) after {@link sample}. */
  depth = 0;
  private readonly shape: PlaneWaves;
  private readonly folds: PlaneWaves;
  private readonly ventricleScale: number;
  private readonly fissureWobble: Float64Array;
  private massCentre: readonly [number, number, number] = [0, 0, 0];
  private massInverseRadiusSquared = 0;
  private massStrength = 0;
  private rowV = 0;
  private rowW = 0;
  private rowWobble = 0;

  constructor(random: RandomSource, size: readonly [number, number, number], spacing: Spacing, skull: boolean) {
    const extent = [size[0] * spacing[0], size[1] * spacing[1], size[2] * spacing[2]] as const;
    this.semiAxes = [
      0.29 * extent[0] * random.uniform(0.95, 1.03),
      0.355 * extent[1] * random.uniform(0.95, 1.03),
      0.39 * extent[2] * random.uniform(0.95, 1.03),
    ];
    const centre = [0, 1, 2].map((n) => ((size[n]! - 1) * spacing[n]!) / 2 + random.uniform(-0.01, 0.01) * extent[n]!);
    const axis = (n: 0 | 1 | 2): Float64Array => {
      const table = new Float64Array(size[n]);
      for (let index = 0; index < size[n]; index++) table[index] = (index * spacing[n] - centre[n]!) / this.semiAxes[n];
      return table;
    };
    this.u = axis(0);
    this.v = axis(1);
    this.w = axis(2);
    // The brain is flatter below than above.
    for (let k = 0; k < this.w.length; k++) if (this.w[k]! < 0) this.w[k]! *= 1.12;
    const coordinates = [this.u, this.v, this.w] as const;
    this.shape = new PlaneWaves(random, coordinates, 4, 0.2, 0.5, 0.02);
    this.folds = new PlaneWaves(random, coordinates, 12, 3.2, 4.4, 0.5);
    this.ventricleScale = random.uniform(0.85, 1.25);
    this.fissureWobble = new Float64Array(size[1]);
    const wobblePhase = random.uniform(0, 2 * Math.PI);
    for (let j = 0; j < size[1]; j++) this.fissureWobble[j] = 0.012 * Math.sin(3 * this.v[j]! + wobblePhase);
    this.skull = skull;
    this.outerRadius = skull ? 1.3 : 1.1;
  }

  /**
   * Displaces the midline structures away from a tumour at `centre` (normalised units): a radial pull of
   * `strength` (below 0.6, so the mapping never folds) fading over `radius`.
   */
  setMassEffect(centre: readonly [number, number, number], radius: number, strength: number): void {
    this.massCentre = centre;
    this.massInverseRadiusSquared = 1 / (radius * radius);
    this.massStrength = strength;
  }

  /** Prepares {@link sample} for the voxels (·, j, k). */
  setRow(j: number, k: number): void {
    this.rowV = this.v[j]!;
    this.rowW = this.w[k]!;
    this.rowWobble = this.fissureWobble[j]!;
    this.shape.setRow(j, k);
    this.folds.setRow(j, k);
  }

  /** Fills {@link fractions} and {@link depth} for voxel i of the current row; false outside the head. */
  sample(i: number): boolean {
    const u = this.u[i]!;
    const v = this.rowV;
    const w = this.rowW;
    const radius = Math.sqrt(u * u + v * v + w * w) + this.shape.at(i);
    const depth = (1 - radius) * REFERENCE_LENGTH;
    this.depth = depth;
    const fractions = this.fractions;
    if (depth < (this.skull ? -13.5 : -2)) return false;
    // Parenchyma versus the CSF (and, with a skull, bone and scalp) outside it.
    const parenchyma = ramp(depth, 1.2);
    let csf: number;
    let bone = 0;
    let scalp = 0;
    if (this.skull) {
      csf = (1 - parenchyma) * ramp(depth + 2.5, 1);
      bone = ramp(-(depth + 2.5), 1) * ramp(depth + 8, 1);
      scalp = ramp(-(depth + 8), 1) * ramp(depth + 13, 1);
    } else {
      csf = (1 - parenchyma) * ramp(depth + 1.5, 1);
    }
    let sulcus = 0;
    let grey = 0;
    let deep = 0;
    let ventricle = 0;
    if (parenchyma > 0) {
      // Mass effect: midline structures are sampled from nearer the tumour, so they appear pushed away
      // from it. The cortical folds are random anyway and stay where they are.
      let mu = u;
      let mv = v;
      let mw = w;
      if (this.massStrength > 0) {
        const x = u - this.massCentre[0];
        const y = v - this.massCentre[1];
        const z = w - this.massCentre[2];
        const exponent = (x * x + y * y + z * z) * this.massInverseRadiusSquared;
        if (exponent < 12) {
          const pull = this.massStrength * Math.exp(-exponent);
          mu = u - x * pull;
          mv = v - y * pull;
          mw = w - z * pull;
        }
      }
      // Cortex: sulci are the zero surfaces of band-limited noise, lined with grey matter.
      grey = ramp(3 - depth, 1.5);
      const sulcusDepth = 17;
      if (depth < sulcusDepth + 5) {
        const fold = Math.abs(this.folds.at(i));
        sulcus = ramp(0.08 * Math.max(0, 1 - depth / sulcusDepth) - fold, 0.06);
        grey = Math.max(grey, ramp(0.32 * Math.min(1, 1.25 - depth / (sulcusDepth + 5)) - fold, 0.12));
      }
      // Interhemispheric fissure, deep above the corpus callosum and at the frontal and occipital poles.
      const offMidline = Math.abs(mu - this.rowWobble);
      if (offMidline < 0.1) {
        const floor = 0.36 + 0.1 * mv * mv - 2.5 * Math.max(0, Math.abs(mv) - 0.5);
        const below = ramp((mw - floor) * 40, 1);
        sulcus = Math.max(sulcus, below * ramp(0.022 - offMidline, 0.012));
        grey = Math.max(grey, below * ramp(0.07 - offMidline, 0.02));
      }
      // Lateral ventricles, arched over the thalami in the coronal plane with horns diverging in the axial
      // plane, and the third ventricle.
      const s = this.ventricleScale;
      const au = Math.abs(mu);
      const arch = 0.12 - 0.35 * mv * mv;
      const lateral = ((au - (0.1 + 0.12 * mv * mv) * s) / ((0.085 + 0.04 * Math.max(0, -mv)) * s)) ** 2 + (mv / 0.47) ** 2 + ((mw - arch) / (0.17 * s)) ** 2;
      const third = (mu / 0.02) ** 2 + ((mv - 0.05) / 0.18) ** 2 + ((mw + 0.04) / 0.13) ** 2;
      ventricle = ramp(1 - Math.min(lateral, third), 0.3);
      // Deep grey nuclei: thalamus and lentiform nucleus on each side.
      const thalamus = ((au - 0.15) / 0.1) ** 2 + ((mv - 0.1) / 0.16) ** 2 + ((mw + 0.06) / 0.12) ** 2;
      const lentiform = ((au - 0.32) / 0.07) ** 2 + ((mv + 0.08) / 0.22) ** 2 + ((mw + 0.02) / 0.13) ** 2;
      deep = 0.9 * ramp(1 - Math.min(thalamus, lentiform), 0.5);
    }
    const inside = Math.max(sulcus, ventricle);
    const rest = 1 - inside;
    const deepFraction = rest * deep;
    const greyFraction = (rest - deepFraction) * grey;
    fractions[0] = csf + parenchyma * inside;
    fractions[1] = parenchyma * greyFraction;
    fractions[2] = parenchyma * (rest - deepFraction - greyFraction);
    fractions[3] = parenchyma * deepFraction;
    fractions[4] = bone;
    fractions[5] = scalp;
    return fractions[0] + parenchyma + bone + scalp > 0.02;
  }
}

/** The tumour inside a bounding box of the grid; labels are written into the full label map. */
interface TumourModel {
  start: [number, number, number];
  size: [number, number, number];
  /** Fraction of tumour tissue (0-1) in each box voxel; which tissue follows from the label. */
  amount: Float32Array;
  /** Heterogeneity of the tumour tissue, a factor near 1. */
  texture: Float32Array;
}

/** The value at or above which about `count` of the positive `values` lie (fine histogram); Infinity for none. */
function thresholdForCount(values: Float32Array, count: number): number {
  if (count <= 0) return Infinity;
  let maximum = 0;
  for (let n = 0; n < values.length; n++) if (values[n]! > maximum) maximum = values[n]!;
  if (maximum <= 0) return Infinity;
  const bins = 16384;
  const histogram = new Uint32Array(bins);
  for (let n = 0; n < values.length; n++) {
    const value = values[n]!;
    if (value > 0) histogram[Math.min(bins - 1, Math.floor((value / maximum) * bins))]! += 1;
  }
  let above = 0;
  for (let bin = bins - 1; bin > 0; bin--) {
    above += histogram[bin]!;
    if (above >= count) return (bin / bins) * maximum;
  }
  return Number.MIN_VALUE;
}

function indexRange(table: Float64Array, low: number, high: number): [number, number] {
  let first = table.length;
  let last = -1;
  for (let n = 0; n < table.length; n++) {
    if (table[n]! >= low && table[n]! <= high) {
      first = Math.min(first, n);
      last = Math.max(last, n);
    }
  }
  return last < first ? [0, 0] : [first, last + 1];
}

/** Noise fields of the tumour box and the per-voxel fields they produce (flat in box order, i fastest). */
interface TumourFields {
  coreNoise: PlaneWaves;
  necrosisNoise: PlaneWaves;
  oedemaNoise: PlaneWaves;
  textureNoise: PlaneWaves;
  core: Float32Array;
  necrotic: Float32Array;
  oedema: Float32Array;
  texture: Float32Array;
}

/**
 * Evaluates the tumour's fields in its box: `core` (blob sum, perturbed, kept off the brain surface),
 * `necrotic` (the core's field with its own perturbation), `oedema` (a wider blob sum weighted towards
 * white matter) and the texture factor. Voxels where every blob is negligible stay 0 without sampling the
 * anatomy, which is most of the box.
 */
function computeTumourFields(
  anatomy: Anatomy,
  blobs: readonly Ellipsoid[],
  centre: readonly [number, number, number],
  reach: number,
  stretch: number,
  box: readonly [number, number, number, number, number, number],
  fields: TumourFields,
): void {
  const [i0, j0, k0, i1, j1, k1] = box;
  const { coreNoise, necrosisNoise, oedemaNoise, textureNoise, core, necrotic, oedema, texture } = fields;
  const blobData = new Float64Array(blobs.length * 6);
  blobs.forEach((blob, m) => blobData.set([...blob.centre, ...blob.radii.map((radius) => 1 / radius)], m * 6));
  const blobCount = blobs.length;
  const reachSquared = reach * reach;
  let n = 0;
  for (let k = k0; k < k1; k++) {
    const w = anatomy.w[k]!;
    for (let j = j0; j < j1; j++) {
      const v = anatomy.v[j]!;
      anatomy.setRow(j, k);
      coreNoise.setRow(j - j0, k - k0);
      necrosisNoise.setRow(j - j0, k - k0);
      oedemaNoise.setRow(j - j0, k - k0);
      textureNoise.setRow(j - j0, k - k0);
      for (let i = i0; i < i1; i++, n++) {
        const u = anatomy.u[i]!;
        const du0 = u - centre[0];
        const dv0 = v - centre[1];
        const dw0 = w - centre[2];
        if (du0 * du0 + dv0 * dv0 + dw0 * dw0 > reachSquared) continue;
        let field = 0;
        let wide = 0;
        for (let m = 0; m < blobCount * 6; m += 6) {
          const du = (u - blobData[m]!) * blobData[m + 3]!;
          const dv = (v - blobData[m + 1]!) * blobData[m + 4]!;
          const dw = (w - blobData[m + 2]!) * blobData[m + 5]!;
          const q = du * du + dv * dv + dw * dw;
          if (q < 30) field += Math.exp(-q);
          if (q * stretch < 30) wide += Math.exp(-q * stretch);
        }
        // Thresholds land near e^-1 of a blob's peak; a hundredth of it never reaches them.
        if (wide < 0.005 || !anatomy.sample(i)) continue;
        const bi = i - i0;
        if (field > 0.01) {
          // Keep the core well inside the brain so that oedema can surround it.
          const inside = ramp((anatomy.depth - 9) / 4, 1);
          const perturbed = field * (1 + coreNoise.at(bi)) * inside;
          core[n] = perturbed;
          necrotic[n] = perturbed * (1 + necrosisNoise.at(bi));
          texture[n] = 1 + textureNoise.at(bi);
        }
        // Oedema spreads along white matter and spares CSF.
        const fractions = anatomy.fractions;
        const tissue = (0.4 + 0.6 * fractions[2]!) * (1 - fractions[0]!) * ramp(anatomy.depth - 1, 2);
        oedema[n] = Math.max(0, wide * (1 + oedemaNoise.at(bi)) * tissue);
      }
    }
  }
}

/**
 * Places a glioma: a blob made of a few ellipsoids perturbed by low-frequency noise. The core, the
 * necrosis within it and the oedema around it are the voxels above thresholds chosen to give seeded
 * volumes. Writes BraTS 2017 labels into `labels`.
 */
function placeTumour(
  random: RandomSource,
  anatomy: Anatomy,
  size: readonly [number, number, number],
  spacing: Spacing,
  labels: Uint8Array,
): TumourModel {
  const [nx, ny] = size;
  const [a, b, c] = anatomy.semiAxes;
  const brainVolume = (4 / 3) * Math.PI * a * b * c;
  const voxelVolume = spacing[0] * spacing[1] * spacing[2];
  // Whole tumour 1.5-8 % of the brain (about 22-120 mL at the default size), log-uniform.
  const wholeVolume = brainVolume * Math.exp(random.uniform(Math.log(0.015), Math.log(0.08)));
  const coreVolume = wholeVolume * random.uniform(0.22, 0.55);
  const necroticVolume = coreVolume * random.uniform(0.2, 0.55);
  const meanSemiAxis = (a + b + c) / 3;
  const coreRadius = Math.cbrt((3 * coreVolume) / (4 * Math.PI)) / meanSemiAxis; // normalised units
  const wholeRadius = Math.cbrt((3 * wholeVolume) / (4 * Math.PI)) / meanSemiAxis;

  // Centre in one hemisphere, deep enough that the core stays inside the brain.
  const side = random.next() < 0.5 ? -1 : 1;
  let centre: [number, number, number] = [side * 0.3, 0, 0.1];
  for (let attempt = 0; attempt < 64; attempt++) {
    const candidate: [number, number, number] = [side * random.uniform(0.2, 0.5), random.uniform(-0.55, 0.5), random.uniform(-0.15, 0.45)];
    if (Math.hypot(...candidate) < 0.85 - 1.4 * coreRadius) {
      centre = candidate;
      break;
    }
  }
  const blobCount = 2 + Math.floor(random.next() * 3);
  const blobs: Ellipsoid[] = [];
  for (let m = 0; m < blobCount; m++) {
    const direction = randomDirection(random);
    const offset = m === 0 ? 0 : coreRadius * random.uniform(0.3, 0.7);
    const scale = m === 0 ? 1 : random.uniform(0.55, 0.85);
    blobs.push({
      centre: [centre[0] + direction[0] * offset, centre[1] + direction[1] * offset, centre[2] + direction[2] * offset],
      radii: [0, 1, 2].map(() => coreRadius * scale * random.uniform(0.7, 1.2)) as [number, number, number],
    });
  }
  anatomy.setMassEffect(centre, 1.3 * wholeRadius, random.uniform(0.25, 0.5));
  // Oedema reaches a little beyond the whole-tumour radius; the box holds it with a margin.
  const reach = 1.9 * wholeRadius + 0.04;
  const [i0, i1] = indexRange(anatomy.u, centre[0] - reach, centre[0] + reach);
  const [j0, j1] = indexRange(anatomy.v, centre[1] - reach, centre[1] + reach);
  const [k0, k1] = indexRange(anatomy.w, centre[2] - reach * 1.12, centre[2] + reach * 1.12);
  const [bx, by, bz] = [i1 - i0, j1 - j0, k1 - k0];
  const boxCount = bx * by * bz;
  const boxCoordinates = [anatomy.u.subarray(i0, i1), anatomy.v.subarray(j0, j1), anatomy.w.subarray(k0, k1)] as const;
  const coreNoise = new PlaneWaves(random, boxCoordinates, 6, 0.35 / wholeRadius, 0.8 / wholeRadius, 0.22);
  const necrosisNoise = new PlaneWaves(random, boxCoordinates, 6, 0.5 / coreRadius, 1.1 / coreRadius, 0.3);
  const oedemaNoise = new PlaneWaves(random, boxCoordinates, 8, 0.4 / wholeRadius, 1.2 / wholeRadius, 0.35);
  const textureNoise = new PlaneWaves(random, boxCoordinates, 8, 0.9 / coreRadius, 1.8 / coreRadius, 0.09);
  const stretch = 1 / (wholeRadius / coreRadius) ** 2;

  const core = new Float32Array(boxCount);
  const necrotic = new Float32Array(boxCount);
  const oedema = new Float32Array(boxCount);
  const texture = new Float32Array(boxCount);
  computeTumourFields(anatomy, blobs, centre, reach, stretch, [i0, j0, k0, i1, j1, k1], {
    coreNoise, necrosisNoise, oedemaNoise, textureNoise, core, necrotic, oedema, texture,
  });
  const coreThreshold = thresholdForCount(core, Math.round(coreVolume / voxelVolume));
  for (let m = 0; m < boxCount; m++) {
    if (core[m]! >= coreThreshold) oedema[m] = 0;
    else necrotic[m] = 0;
  }
  const necroticThreshold = thresholdForCount(necrotic, Math.round(necroticVolume / voxelVolume));
  const oedemaThreshold = thresholdForCount(oedema, Math.round((wholeVolume - coreVolume) / voxelVolume));

  const amount = new Float32Array(boxCount);
  const strideK = nx * ny;
  let n = 0;
  for (let bk = 0; bk < bz; bk++) {
    for (let bj = 0; bj < by; bj++) {
      let index = i0 + (bj + j0) * nx + (bk + k0) * strideK;
      for (let bi = 0; bi < bx; bi++, n++, index++) {
        const oedemaValue = oedema[n]!;
        if (core[n]! >= coreThreshold) {
          labels[index] = necrotic[n]! >= necroticThreshold ? 1 : 4;
          amount[n] = 1;
        } else if (oedemaValue >= oedemaThreshold) {
          labels[index] = 2;
          // The FLAIR edge of oedema is diffuse: full strength only some way inside the threshold.
          amount[n] = 0.6 + 0.4 * Math.min(1, (oedemaValue - oedemaThreshold) / (0.5 * oedemaThreshold));
        } else if (oedemaValue >= 0.6 * oedemaThreshold) {
          amount[n] = (oedemaValue / oedemaThreshold - 0.6) * 0.8;
        }
      }
    }
  }
  // The nesting real gliomas show and the tests check (6-neighbourhood): necrosis is wrapped in
  // enhancing tumour, and the core in oedema. The core stays off the box faces (it is far from them).
  const isCore = (value: number): boolean => value === 1 || value === 4;
  for (let bk = 1; bk < bz - 1; bk++) {
    for (let bj = 1; bj < by - 1; bj++) {
      let index = i0 + 1 + (bj + j0) * nx + (bk + k0) * strideK;
      for (let bi = 1; bi < bx - 1; bi++, index++) {
        if (labels[index] !== 1) continue;
        if (
          !isCore(labels[index + 1]!) || !isCore(labels[index - 1]!) || !isCore(labels[index + nx]!) ||
          !isCore(labels[index - nx]!) || !isCore(labels[index + strideK]!) || !isCore(labels[index - strideK]!)
        ) {
          labels[index] = 4;
        }
      }
    }
  }
  for (let bk = 1; bk < bz - 1; bk++) {
    for (let bj = 1; bj < by - 1; bj++) {
      let index = i0 + 1 + (bj + j0) * nx + (bk + k0) * strideK;
      n = 1 + bx * (bj + by * bk);
      for (let bi = 1; bi < bx - 1; bi++, index++, n++) {
        if (labels[index] !== 0) continue;
        if (
          isCore(labels[index + 1]!) || isCore(labels[index - 1]!) || isCore(labels[index + nx]!) ||
          isCore(labels[index - nx]!) || isCore(labels[index + strideK]!) || isCore(labels[index - strideK]!)
        ) {
          labels[index] = 2;
          amount[n] = Math.max(amount[n]!, 0.7);
        }
      }
    }
  }
  // Oedema is one region around the core: specks of the oedema field that do not touch it go.
  const reached = new Uint8Array(boxCount);
  const queue = new Int32Array(boxCount);
  let tail = 0;
  n = 0;
  for (let bk = 0; bk < bz; bk++) {
    for (let bj = 0; bj < by; bj++) {
      let index = i0 + (bj + j0) * nx + (bk + k0) * strideK;
      for (let bi = 0; bi < bx; bi++, n++, index++) {
        if (isCore(labels[index]!)) {
          reached[n] = 1;
          queue[tail++] = n;
        }
      }
    }
  }
  for (let head = 0; head < tail; head++) {
    const m = queue[head]!;
    const bi = m % bx;
    const bj = Math.floor(m / bx) % by;
    const bk = Math.floor(m / (bx * by));
    const index = i0 + bi + (bj + j0) * nx + (bk + k0) * strideK;
    const visit = (inside: boolean, step: number, globalStep: number): void => {
      if (inside && reached[m + step] === 0 && labels[index + globalStep] === 2) {
        reached[m + step] = 1;
        queue[tail++] = m + step;
      }
    };
    visit(bi + 1 < bx, 1, 1);
    visit(bi > 0, -1, -1);
    visit(bj + 1 < by, bx, nx);
    visit(bj > 0, -bx, -nx);
    visit(bk + 1 < bz, bx * by, strideK);
    visit(bk > 0, -bx * by, -strideK);
  }
  n = 0;
  for (let bk = 0; bk < bz; bk++) {
    for (let bj = 0; bj < by; bj++) {
      let index = i0 + (bj + j0) * nx + (bk + k0) * strideK;
      for (let bi = 0; bi < bx; bi++, n++, index++) {
        if (labels[index] === 2 && reached[n] === 0) {
          labels[index] = 0;
          amount[n] = Math.min(amount[n]!, 0.3);
        }
      }
    }
  }
  return { start: [i0, j0, k0], size: [bx, by, bz], amount, texture };
}

/** Intensity model of one case: tissue means per channel, bias tables, the Gaussian table and noise levels. */
interface Appearance {
  /** Mean of tissue t in channel c at [t * 4 + c]. */
  intensity: Float64Array;
  /** Bias factor of channel c at [n * 4 + c] along i, j and k. */
  biasTables: [Float64Array, Float64Array, Float64Array];
  gaussians: Float64Array;
  /** Noise standard deviation per channel. */
  sigma: Float64Array;
}

/**
 * Renders the four channels and the tissue map voxel by voxel inside the head. Kept apart from
 * generatePhantom so that the engine optimises this one hot loop on its own.
 */
function renderChannels(
  anatomy: Anatomy,
  tumour: TumourModel | undefined,
  labels: Uint8Array,
  size: readonly [number, number, number],
  appearance: Appearance,
  random: RandomSource,
): { channels: [Int16Array, Int16Array, Int16Array, Int16Array]; tissues: Uint8Array } {
  const [nx, ny, nz] = size;
  const voxels = nx * ny * nz;
  const { intensity, biasTables, gaussians, sigma } = appearance;
  const channels = [0, 1, 2, 3].map(() => new Int16Array(voxels)) as [Int16Array, Int16Array, Int16Array, Int16Array];
  const tissues = new Uint8Array(voxels);
  const draws = new Uint32Array(nx * CHANNEL_COUNT);
  const firstU = anatomy.u[0]!;
  const stepU = nx > 1 ? anatomy.u[1]! - firstU : 1;
  const mix = new Float64Array(TISSUE_COUNT);
  const rowBias = new Float64Array(CHANNEL_COUNT);
  const limit = anatomy.outerRadius * anatomy.outerRadius;
  for (let k = 0; k < nz; k++) {
    const w = anatomy.w[k]!;
    for (let j = 0; j < ny; j++) {
      const v = anatomy.v[j]!;
      const remaining = limit - v * v - w * w;
      if (remaining <= 0) continue;
      const reach = Math.sqrt(remaining);
      const iFirst = Math.max(0, Math.ceil((-reach - firstU) / stepU));
      const iEnd = Math.min(nx, Math.floor((reach - firstU) / stepU) + 1);
      if (iEnd <= iFirst) continue;
      // One generator step per channel and voxel of the row's span, drawn in one call.
      random.fill(draws, (iEnd - iFirst) * CHANNEL_COUNT);
      anatomy.setRow(j, k);
      for (let c = 0; c < CHANNEL_COUNT; c++) {
        rowBias[c] = biasTables[1][j * CHANNEL_COUNT + c]! * biasTables[2][k * CHANNEL_COUNT + c]!;
      }
      const row = j * nx + k * nx * ny;
      const tumourRow =
        tumour !== undefined &&
        k >= tumour.start[2] && k < tumour.start[2] + tumour.size[2] &&
        j >= tumour.start[1] && j < tumour.start[1] + tumour.size[1];
      const boxRow = tumour === undefined ? 0 : tumour.size[0] * (j - tumour.start[1] + tumour.size[1] * (k - tumour.start[2])) - tumour.start[0];
      for (let i = iFirst; i < iEnd; i++) {
        if (!anatomy.sample(i)) continue;
        const index = row + i;
        const fractions = anatomy.fractions;
        mix[PHANTOM_TISSUES.csf] = fractions[0]!;
        mix[PHANTOM_TISSUES.greyMatter] = fractions[1]!;
        mix[PHANTOM_TISSUES.whiteMatter] = fractions[2]!;
        mix[PHANTOM_TISSUES.deepGreyMatter] = fractions[3]!;
        mix[PHANTOM_TISSUES.bone] = fractions[4]!;
        mix[PHANTOM_TISSUES.scalp] = fractions[5]!;
        mix[PHANTOM_TISSUES.oedema] = 0;
        mix[PHANTOM_TISSUES.enhancing] = 0;
        mix[PHANTOM_TISSUES.necrosis] = 0;
        let textureFactor = 1;
        if (tumourRow && i >= tumour.start[0] && i < tumour.start[0] + tumour.size[0]) {
          const n = boxRow + i;
          const amount = tumour.amount[n]!;
          if (amount > 0) {
            const labelValue = labels[index]!;
            for (let t = 1; t < TISSUE_COUNT; t++) mix[t]! *= 1 - amount;
            if (labelValue === 1 || labelValue === 4) {
              mix[labelValue === 1 ? PHANTOM_TISSUES.necrosis : PHANTOM_TISSUES.enhancing]! += amount;
              textureFactor = tumour.texture[n]!;
            } else {
              mix[PHANTOM_TISSUES.oedema]! += amount;
            }
          }
        }
        let dominant = 0;
        let dominantFraction = 0;
        let flair = 0;
        let t1 = 0;
        let t1gd = 0;
        let t2 = 0;
        for (let t = 1; t < TISSUE_COUNT; t++) {
          const fraction = mix[t]!;
          if (fraction <= 0) continue;
          if (fraction > dominantFraction) {
            dominantFraction = fraction;
            dominant = t;
          }
          const base = t * CHANNEL_COUNT;
          flair += fraction * intensity[base]!;
          t1 += fraction * intensity[base + 1]!;
          t1gd += fraction * intensity[base + 2]!;
          t2 += fraction * intensity[base + 3]!;
        }
        tissues[index] = dominant;
        const biasBase = i * CHANNEL_COUNT;
        const factor = textureFactor;
        for (let c = 0; c < CHANNEL_COUNT; c++) {
          const clean = c === 0 ? flair : c === 1 ? t1 : c === 2 ? t1gd : t2;
          const signal = clean * factor * rowBias[c]! * biasTables[0][biasBase + c]!;
          const draw = draws[(i - iFirst) * CHANNEL_COUNT + c]!;
          const real = signal + sigma[c]! * gaussians[draw & 0xffff]!;
          const imaginary = sigma[c]! * gaussians[draw >>> 16]!;
          const magnitude = Math.round(Math.sqrt(real * real + imaginary * imaginary));
          channels[c]![index] = magnitude < 1 ? 1 : magnitude > 32767 ? 32767 : magnitude;
        }
      }
    }
  }
  return { channels, tissues };
}

/**
 * Fills the voxels outside the head (tissue 0) with what a scanner records there: the magnitude of complex Gaussian
 * noise of the channel's sigma, a Rayleigh distribution, rounded. A raw scan is never 0 around the head; only skull
 * stripping sets its background to 0, as BraTS does.
 */
function addBackgroundNoise(
  channels: [Int16Array, Int16Array, Int16Array, Int16Array],
  tissues: Uint8Array,
  gaussians: Float64Array,
  sigma: Float64Array,
  random: RandomSource,
): void {
  const draws = new Uint32Array(4096);
  let next = draws.length;
  for (let index = 0; index < tissues.length; index++) {
    if (tissues[index] !== 0) continue;
    for (let c = 0; c < CHANNEL_COUNT; c++) {
      if (next === draws.length) {
        random.fill(draws, draws.length);
        next = 0;
      }
      const draw = draws[next++]!;
      const real = sigma[c]! * gaussians[draw & 0xffff]!;
      const imaginary = sigma[c]! * gaussians[draw >>> 16]!;
      channels[c]![index] = Math.round(Math.sqrt(real * real + imaginary * imaginary));
    }
  }
}

/**
 * Generates one synthetic glioma case, deterministic by seed: FLAIR, T1w, T1gd and T2w as int16 3D
 * volumes (NIfTI i-j-k; exactly 0 outside the head, at least 1 inside; with `skull`, Rayleigh noise outside the head as
 * in a raw scan), a uint8 label map in the BraTS
 * 2017 convention (1 necrotic core, 2 oedema, 4 enhancing) and a tissue map. The anatomy fills the grid's
 * physical extent, so a small grid holds a small whole brain and tumour volumes scale with it. The affine
 * is {@link phantomAffine}.
 * @throws {ArgumentError} for a bad seed, a size outside [16, 1024] or a non-positive spacing.
 * @example const phantom = generatePhantom({ seed: 7, size: [96, 96, 64], spacing: [2.5, 2.5, 2.4] });
 */
export function generatePhantom(options: GeneratePhantomOptions): PhantomCase {
  const { size, spacing } = validateOptions(options);
  const [nx, ny, nz] = size;
  const voxels = nx * ny * nz;
  const random = createRandom(options.seed);
  const anatomy = new Anatomy(random, size, spacing, options.skull ?? false);
  const labels = new Uint8Array(voxels);
  const tumour = (options.tumour ?? true) ? placeTumour(random, anatomy, size, spacing, labels) : undefined;

  // Per-case scanner differences: a gain per channel and a few percent on each tissue.
  const intensity = new Float64Array(TISSUE_COUNT * CHANNEL_COUNT);
  const gains = [0, 1, 2, 3].map(() => random.uniform(0.8, 1.25));
  for (let t = 0; t < TISSUE_COUNT; t++) {
    for (let c = 0; c < CHANNEL_COUNT; c++) {
      intensity[t * CHANNEL_COUNT + c] = TISSUE_INTENSITY[t]![c]! * gains[c]! * random.uniform(0.95, 1.05);
    }
  }
  // Smooth multiplicative bias field per channel: exp of a sum of 1D terms, i.e. a product of 1D tables.
  const biasTables = [anatomy.u, anatomy.v, anatomy.w].map((coordinate) => {
    const table = new Float64Array(coordinate.length * CHANNEL_COUNT);
    for (let c = 0; c < CHANNEL_COUNT; c++) {
      const amplitude = random.uniform(0.04, 0.1);
      const frequency = random.uniform(0.5, 1.2);
      const phase = random.uniform(0, 2 * Math.PI);
      for (let n = 0; n < coordinate.length; n++) {
        table[n * CHANNEL_COUNT + c] = Math.exp(amplitude * Math.sin(frequency * coordinate[n]! + phase));
      }
    }
    return table;
  }) as [Float64Array, Float64Array, Float64Array];
  // Rician noise: |signal + complex Gaussian|. Gaussians come from a table indexed by the 16-bit halves
  // of one random integer, so a voxel costs one generator step per channel.
  const gaussians = new Float64Array(65536);
  for (let n = 0; n < gaussians.length; n++) gaussians[n] = random.normal();
  const sigma = new Float64Array(CHANNEL_COUNT);
  for (let c = 0; c < CHANNEL_COUNT; c++) {
    sigma[c] = random.uniform(0.018, 0.035) * intensity[PHANTOM_TISSUES.whiteMatter * CHANNEL_COUNT + c]!;
  }

  const { channels, tissues } = renderChannels(anatomy, tumour, labels, size, { intensity, biasTables, gaussians, sigma }, random);
  if (options.skull === true) addBackgroundNoise(channels, tissues, gaussians, sigma, random);
  // Labels belong to voxels of the head only.
  if (tumour !== undefined) for (let index = 0; index < voxels; index++) if (labels[index] !== 0 && tissues[index] === 0) labels[index] = 0;

  const affine = phantomAffine(size, spacing);
  const geometry = { spacing, affine, header: phantomHeader(affine, spacing) };
  const shape = [nx, ny, nz] as const;
  return {
    id: options.id ?? `phantom-${options.seed}`,
    seed: options.seed,
    channels: {
      FLAIR: createVolume('int16', channels[0], shape, geometry),
      T1w: createVolume('int16', channels[1], shape, geometry),
      T1gd: createVolume('int16', channels[2], shape, geometry),
      T2w: createVolume('int16', channels[3], shape, geometry),
    },
    labels: createVolume('uint8', labels, shape, geometry),
    tissues: createVolume('uint8', tissues, shape, geometry),
  };
}
