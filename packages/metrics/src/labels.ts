/**
 * Label conventions and the label → region mappings of the BraTS releases. Canonical regions are
 * WT (whole tumour), TC (tumour core) and ET (enhancing tumour). They live here, with no dependency, because
 * scoring needs them as much as reading does; @brats/io re-exports every name.
 */
import { ArgumentError } from './errors.js';

/** The canonical BraTS evaluation regions: WT (whole tumour), TC (tumour core), ET (enhancing tumour). */
export type RegionName = 'WT' | 'TC' | 'ET';

/** All canonical regions, in their conventional order WT, TC, ET. */
export const REGION_NAMES: readonly RegionName[] = ['WT', 'TC', 'ET'];

/** Which label values make up each region, and what each label value means. */
export interface LabelRegionMapping {
  /** Name of the convention, e.g. `msd`. */
  name: string;
  /** Label values that belong to each region. */
  regions: Readonly<Record<RegionName, readonly number[]>>;
  /** Meaning of every non-background label value. */
  labels: Readonly<Record<number, string>>;
}

/** Medical Segmentation Decathlon Task01: 1 oedema, 2 non-enhancing tumour, 3 enhancing tumour. */
export const MSD_LABELS: LabelRegionMapping = {
  name: 'msd',
  regions: { WT: [1, 2, 3], TC: [2, 3], ET: [3] },
  labels: { 1: 'oedema', 2: 'non-enhancing tumour', 3: 'enhancing tumour' },
};

/** BraTS 2017-2021: 1 necrotic/non-enhancing core, 2 oedema, 4 enhancing tumour. */
export const BRATS2017_LABELS: LabelRegionMapping = {
  name: 'brats2017',
  regions: { WT: [1, 2, 4], TC: [1, 4], ET: [4] },
  labels: { 1: 'necrotic / non-enhancing tumour core', 2: 'peritumoral oedema', 4: 'enhancing tumour' },
};

/** BraTS 2023 and later: 1 necrotic core, 2 oedema, 3 enhancing tumour. */
export const BRATS2023_LABELS: LabelRegionMapping = {
  name: 'brats2023',
  regions: { WT: [1, 2, 3], TC: [1, 3], ET: [3] },
  labels: { 1: 'necrotic tumour core', 2: 'peritumoral oedema', 3: 'enhancing tumour' },
};

/** Binary whole-tumour masks (0/1), as a whole-tumour model predicts them: only WT is defined. */
export const WHOLE_TUMOUR_LABELS: LabelRegionMapping = {
  name: 'wt',
  regions: { WT: [1], TC: [], ET: [] },
  labels: { 1: 'whole tumour' },
};

/** The named standard mappings: `msd`, `brats2017`, `brats2023`, `wt`. */
export const LABEL_MAPPINGS: Readonly<Record<string, LabelRegionMapping>> = {
  msd: MSD_LABELS,
  brats2017: BRATS2017_LABELS,
  brats2023: BRATS2023_LABELS,
  wt: WHOLE_TUMOUR_LABELS,
};

/**
 * Looks up a standard mapping by name.
 * @throws {ArgumentError} for an unknown name (the message lists the known ones).
 * @example getLabelMapping('brats2017') === BRATS2017_LABELS
 */
export function getLabelMapping(name: string): LabelRegionMapping {
  const mapping = LABEL_MAPPINGS[name];
  if (mapping === undefined) {
    throw new ArgumentError('getLabelMapping', 'name', `'${name}' is unknown; known: ${Object.keys(LABEL_MAPPINGS).join(', ')}`);
  }
  return mapping;
}

/** The label values a mapping allows, background 0 included (e.g. {0, 1, 2, 4} for BRATS2017_LABELS). */
export function allowedLabels(mapping: LabelRegionMapping): Set<number> {
  return new Set([0, ...Object.keys(mapping.labels).map(Number)]);
}

/**
 * Binary mask (0/1, uint8) of one region from a label map, in the label map's voxel order; values that are
 * not labels of the region (or lie outside 0..255) are background.
 * @param labels label map values (any integer typed array), flat in NIfTI i-j-k order.
 * @example regionMask(seg.data, BRATS2017_LABELS, 'TC') // 1 where the label is 1 or 4
 */
export function regionMask(labels: ArrayLike<number>, mapping: LabelRegionMapping, region: RegionName): Uint8Array {
  const lookup = new Uint8Array(256);
  for (const value of mapping.regions[region]) lookup[value] = 1;
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    out[i] = v >= 0 && v < 256 ? lookup[v]! : 0;
  }
  return out;
}

/**
 * Converts a label map from one convention to another through the shared meaning of regions
 * (e.g. MSD 1 oedema → BraTS 2017 label 2); flat in, flat uint8 out, same voxel order.
 * @throws {ArgumentError} when a value is not a label of `from`, or `to` has no label for one of `from`'s.
 */
export function convertLabels(labels: ArrayLike<number>, from: LabelRegionMapping, to: LabelRegionMapping): Uint8Array {
  // A label's identity is the set of regions it belongs to: oedema = {WT}, core = {WT, TC}, enhancing = {WT, TC, ET}.
  const signature = (mapping: LabelRegionMapping, value: number): string =>
    REGION_NAMES.filter((r) => mapping.regions[r].includes(value)).join('');
  const targetBySignature = new Map<string, number>([['', 0]]);
  for (const value of Object.keys(to.labels).map(Number)) targetBySignature.set(signature(to, value), value);
  const lookup = new Int16Array(256).fill(-1);
  for (const value of allowedLabels(from)) {
    const target = targetBySignature.get(signature(from, value));
    if (target === undefined) {
      throw new ArgumentError('convertLabels', 'to', `has no label for regions of ${from.name} label ${value}`);
    }
    lookup[value] = target;
  }
  const out = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i]!;
    const mapped = v >= 0 && v < 256 ? lookup[v]! : -1;
    if (mapped < 0) throw new ArgumentError('convertLabels', 'labels', `holds value ${v}, not a ${from.name} label`);
    out[i] = mapped;
  }
  return out;
}
