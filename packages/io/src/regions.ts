/**
 * Label conventions and the label → region mappings of the BraTS releases (WT, TC, ET). They are defined in
 * @brats/metrics, which scores with them and depends on nothing, and re-exported here under the same names;
 * the colour of each region is defined here.
 */
export {
  REGION_NAMES,
  MSD_LABELS,
  BRATS2017_LABELS,
  BRATS2023_LABELS,
  WHOLE_TUMOUR_LABELS,
  LABEL_MAPPINGS,
  getLabelMapping,
  allowedLabels,
  regionMask,
  convertLabels,
} from '@brats/metrics';
export type { RegionName, LabelRegionMapping } from '@brats/metrics';
import type { RegionName } from '@brats/metrics';

/**
 * RGB colour of each region, shared by the report's figures and the viewer (the BraTS viewers' habit, ITK-SNAP's
 * label colours: oedema, the whole tumour's outer part, green; core red; enhancing tumour yellow).
 */
export const REGION_COLORS: Readonly<Record<RegionName, readonly [number, number, number]>> = {
  WT: [46, 204, 64],
  TC: [231, 76, 60],
  ET: [255, 220, 0],
};
