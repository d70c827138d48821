/**
 * On-the-fly augmentation of training slices, identical for image and mask and deterministic by seed:
 * flips, 90-degree rotations, a small rotation/shear/scale, and per-channel intensity scale and shift.
 * Written on typed arrays (not tensors) so it runs beside the model without touching the backend's memory,
 * and so a resumed run reproduces it exactly.
 */
import { ArgumentError, type RandomSource } from '@brats/io';

/** Options of {@link augmentBatch}; every transform can be switched off. */
export interface AugmentOptions {
  /** Random horizontal and vertical flips (default true). */
  flips?: boolean;
  /** Random multiples of 90 degrees, square slices only (default true). */
  rotate90?: boolean;
  /** Largest extra rotation in degrees (default 10; 0 disables). */
  maxRotationDegrees?: number;
  /** Largest shear angle in degrees (default 5, the seed's shear). */
  maxShearDegrees?: number;
  /** Largest relative zoom, e.g. 0.1 for ±10 % (default 0.1). */
  maxScale?: number;
  /** Probability that a slice gets the small rotation/shear/scale (default 0.5). */
  affineProbability?: number;
  /** Largest relative intensity scale per channel (default 0.1). */
  intensityScale?: number;
  /** Largest intensity shift per channel, in normalised units (default 0.1). */
  intensityShift?: number;
}

/** Resolved augmentation settings, as recorded in a bundle's manifest. */
export type AugmentSettings = Required<AugmentOptions>;

/** The defaults of {@link AugmentOptions}. */
export const DEFAULT_AUGMENTATION: AugmentSettings = {
  flips: true,
  rotate90: true,
  maxRotationDegrees: 10,
  maxShearDegrees: 5,
  maxScale: 0.1,
  affineProbability: 0.5,
  intensityScale: 0.1,
  intensityShift: 0.1,
};

/** Output pixel (y, x) samples input (a·y + b·x + c, d·y + e·x + f), coordinates centred on the slice. */
type InverseMap = [number, number, number, number, number, number];

/**
 * Augments a batch in place.
 * @param images [batch, height, width, channels] float32, channels last.
 * @param masks [batch, height, width, maskChannels] 0/1 (uint8 or float32).
 * @throws {ArgumentError} when the arrays do not match `shape`.
 */
export function augmentBatch(
  images: Float32Array,
  masks: Uint8Array | Float32Array,
  shape: readonly [number, number, number, number],
  maskChannels: number,
  random: RandomSource,
  options: AugmentOptions = {},
): void {
  const settings = { ...DEFAULT_AUGMENTATION, ...options };
  const [batch, height, width, channels] = shape;
  const pixels = height * width;
  if (images.length !== batch * pixels * channels) {
    throw new ArgumentError('augmentBatch', 'images', `has ${images.length} values for shape [${shape.join(', ')}]`);
  }
  if (masks.length !== batch * pixels * maskChannels) {
    throw new ArgumentError('augmentBatch', 'masks', `has ${masks.length} values for [${batch}, ${height}, ${width}, ${maskChannels}]`);
  }
  const imageCopy = new Float32Array(pixels * channels);
  const maskCopy = new Float32Array(pixels * maskChannels);
  for (let b = 0; b < batch; b++) {
    const map = drawTransform(random, settings, height, width);
    const imageSlice = images.subarray(b * pixels * channels, (b + 1) * pixels * channels);
    const maskSlice = masks.subarray(b * pixels * maskChannels, (b + 1) * pixels * maskChannels);
    if (map !== undefined) {
      imageCopy.set(imageSlice);
      maskCopy.set(maskSlice);
      resample(imageCopy, imageSlice, maskCopy, maskSlice, height, width, channels, maskChannels, map);
    }
    for (let c = 0; c < channels; c++) {
      const scale = settings.intensityScale > 0 ? random.uniform(1 - settings.intensityScale, 1 + settings.intensityScale) : 1;
      const shift = settings.intensityShift > 0 ? random.uniform(-settings.intensityShift, settings.intensityShift) : 0;
      if (scale === 1 && shift === 0) continue;
      for (let p = 0; p < pixels; p++) imageSlice[p * channels + c] = imageSlice[p * channels + c]! * scale + shift;
    }
  }
}

function drawTransform(random: RandomSource, settings: AugmentSettings, height: number, width: number): InverseMap | undefined {
  // Forward transform F = A(affine) · R90^k · Flip; we build its inverse, which maps output to input coordinates.
  let a = 1;
  let b = 0;
  let d = 0;
  let e = 1;
  const compose = (m11: number, m12: number, m21: number, m22: number): void => {
    // inverse := inverse · M (M maps output coordinates one step back towards the input)
    const na = a * m11 + b * m21;
    const nb = a * m12 + b * m22;
    const nd = d * m11 + e * m21;
    const ne = d * m12 + e * m22;
    a = na;
    b = nb;
    d = nd;
    e = ne;
  };
  let identity = true;
  if (settings.flips) {
    if (random.next() < 0.5) {
      compose(-1, 0, 0, 1);
      identity = false;
    }
    if (random.next() < 0.5) {
      compose(1, 0, 0, -1);
      identity = false;
    }
  }
  if (settings.rotate90 && height === width) {
    const quarterTurns = random.nextUint32() % 4;
    for (let q = 0; q < quarterTurns; q++) compose(0, 1, -1, 0);
    if (quarterTurns > 0) identity = false;
  }
  const wantsAffine = settings.maxRotationDegrees > 0 || settings.maxShearDegrees > 0 || settings.maxScale > 0;
  if (wantsAffine && random.next() < settings.affineProbability) {
    const theta = (random.uniform(-settings.maxRotationDegrees, settings.maxRotationDegrees) * Math.PI) / 180;
    const shear = (random.uniform(-settings.maxShearDegrees, settings.maxShearDegrees) * Math.PI) / 180;
    const zoom = random.uniform(1 - settings.maxScale, 1 + settings.maxScale);
    // Inverse of (rotation · shear · zoom): sample the input at the rotated, sheared, unzoomed position.
    const cos = Math.cos(theta) / zoom;
    const sin = Math.sin(theta) / zoom;
    const tanShear = Math.tan(shear);
    compose(cos, -sin + cos * tanShear, sin, cos + sin * tanShear);
    identity = false;
  }
  if (identity) return undefined;
  const cy = (height - 1) / 2;
  const cx = (width - 1) / 2;
  // Centre: input = M · (output - centre) + centre.
  return [a, b, cy - a * cy - b * cx, d, e, cx - d * cy - e * cx];
}

function resample(
  imageSource: Float32Array,
  imageTarget: Float32Array,
  maskSource: Float32Array,
  maskTarget: Uint8Array | Float32Array,
  height: number,
  width: number,
  channels: number,
  maskChannels: number,
  map: InverseMap,
): void {
  const [a, b, c, d, e, f] = map;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // Edge pixels are repeated outside the slice (Keras's fill_mode 'nearest', which the seed used).
      const sy = Math.min(height - 1, Math.max(0, a * y + b * x + c));
      const sx = Math.min(width - 1, Math.max(0, d * y + e * x + f));
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const y1 = Math.min(height - 1, y0 + 1);
      const x1 = Math.min(width - 1, x0 + 1);
      const wy = sy - y0;
      const wx = sx - x0;
      const out = y * width + x;
      const p00 = y0 * width + x0;
      const p01 = y0 * width + x1;
      const p10 = y1 * width + x0;
      const p11 = y1 * width + x1;
      for (let ch = 0; ch < channels; ch++) {
        const v00 = imageSource[p00 * channels + ch]!;
        const v01 = imageSource[p01 * channels + ch]!;
        const v10 = imageSource[p10 * channels + ch]!;
        const v11 = imageSource[p11 * channels + ch]!;
        imageTarget[out * channels + ch] = (v00 * (1 - wx) + v01 * wx) * (1 - wy) + (v10 * (1 - wx) + v11 * wx) * wy;
      }
      const nearest = Math.round(sy) * width + Math.round(sx);
      for (let k = 0; k < maskChannels; k++) maskTarget[out * maskChannels + k] = maskSource[nearest * maskChannels + k]!;
    }
  }
}
