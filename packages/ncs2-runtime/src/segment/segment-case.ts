/**
 * Whole-scan segmentation from a case reference or a case already read: reads the case (Node.js files) and runs
 * {@link segmentLoadedCase}, the path every caller shares.
 */
import { loadCase, type CanonicalCase, type CaseRef, type LoadCaseOptions, type ModelManifest } from '@brats/io';
import { segmentLoadedCase, type SegmentOptions, type Segmentation, type SliceRunner } from './segment-core.js';

export * from './segment-core.js';

/** Options of {@link segmentCase}: those of {@link segmentLoadedCase} and how to read a case given by reference. */
export interface SegmentCaseOptions extends SegmentOptions {
  /** How to read a case given by reference (label map read by default, when the case has one). */
  load?: LoadCaseOptions;
}

function isLoadedCase(input: CaseRef | CanonicalCase): input is CanonicalCase {
  return 'channels' in input;
}

/**
 * Segments one case with a model bundle's manifest and an engine.
 * @param input a case reference (read with `loadCase`) or a case already read.
 * @throws {DatasetError} when a referenced case cannot be read.
 * @throws {ArgumentError} as {@link segmentLoadedCase}.
 * @example const result = await segmentCase(caseRef, manifest, engine, { tta: false });
 */
export async function segmentCase(
  input: CaseRef | CanonicalCase,
  manifest: ModelManifest,
  runner: SliceRunner,
  options: SegmentCaseOptions = {},
): Promise<Segmentation> {
  if (isLoadedCase(input)) return segmentLoadedCase(input, manifest, runner, options);
  const started = performance.now();
  const caseData = await loadCase(input, options.load ?? {});
  return segmentLoadedCase(caseData, manifest, runner, options, (performance.now() - started) / 1000);
}
