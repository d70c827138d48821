/** Which test-time settings a segmentation runs with, and where each came from. */
import type { ModelManifest, RegionName } from '@brats/io/browser';

/** The caller's wishes; undefined leaves a setting to the bundle. */
export interface InferenceRequest {
  /** Average the slices as they are and flipped left-right and up-down. */
  tta?: boolean | undefined;
  /**
   * Keep only the largest 26-connected whole-tumour component, inner regions cut to it (and the inner regions' own
   * largest components where the bundle chose them); false keeps every component of every region.
   */
  largestComponent?: boolean | undefined;
  /** Probability threshold of every region (overrides the bundle's per-region thresholds). */
  threshold?: number | undefined;
  /** Smallest enhancing tumour kept as such, in voxels (smaller is relabelled as core); 0 keeps every one. */
  minEnhancingVoxels?: number | undefined;
}

/** Where a setting came from: the caller, the bundle's validation-chosen `inference`, or the built-in default. */
export type SettingSource = 'caller' | 'bundle' | 'default';

/** The settings a segmentation runs with. */
export interface ResolvedInference {
  tta: boolean;
  largestComponent: boolean;
  /** Inner regions (TC, ET) whose largest component alone is kept too, in nesting order; none without `largestComponent`. */
  componentRegions: RegionName[];
  /** The threshold of a region without one of its own (the manifest's, or the caller's for every region). */
  threshold: number;
  /** Threshold of each of the model's regions, in the manifest's region order. */
  thresholds: number[];
  /** Smallest enhancing tumour kept as such, in voxels; 0: every one. */
  minEnhancingVoxels: number;
  /** Per region, the smallest component kept (voxels), as the bundle chose it; absent: every one. */
  minComponentVoxels: Partial<Record<RegionName, number>>;
  /** 'bundle' when at least one of tta / largest component was left to the manifest's `inference`. */
  source: SettingSource;
  /** One line per setting saying what runs and why, e.g. `tta on (the bundle chose it on its validation cases)`. */
  reasons: string[];
}

function explain(source: SettingSource): string {
  return source === 'caller' ? 'as asked' : source === 'bundle' ? 'the bundle chose it on its validation cases' : 'the default';
}

/**
 * Settles tta, largest component and threshold: the caller's choice where given, else the manifest's `inference`
 * (chosen on the validation cases when the model was made), else off; the threshold is the manifest's unless given.
 */
export function resolveInference(manifest: ModelManifest, request: InferenceRequest = {}): ResolvedInference {
  const sourceOf = (asked: boolean | undefined): SettingSource => (asked !== undefined ? 'caller' : manifest.inference !== undefined ? 'bundle' : 'default');
  const ttaSource = sourceOf(request.tta);
  const componentSource = sourceOf(request.largestComponent);
  const tta = request.tta ?? manifest.inference?.tta ?? false;
  const largestComponent = request.largestComponent ?? manifest.inference?.largestComponent ?? false;
  const chosenInner = manifest.inference?.componentRegions ?? [];
  const componentRegions = largestComponent ? (['TC', 'ET'] as const).filter((region) => chosenInner.includes(region) && manifest.regions.includes(region)) : [];
  const threshold = request.threshold ?? manifest.threshold;
  const chosen = manifest.inference?.thresholds ?? {};
  const thresholds = manifest.regions.map((region: RegionName) => request.threshold ?? chosen[region] ?? manifest.threshold);
  const perRegion = request.threshold === undefined && manifest.regions.some((region) => chosen[region] !== undefined);
  const minEnhancingVoxels = request.minEnhancingVoxels ?? manifest.inference?.minEnhancingVoxels ?? 0;
  const minimumSource: SettingSource = request.minEnhancingVoxels !== undefined ? 'caller' : manifest.inference?.minEnhancingVoxels !== undefined ? 'bundle' : 'default';
  // The smallest components kept follow the bundle; asking for every component (largestComponent false) keeps them all.
  const chosenMinimum = manifest.inference?.minComponentVoxels ?? {};
  const minComponentVoxels: Partial<Record<RegionName, number>> =
    request.largestComponent === false ? {} : Object.fromEntries(manifest.regions.filter((region) => (chosenMinimum[region] ?? 0) > 0).map((region) => [region, chosenMinimum[region]!]));
  const source: SettingSource =
    ttaSource === 'bundle' || componentSource === 'bundle' ? 'bundle' : ttaSource === 'caller' || componentSource === 'caller' ? 'caller' : 'default';
  return {
    tta,
    largestComponent,
    componentRegions,
    threshold,
    thresholds,
    minEnhancingVoxels,
    minComponentVoxels,
    source,
    reasons: [
      `tta ${tta ? 'on' : 'off'} (${explain(ttaSource)})`,
      `largest component ${largestComponent ? 'on' : 'off'} (${explain(componentSource)})`,
      ...(componentRegions.length > 0 ? [`largest component of ${componentRegions.join(' and ')} kept as well (the bundle chose it on its validation cases)`] : []),
      perRegion
        ? `thresholds ${manifest.regions.map((region, r) => `${region} ${thresholds[r]}`).join(', ')} (the bundle chose them on its validation cases)`
        : `threshold ${threshold} (${request.threshold !== undefined ? 'as asked' : "the bundle's"})`,
      ...(Object.keys(minComponentVoxels).length > 0
        ? [`components under ${Object.entries(minComponentVoxels).map(([region, voxels]) => `${voxels} voxels (${region})`).join(', ')} removed (the bundle chose it on its validation cases)`]
        : []),
      ...(manifest.regions.includes('ET')
        ? [minEnhancingVoxels > 0 ? `enhancing tumour under ${minEnhancingVoxels} voxels relabelled as core (${explain(minimumSource)})` : `every predicted enhancing tumour kept (${explain(minimumSource)})`]
        : []),
    ],
  };
}
