/**
 * BraTS regions (WT, TC, ET) from label maps of any layout, through a label → region mapping, and region volumes.
 */
import { ArgumentError } from './errors.js';
import { REGION_NAMES, allowedLabels, regionMask, type LabelRegionMapping, type RegionName } from './labels.js';
import { DEFAULT_THRESHOLD } from './overlap.js';
import { checkSpacing, checkThreshold, checkValues, type GridSpacing, type VoxelValues } from './validate.js';

/** Checks a mapping's shape (name and the three region label lists). */
export function checkMapping(functionName: string, argument: string, mapping: unknown): LabelRegionMapping {
  const candidate = mapping as Partial<LabelRegionMapping> | null | undefined;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.name !== 'string' ||
    candidate.regions === null ||
    typeof candidate.regions !== 'object' ||
    candidate.labels === null ||
    typeof candidate.labels !== 'object' ||
    !REGION_NAMES.every((region) => Array.isArray(candidate.regions?.[region]))
  ) {
    throw new ArgumentError(functionName, argument, 'must be a LabelRegionMapping (e.g. MSD_LABELS, BRATS2017_LABELS, BRATS2023_LABELS)');
  }
  return candidate as LabelRegionMapping;
}

/** Checks a list of region names (undefined gives WT, TC, ET). */
export function checkRegions(functionName: string, regions: unknown): readonly RegionName[] {
  if (regions === undefined) return REGION_NAMES;
  if (!Array.isArray(regions) || regions.length === 0) {
    throw new ArgumentError(functionName, 'options.regions', `must be a non-empty list of ${REGION_NAMES.join(', ')}`);
  }
  for (const region of regions as unknown[]) {
    if (typeof region !== 'string' || !(REGION_NAMES as readonly string[]).includes(region)) {
      throw new ArgumentError(functionName, 'options.regions', `holds '${String(region)}'; known: ${REGION_NAMES.join(', ')}`);
    }
  }
  return regions as RegionName[];
}

/**
 * Throws when a label map holds a value that is not a label of its mapping, so that a map read with the wrong
 * layout is reported instead of scored as background.
 */
export function checkLabelValues(functionName: string, argument: string, labels: VoxelValues, mapping: LabelRegionMapping): void {
  const allowed = allowedLabels(mapping);
  const lookup = new Uint8Array(256);
  for (const value of allowed) if (value >= 0 && value < 256) lookup[value] = 1;
  for (let v = 0; v < labels.length; v++) {
    const value = labels[v]!;
    if (!(value >= 0 && value < 256 && lookup[value] === 1)) {
      throw new ArgumentError(
        functionName,
        argument,
        `holds value ${value} at voxel ${v}, not a label of mapping '${mapping.name}' (allowed: ${[...allowed].join(', ')})`,
      );
    }
  }
}

/**
 * Binary masks (uint8 0/1, the label map's voxel order) of the BraTS regions of a label map.
 * @param labels integer label map, flat; @param mapping its label convention (e.g. BRATS2017_LABELS);
 * @param regions which regions (default WT, TC, ET).
 * @throws {ArgumentError} for a bad mapping, an unknown region, or a value that is not a label of `mapping`.
 * @example const { WT } = regionMasksFromLabels(seg.data, BRATS2017_LABELS);
 */
export function regionMasksFromLabels(
  labels: VoxelValues,
  mapping: LabelRegionMapping,
  regions: readonly RegionName[] = REGION_NAMES,
): Partial<Record<RegionName, Uint8Array>> {
  checkValues('regionMasksFromLabels', 'labels', labels);
  checkMapping('regionMasksFromLabels', 'mapping', mapping);
  const checkedRegions = checkRegions('regionMasksFromLabels', regions);
  checkLabelValues('regionMasksFromLabels', 'labels', labels, mapping);
  const masks: Partial<Record<RegionName, Uint8Array>> = {};
  for (const region of checkedRegions) masks[region] = regionMask(labels, mapping, region);
  return masks;
}

/** Volume of one voxel in mL (mm³ / 1000). */
export function voxelVolumeMl(spacing: GridSpacing): number {
  return (spacing[0] * spacing[1] * spacing[2]) / 1000;
}

/**
 * Volume in mL of a mask's foreground: voxel count × spacing product / 1000.
 * @param mask flat values, foreground where ≥ `threshold` (default 0.5); @param spacing voxel size in mm along i, j, k.
 * @throws {ArgumentError} for a bad array, spacing or threshold.
 */
export function computeVolumeMl(mask: VoxelValues, spacing: GridSpacing, threshold = DEFAULT_THRESHOLD): number {
  checkValues('computeVolumeMl', 'mask', mask);
  checkSpacing('computeVolumeMl', 'spacing', spacing);
  checkThreshold('computeVolumeMl', threshold);
  let count = 0;
  for (let v = 0; v < mask.length; v++) if (mask[v]! >= threshold) count++;
  return count * voxelVolumeMl(spacing);
}
