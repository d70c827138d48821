/**
 * The label convention a segmentation is written in, the label value of each nested region set, and region
 * volumes: the parts of turning region masks into a label map that the CLI, the server and the queue share.
 */
import {
  ArgumentError,
  LAYOUT_LABELS,
  REGION_NAMES,
  WHOLE_TUMOUR_LABELS,
  type LabelRegionMapping,
  type LayoutName,
  type RegionName,
} from '@brats/io/browser';

/** The convention of a label map and why it was chosen. */
export interface OutputConvention {
  readonly mapping: LabelRegionMapping;
  readonly reason: string;
}

const CONVENTION_TITLES: Readonly<Record<string, string>> = {
  msd: 'Decathlon 1 oedema / 2 non-enhancing / 3 enhancing',
  brats2017: 'BraTS 2017-2021 1 core / 2 oedema / 4 enhancing',
  brats2023: 'BraTS 2023+ 1 core / 2 oedema / 3 enhancing',
  wt: '0/1 whole tumour',
};

/** A short human title of a label convention, e.g. `BraTS 2017-2021 1 core / 2 oedema / 4 enhancing`. */
export function describeConvention(mapping: LabelRegionMapping): string {
  return CONVENTION_TITLES[mapping.name] ?? mapping.name;
}

/**
 * The label convention a model's output is written in: 0/1 for a whole-tumour model, else the input layout's
 * own convention (BraTS 2017-2021 1/2/4, BraTS 2023+ 1/2/3, Decathlon 1/2/3), unless `requested` overrides it.
 * @throws {ArgumentError} when a one-region model is asked for a multi-region convention.
 */
export function chooseOutputConvention(regions: readonly RegionName[], layout: LayoutName, requested?: LabelRegionMapping): OutputConvention {
  if (regions.length === 1) {
    if (requested !== undefined && requested.name !== WHOLE_TUMOUR_LABELS.name) {
      throw new ArgumentError('chooseOutputConvention', 'requested', `is '${requested.name}', but a model with the one region ${regions[0]} can only write 0/1 masks`);
    }
    return { mapping: WHOLE_TUMOUR_LABELS, reason: `labels ${describeConvention(WHOLE_TUMOUR_LABELS)} (the model has one output region, ${regions[0]})` };
  }
  if (requested !== undefined) return { mapping: requested, reason: `labels ${describeConvention(requested)} (as asked)` };
  const mapping = LAYOUT_LABELS[layout];
  return { mapping, reason: `labels ${describeConvention(mapping)} (the input's ${layout} layout)` };
}

/** Label values of the three nested region sets in one convention: WT only, WT+TC, WT+TC+ET. */
export interface NestedLabelValues {
  readonly oedema: number;
  readonly core: number;
  readonly enhancing: number;
}

/**
 * The label value of each nested region set in `mapping`.
 * @throws {ArgumentError} when the convention has no label for one of them (e.g. the 0/1 whole-tumour convention).
 */
export function nestedLabelValues(mapping: LabelRegionMapping): NestedLabelValues {
  const find = (wanted: readonly RegionName[]): number => {
    for (const value of Object.keys(mapping.labels)) {
      const regions = REGION_NAMES.filter((region) => mapping.regions[region].includes(Number(value)));
      if (regions.length === wanted.length && wanted.every((region) => regions.includes(region))) return Number(value);
    }
    throw new ArgumentError('nestedLabelValues', 'mapping', `${mapping.name} has no label for regions ${wanted.join('+')}`);
  };
  return { oedema: find(['WT']), core: find(['WT', 'TC']), enhancing: find(['WT', 'TC', 'ET']) };
}

/** One label value of a convention, the innermost region it belongs to, and its meaning (for legends and viewers). */
export interface LabelLegendEntry {
  readonly value: number;
  readonly region: RegionName;
  readonly meaning: string;
}

/** Each label value of `mapping` with the innermost region it belongs to, ascending by value. */
export function describeLabels(mapping: LabelRegionMapping): LabelLegendEntry[] {
  return Object.entries(mapping.labels)
    .map(([value, meaning]) => {
      const number = Number(value);
      const regions = REGION_NAMES.filter((region) => mapping.regions[region].includes(number));
      return { value: number, region: regions[regions.length - 1] ?? 'WT', meaning };
    })
    .sort((a, b) => a.value - b.value);
}

/**
 * Volume in mL of each region mask: voxel count times the voxel volume (`spacing` in mm along i, j, k).
 * @throws {ArgumentError} when `masks` and `regions` differ in length.
 */
export function regionVolumesMl(
  regions: readonly RegionName[],
  masks: readonly Uint8Array[],
  spacing: readonly [number, number, number],
): Partial<Record<RegionName, number>> {
  if (masks.length !== regions.length) throw new ArgumentError('regionVolumesMl', 'masks', `has ${masks.length} masks for ${regions.length} regions`);
  const voxelMl = (spacing[0] * spacing[1] * spacing[2]) / 1000;
  const volumes: Partial<Record<RegionName, number>> = {};
  regions.forEach((region, index) => {
    volumes[region] = byteSum(masks[index]!) * voxelMl;
  });
  return volumes;
}

/**
 * The sum of a mask's bytes, four at a time where they are 32-bit aligned: a word's four bytes add up in two 16-bit
 * lanes (bytes 0 + 1 and 2 + 3, at most 510 per word), 128 words at a time (at most 65,280 per lane: no carry from
 * one lane into the other), then fold into the total. Exact for any byte values.
 */
export function byteSum(mask: Uint8Array): number {
  const head = (4 - (mask.byteOffset % 4)) % 4;
  let total = 0;
  if (mask.length < head + 4) {
    for (let v = 0; v < mask.length; v++) total += mask[v]!;
    return total;
  }
  for (let v = 0; v < head; v++) total += mask[v]!;
  const words = new Uint32Array(mask.buffer, mask.byteOffset + head, Math.floor((mask.length - head) / 4));
  for (let start = 0; start < words.length; start += 128) {
    const end = Math.min(words.length, start + 128);
    let lanes = 0;
    for (let w = start; w < end; w++) {
      const word = words[w]!;
      lanes += (word & 0x00ff00ff) + ((word >>> 8) & 0x00ff00ff);
    }
    total += (lanes & 0xffff) + (lanes >>> 16);
  }
  for (let v = head + words.length * 4; v < mask.length; v++) total += mask[v]!;
  return total;
}
