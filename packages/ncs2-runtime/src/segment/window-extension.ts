/**
 * Segmenting beyond the model's window. The seed's model sees a fixed window of the scan (144 voxels along i, j
 * and k, centred), and a brain is often longer than that from front to back: a tumour at a pole of the brain lies
 * partly outside the window, and a label map made from the window alone silently ends at its edge. Where the
 * predicted whole tumour reaches a face of the window while the scan goes on beyond it, more windows of the same size
 * cover the scan beyond that face (the model is 2D: across i and j, windows shifted in-plane; along k, the slices
 * beyond the window), each normalised with the statistics of the case's own window so the model sees the same
 * intensities everywhere. No library does this for a slice engine of fixed input size; it is a few loops.
 */
import { axisEndDirection } from '@brats/io/browser';
import type { Shape3 } from './resample.js';

/** A face of the window: the axis (0 = i, 1 = j, 2 = k) and which end of it. */
export interface WindowFace {
  axis: 0 | 1 | 2;
  side: 'low' | 'high';
}

/** How far windows beyond a face reach back into the scan already segmented, in voxels: context for the model. */
export const EXTENSION_OVERLAP = 16;

/**
 * `inferior (k-low)`, `posterior (j-high)`, … for messages: the anatomical side of a face of the model's window (a grid
 * in `modelOrientation`) and the end of the scan's own voxel axis that faces that side (the scan in `scanOrientation`,
 * which differs when the scan was turned to the model's orientation), so the user reads it in the scan's own terms.
 */
export function describeFace(face: WindowFace, modelOrientation: string, scanOrientation: string = modelOrientation): string {
  const side = axisEndDirection(modelOrientation, face.axis, face.side);
  for (const axis of [0, 1, 2] as const) {
    for (const end of ['low', 'high'] as const) {
      if (axisEndDirection(scanOrientation, axis, end) === side) return `${side} (${'ijk'[axis]}-${end})`;
    }
  }
  // Two orientations name every side once each: unreachable for valid orientations.
  return side;
}

/**
 * The faces of a window whose outermost layer holds a voxel above `threshold` in output channel `channel`, among the
 * faces in `axes` beyond which the scan goes on.
 * @param block [depth (k), height (i), width (j), K] channels-last probabilities of the window.
 * @param start the window's first voxel [i, j, k] in the scan (model grid).
 * @param shape the scan's shape [i, j, k].
 */
export function touchedFaces(
  block: Float32Array,
  blockShape: readonly [number, number, number, number],
  start: readonly [number, number, number],
  shape: Shape3,
  channel: number,
  threshold: number,
  axes: readonly (0 | 1 | 2)[],
): WindowFace[] {
  const [depth, height, width, K] = blockShape;
  const sizes = [height, width, depth];
  const faces: WindowFace[] = [];
  for (const axis of axes) {
    for (const side of ['low', 'high'] as const) {
      // Only a face inside the scan has scan beyond it.
      const inside = side === 'low' ? start[axis]! > 0 : start[axis]! + sizes[axis]! < shape[axis]!;
      if (!inside) continue;
      const layer = side === 'low' ? 0 : sizes[axis]! - 1;
      if (layerExceeds(block, depth, height, width, K, channel, threshold, axis, layer)) faces.push({ axis, side });
    }
  }
  return faces;
}

/** Whether any voxel of one layer of the block (h = layer, w = layer or z = layer) exceeds the threshold. */
function layerExceeds(block: Float32Array, depth: number, height: number, width: number, K: number, channel: number, threshold: number, axis: 0 | 1 | 2, layer: number): boolean {
  const [zRange, hRange, wRange] = [axis === 2 ? [layer, layer + 1] : [0, depth], axis === 0 ? [layer, layer + 1] : [0, height], axis === 1 ? [layer, layer + 1] : [0, width]];
  for (let z = zRange[0]!; z < zRange[1]!; z++) {
    for (let h = hRange[0]!; h < hRange[1]!; h++) {
      for (let w = wRange[0]!, v = ((z * height + h) * width + w) * K + channel; w < wRange[1]!; w++, v += K) {
        if (block[v]! > threshold) return true;
      }
    }
  }
  return false;
}

/**
 * Starts of the windows of `size` that cover the scan beyond one face of a window starting at `start`, along an axis
 * of `extent` voxels: each reaches back {@link EXTENSION_OVERLAP} voxels (at most half its size) into what the one before covered, the last
 * ends at the scan's edge (a scan smaller than the window has no face inside it: no windows).
 */
export function extensionStarts(extent: number, size: number, start: number, side: 'low' | 'high'): number[] {
  if (size >= extent) return [];
  // A window smaller than twice the overlap reaches back half its size.
  const overlap = Math.min(EXTENSION_OVERLAP, Math.floor(size / 2));
  const step = size - overlap;
  const starts: number[] = [];
  if (side === 'low') {
    for (let covered = start; covered > 0; ) {
      const next = Math.max(0, covered - step);
      starts.push(next);
      covered = next;
    }
  } else {
    for (let end = start + size; end < extent; ) {
      const next = Math.min(extent - size, end - overlap);
      starts.push(next);
      end = next + size;
    }
  }
  return starts;
}

/**
 * The in-plane windows [i, j] beyond the touched faces of axes i and j: along each axis the window's own start and
 * those beyond each touched face, every combination but the window's own (a corner beyond two faces gets its own).
 */
export function inPlaneStarts(start: readonly [number, number, number], size: readonly [number, number, number], shape: Shape3, faces: readonly WindowFace[]): [number, number][] {
  const along = ([0, 1] as const).map((axis) => [
    start[axis]!,
    ...faces.filter((face) => face.axis === axis).flatMap((face) => extensionStarts(shape[axis]!, size[axis]!, start[axis]!, face.side)),
  ]);
  const starts: [number, number][] = [];
  for (const i of along[0]!) for (const j of along[1]!) if (i !== start[0] || j !== start[1]) starts.push([i, j]);
  return starts;
}

/**
 * Which window owns each in-plane position (i + nx·j): the first in `rects` ([i, j] starts, all of `size`) that
 * holds it, -1 where none does. The scan's voxels get their values from the window that owns their column.
 */
export function ownerMap(rects: readonly (readonly [number, number])[], size: readonly [number, number], shape: Shape3): Int16Array {
  const [nx, ny] = shape;
  const owner = new Int16Array(nx * ny).fill(-1);
  rects.forEach(([i0, j0], index) => {
    for (let j = Math.max(0, j0); j < Math.min(ny, j0 + size[1]); j++) {
      for (let i = Math.max(0, i0); i < Math.min(nx, i0 + size[0]); i++) if (owner[i + nx * j] === -1) owner[i + nx * j] = index;
    }
  });
  return owner;
}

/**
 * Writes a window's slices into volumes on the scan's grid, at the columns `owner` gives to window `index`:
 * probabilities as they are, or with `thresholds` 0/1 masks (1 above the region's threshold). `block` holds the
 * slices `slices` of the window one after another ([slices.length, height, width, K]): only those a window beyond
 * the model's computes, not a whole block of its depth.
 */
export function writeWindow(
  targets: readonly (Float32Array | Uint8Array)[],
  block: Float32Array,
  blockShape: readonly [number, number, number, number],
  start: readonly [number, number, number],
  slices: readonly number[],
  owner: Int16Array,
  index: number,
  shape: Shape3,
  thresholds?: readonly number[],
): void {
  const [, height, width, K] = blockShape;
  const [nx, ny, nz] = shape;
  const [i0, j0, k0] = start;
  for (const [position, z] of slices.entries()) {
    const k = k0 + z;
    if (k < 0 || k >= nz) continue;
    for (let w = Math.max(0, -j0); w < Math.min(width, ny - j0); w++) {
      const j = j0 + w;
      for (let h = Math.max(0, -i0); h < Math.min(height, nx - i0); h++) {
        const i = i0 + h;
        if (owner[i + nx * j] !== index) continue;
        const target = i + nx * (j + ny * k);
        const source = ((position * height + h) * width + w) * K;
        for (let r = 0; r < K; r++) {
          const value = block[source + r]!;
          targets[r]![target] = thresholds === undefined ? value : value > thresholds[r]! ? 1 : 0;
        }
      }
    }
  }
}
