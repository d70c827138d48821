/** Which test-time settings a segmentation runs with, and where each came from. */
import type { ModelManifest } from '@brats/io/browser';

/** The caller's wishes; undefined leaves a setting to the bundle. */
export interface InferenceRequest {
  /** Average the slices as they are and flipped left-right and up-down. */
  tta?: boolean | undefined;
  /** Keep only the largest 26-connected whole-tumour component, inner regions cut to it. */
  largestComponent?: boolean | undefined;
  /** Probability threshold of every region. */
  threshold?: number | undefined;
}

/** Where a setting came from: the caller, the bundle's validation-chosen `inference`, or the built-in default. */
export type SettingSource = 'caller' | 'bundle' | 'default';

/** The settings a segmentation runs with. */
export interface ResolvedInference {
  tta: boolean;
  largestComponent: boolean;
  threshold: number;
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
  const threshold = request.threshold ?? manifest.threshold;
  const source: SettingSource =
    ttaSource === 'bundle' || componentSource === 'bundle' ? 'bundle' : ttaSource === 'caller' || componentSource === 'caller' ? 'caller' : 'default';
  return {
    tta,
    largestComponent,
    threshold,
    source,
    reasons: [
      `tta ${tta ? 'on' : 'off'} (${explain(ttaSource)})`,
      `largest component ${largestComponent ? 'on' : 'off'} (${explain(componentSource)})`,
      `threshold ${threshold} (${request.threshold !== undefined ? 'as asked' : "the bundle's"})`,
    ],
  };
}
