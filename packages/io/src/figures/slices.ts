/** Axial slices of volumes as pictures: grey-scale scans, masks and coloured region overlays. */
import { ArgumentError } from '../errors.js';
import type { RegionName } from '../regions.js';
import type { Affine, VolumeShape } from '../volume.js';
import { createFigure, drawText, type Figure } from './canvas.js';
import { surfaceOf } from './surface.js';

/** A 3D scalar image on a grid: flat data in NIfTI i-j-k order (i fastest). */
export interface SliceSource {
  data: ArrayLike<number>;
  shape: VolumeShape;
  affine: Affine;
}

import { REGION_COLORS } from '../regions.js';

export { REGION_COLORS };

/**
 * Screen placement of voxel (i, j) of an axial slice, in radiological convention: the patient's right on
 * the left of the picture and anterior at the top, as far as the affine's diagonal signs tell.
 */
function screenMapper(source: SliceSource): (i: number, j: number) => [number, number] {
  const [nx, ny] = source.shape;
  const flipColumns = source.affine[0][0] < 0;
  const flipRows = source.affine[1][1] > 0;
  return (i, j) => [flipColumns ? nx - 1 - i : i, flipRows ? ny - 1 - j : j];
}

/** 1st and 99.5th percentile of the non-zero voxels of slice z: a display window robust to bright outliers. */
export function displayWindow(source: SliceSource, z: number): [number, number] {
  const [nx, ny] = source.shape;
  const values: number[] = [];
  const base = nx * ny * z;
  for (let v = 0; v < nx * ny; v++) {
    const value = source.data[base + v]!;
    if (value !== 0) values.push(value);
  }
  if (values.length === 0) return [0, 1];
  values.sort((a, b) => a - b);
  const low = values[Math.floor(values.length * 0.01)]!;
  const high = values[Math.min(values.length - 1, Math.floor(values.length * 0.995))]!;
  return high > low ? [low, high] : [low, low + 1];
}

function checkSlice(functionName: string, source: SliceSource, z: number): void {
  if (source.data.length < source.shape[0] * source.shape[1] * source.shape[2]) {
    throw new ArgumentError(functionName, 'source', `has ${source.data.length} values for shape [${source.shape.join(', ')}]`);
  }
  if (!Number.isInteger(z) || z < 0 || z >= source.shape[2]) {
    throw new ArgumentError(functionName, 'z', `must be an integer in [0, ${source.shape[2] - 1}], got ${z}`);
  }
}

/**
 * Paints slice z of `source` into `figure` at (left, top), `scale` pixels per voxel, grey-scale within
 * `window`, then each mask in `overlays` (flat i-j-k masks of the same grid) in its colour with `alpha`.
 */
export function paintSlice(
  figure: Figure,
  source: SliceSource,
  z: number,
  placement: { left: number; top: number; scale: number },
  options: { window?: [number, number]; overlays?: { mask: ArrayLike<number>; color: readonly [number, number, number] }[]; alpha?: number } = {},
): void {
  checkSlice('paintSlice', source, z);
  const [nx, ny] = source.shape;
  const [low, high] = options.window ?? displayWindow(source, z);
  const alpha = options.alpha ?? 0.5;
  const toScreen = screenMapper(source);
  const base = nx * ny * z;
  const { left, top, scale } = placement;
  const data = surfaceOf(figure).data;
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      const voxel = base + i + nx * j;
      const grey = Math.max(0, Math.min(255, ((source.data[voxel]! - low) / (high - low)) * 255));
      let r = grey;
      let g = grey;
      let b = grey;
      for (const overlay of options.overlays ?? []) {
        if (overlay.mask[voxel]! > 0) {
          r = r * (1 - alpha) + overlay.color[0] * alpha;
          g = g * (1 - alpha) + overlay.color[1] * alpha;
          b = b * (1 - alpha) + overlay.color[2] * alpha;
        }
      }
      const [column, row] = toScreen(i, j);
      for (let dy = 0; dy < scale; dy++) {
        const y = top + row * scale + dy;
        if (y < 0 || y >= figure.height) continue;
        for (let dx = 0; dx < scale; dx++) {
          const x = left + column * scale + dx;
          if (x < 0 || x >= figure.width) continue;
          const offset = (y * figure.width + x) * 4;
          data[offset] = Math.round(r);
          data[offset + 1] = Math.round(g);
          data[offset + 2] = Math.round(b);
          data[offset + 3] = 255;
        }
      }
    }
  }
}

/** Inputs of {@link renderSliceFigure}. */
export interface SliceFigureInput {
  /** FLAIR (or any) scan on the grid. */
  scan: SliceSource;
  /** Ground-truth mask (0/1), flat i-j-k; omitted for unlabelled cases. */
  truth?: ArrayLike<number>;
  /** Predicted mask (0/1), flat i-j-k. */
  prediction: ArrayLike<number>;
  /** Axial slice index k. */
  z: number;
  /** Dice of this slice, shown in the prediction panel's title. */
  dice?: number;
  /** Pixels per voxel (default 2). */
  scale?: number;
}

/**
 * The seed's evaluation figure for one slice: three panels "MRI Input" (the scan in grey), "Ground truth"
 * and "Prediction, Dice = 0.9421" (masks white on black).
 */
export function renderSliceFigure(input: SliceFigureInput): Figure {
  const scale = input.scale ?? 2;
  const [nx, ny, nz] = input.scan.shape;
  const panel = { width: nx * scale, height: ny * scale };
  const margin = 16;
  const titleHeight = 34;
  const figure = createFigure(margin + 3 * (panel.width + margin), titleHeight + panel.height + margin, '#ffffff');
  const maskSource = (mask: ArrayLike<number>): SliceSource => ({ data: mask, shape: [nx, ny, nz], affine: input.scan.affine });
  const panels: { title: string; paint: (left: number) => void }[] = [
    { title: 'MRI Input', paint: (left) => paintSlice(figure, input.scan, input.z, { left, top: titleHeight, scale }) },
    {
      title: 'Ground truth',
      paint: (left) =>
        input.truth === undefined
          ? drawText(figure, 'not available', left + panel.width / 2, titleHeight + panel.height / 2, { align: 'center', color: '#888888' })
          : paintSlice(figure, maskSource(input.truth), input.z, { left, top: titleHeight, scale }, { window: [0, 1] }),
    },
    {
      title: input.dice === undefined ? 'Prediction' : `Prediction, Dice = ${Number.isNaN(input.dice) ? 'NaN' : input.dice.toFixed(4)}`,
      paint: (left) => paintSlice(figure, maskSource(input.prediction), input.z, { left, top: titleHeight, scale }, { window: [0, 1] }),
    },
  ];
  panels.forEach(({ title, paint }, index) => {
    const left = margin + index * (panel.width + margin);
    drawText(figure, title, left + panel.width / 2, titleHeight - 10, { align: 'center', size: 12 });
    paint(left);
  });
  return figure;
}

/**
 * A montage of `count` axial slices through the tumour (or the whole scan when there is none), the scan in
 * grey with each region's mask coloured (WT green, TC red, ET yellow), titled with the slice index.
 * @param regions masks (0/1, flat i-j-k) by region; painted in the order WT, TC, ET so inner regions stay visible.
 */
export function renderOverlayMontage(
  scan: SliceSource,
  regions: Partial<Record<RegionName, ArrayLike<number>>>,
  options: { count?: number; columns?: number; scale?: number; title?: string } = {},
): Figure {
  const [nx, ny, nz] = scan.shape;
  const count = Math.min(options.count ?? 8, nz);
  const columns = Math.min(options.columns ?? 4, count);
  const rows = Math.ceil(count / columns);
  const scale = options.scale ?? 1;
  // Slices spread over the tumour's extent along k, or over the middle of the scan.
  let first = Math.floor(nz * 0.25);
  let last = Math.ceil(nz * 0.75);
  const whole = regions.WT;
  if (whole !== undefined) {
    let low = nz;
    let high = -1;
    for (let k = 0; k < nz; k++) {
      for (let v = 0, base = nx * ny * k; v < nx * ny; v++) {
        if (whole[base + v]! > 0) {
          if (k < low) low = k;
          high = k;
          break;
        }
      }
    }
    if (high >= low) {
      first = low;
      last = high;
    }
  }
  const picks = Array.from({ length: count }, (_, n) => Math.round(first + ((last - first) * (n + 0.5)) / count));
  const margin = 8;
  const header = options.title === undefined ? 0 : 30;
  const labelHeight = 18;
  const cellWidth = nx * scale;
  const cellHeight = ny * scale + labelHeight;
  const figure = createFigure(margin + columns * (cellWidth + margin), header + margin + rows * (cellHeight + margin), '#111111');
  if (options.title !== undefined) drawText(figure, options.title, margin, 22, { color: '#ffffff', size: 13 });
  const overlays = (['WT', 'TC', 'ET'] as const)
    .filter((region) => regions[region] !== undefined)
    .map((region) => ({ mask: regions[region]!, color: REGION_COLORS[region] }));
  picks.forEach((z, n) => {
    const left = margin + (n % columns) * (cellWidth + margin);
    const top = header + margin + Math.floor(n / columns) * (cellHeight + margin);
    drawText(figure, `z = ${z}`, left + 2, top + 13, { color: '#dddddd', size: 10 });
    paintSlice(figure, scan, z, { left, top: top + labelHeight, scale }, { overlays, alpha: 0.45 });
  });
  return figure;
}
