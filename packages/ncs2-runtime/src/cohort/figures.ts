/** The per-case figures of a prediction: the seed's slice figures (with slice Dice) and an overlay montage. */
import path from 'node:path';
import { renderOverlayMontage, renderSliceFigure, writePng, type RegionName } from '@brats/io';
import { computeDice } from '@brats/metrics';
import type { Segmentation } from '../segment/index.js';

/** Slices to show: up to `count` of the largest tumour area (reference, else prediction), at least 5 apart. */
function chooseSlices(mask: Uint8Array, shape: readonly [number, number, number], count: number): number[] {
  const [nx, ny, nz] = shape;
  const areas = Array.from({ length: nz }, (_, k) => {
    let area = 0;
    for (let v = nx * ny * k; v < nx * ny * (k + 1); v++) area += mask[v]!;
    return { k, area };
  });
  const chosen: number[] = [];
  for (const { k, area } of areas.sort((a, b) => b.area - a.area)) {
    if (area === 0 || chosen.length >= count) break;
    if (chosen.every((other) => Math.abs(other - k) >= 5)) chosen.push(k);
  }
  return chosen.length > 0 ? chosen.sort((a, b) => a - b) : [Math.floor(nz / 2)];
}

/** Dice of one axial slice (the seed's per-slice figure): both empty scores 1, as in the BraTS rule. */
function sliceDiceOf(truth: Uint8Array, prediction: Uint8Array, z: number, sliceVoxels: number): number {
  const slice = (mask: Uint8Array) => mask.subarray(z * sliceVoxels, (z + 1) * sliceVoxels);
  return computeDice(slice(prediction), slice(truth), { convention: 'brats' });
}

/**
 * Writes `<folder>/<case id>-z<k>.png` for up to three axial slices through the tumour (FLAIR, reference and
 * prediction, slice Dice when the case has a reference) and `<folder>/<case id>-overlay.png`, a montage of the
 * predicted regions over FLAIR. Returns the files written, in that order.
 */
export async function writeCaseFigures(folder: string, prediction: Segmentation, truthWt: Uint8Array | undefined): Promise<string[]> {
  const caseData = prediction.case;
  const flair = caseData.channels[0];
  const shape = [flair.shape[0], flair.shape[1], flair.shape[2]] as const;
  const predictedWt = prediction.masks[prediction.regions.indexOf('WT')]!;
  const files: string[] = [];
  for (const z of chooseSlices(truthWt ?? predictedWt, shape, 3)) {
    const sliceVoxels = shape[0] * shape[1];
    const figure = renderSliceFigure({
      scan: flair,
      prediction: predictedWt,
      z,
      ...(truthWt === undefined ? {} : { truth: truthWt, dice: sliceDiceOf(truthWt, predictedWt, z, sliceVoxels) }),
    });
    const file = path.join(folder, `${caseData.id}-z${String(z).padStart(3, '0')}.png`);
    await writePng(file, figure);
    files.push(file);
  }
  const overlays: Partial<Record<RegionName, Uint8Array>> = {};
  prediction.regions.forEach((region, index) => (overlays[region] = prediction.masks[index]!));
  const montage = renderOverlayMontage(flair, overlays, { title: `${caseData.id}: predicted ${prediction.regions.join(', ')}`, count: 8, columns: 4 });
  const montageFile = path.join(folder, `${caseData.id}-overlay.png`);
  await writePng(montageFile, montage);
  files.push(montageFile);
  return files;
}
