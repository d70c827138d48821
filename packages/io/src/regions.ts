/**
 * Label conventions and the label → region mappings of the BraTS releases (WT, TC, ET). They are defined in
 * @brats/metrics, which scores with them and depends on nothing, and re-exported here under the same names.
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
