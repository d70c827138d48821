/**
 * Whole-scan prediction: the bundle's preprocessing → batched slice inference through any engine → the
 * crop inverted → threshold → a label map on the scan's grid in the layout's label convention.
 */
import {
  ArgumentError,
  REGION_NAMES,
  preprocessCase,
  restoreCrop,
  type CanonicalCase,
  type LabelRegionMapping,
  type ModelManifest,
  type RegionName,
  type Volume,
} from '@brats/io';
import { keepLargestComponent } from './components.js';

/** Anything that maps a batch of preprocessed slices to probabilities (the tfjs, ONNX Runtime and OpenVINO engines). */
export interface SliceRunner {
  /** `input` float32 NHWC [batch, height, width, channels] → float32 NHWC [batch, height, width, K] probabilities. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
}

/** Options of {@link predictCase}. */
export interface PredictOptions {
  /** Slices per engine call (default 16). */
  batchSize?: number;
  /**
   * Average the probabilities of the slices as they are and flipped left-right and up-down
   * (undefined: the manifest's `inference.tta`, else off).
   */
  tta?: boolean | undefined;
  /**
   * Keep only the largest 26-connected whole-tumour component, inner regions cut to it
   * (undefined: the manifest's `inference.largestComponent`, else off).
   */
  largestComponent?: boolean | undefined;
  /** Probability threshold (default: the manifest's). */
  threshold?: number;
  /** Label convention of the written label map (default: the case's layout's). */
  labelMapping?: LabelRegionMapping;
}

/** The prediction of one case, on the scan's grid. */
export interface CasePrediction {
  id: string;
  /** Region of each output channel, as in the manifest. */
  regions: readonly RegionName[];
  /** Probability volume per region, flat i-j-k, 0 outside the crop window. */
  probabilities: Float32Array[];
  /** Binary mask per region after threshold (and post-processing); ET ⊆ TC ⊆ WT. */
  masks: Uint8Array[];
  /** Label map: 0/1 for a whole-tumour model, else the BraTS labels of `labelMapping`; the scan's geometry. */
  labels: Volume<'uint8'>;
  /** Seconds spent in the engine. */
  inferenceSeconds: number;
}

/** The test-time settings a prediction runs with, and whether they came from the caller or the bundle. */
export interface ResolvedInference {
  tta: boolean;
  largestComponent: boolean;
  /** 'bundle' when at least one setting was left to the manifest's validation-chosen defaults. */
  source: 'caller' | 'bundle' | 'default';
}

/**
 * Settles tta and largest-component: the caller's choice where given, else the manifest's `inference`
 * (chosen on the validation cases when the model was made), else off.
 */
export function resolveInference(manifest: ModelManifest, options: Pick<PredictOptions, 'tta' | 'largestComponent'> = {}): ResolvedInference {
  const fromBundle = manifest.inference !== undefined && (options.tta === undefined || options.largestComponent === undefined);
  return {
    tta: options.tta ?? manifest.inference?.tta ?? false,
    largestComponent: options.largestComponent ?? manifest.inference?.largestComponent ?? false,
    source: fromBundle ? 'bundle' : options.tta !== undefined || options.largestComponent !== undefined ? 'caller' : 'default',
  };
}

function flipSlices(values: Float32Array, batch: number, height: number, width: number, channels: number, axis: 'height' | 'width'): Float32Array {
  const out = new Float32Array(values.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < height; h++) {
      for (let w = 0; w < width; w++) {
        const sourceH = axis === 'height' ? height - 1 - h : h;
        const sourceW = axis === 'width' ? width - 1 - w : w;
        const target = ((b * height + h) * width + w) * channels;
        const source = ((b * height + sourceH) * width + sourceW) * channels;
        for (let c = 0; c < channels; c++) out[target + c] = values[source + c]!;
      }
    }
  }
  return out;
}

/**
 * The label value of each region set (WT only, WT+TC, WT+TC+ET) in a convention: oedema, core, enhancing.
 * @throws {ArgumentError} when the convention lacks one of them.
 */
function labelsBySignature(mapping: LabelRegionMapping): { oedema: number; core: number; enhancing: number } {
  const find = (wanted: readonly RegionName[]): number => {
    for (const [value] of Object.entries(mapping.labels)) {
      const regions = REGION_NAMES.filter((region) => mapping.regions[region].includes(Number(value)));
      if (regions.length === wanted.length && wanted.every((region) => regions.includes(region))) return Number(value);
    }
    throw new ArgumentError('predictCase', 'labelMapping', `${mapping.name} has no label for regions ${wanted.join('+')}`);
  };
  return { oedema: find(['WT']), core: find(['WT', 'TC']), enhancing: find(['WT', 'TC', 'ET']) };
}

/**
 * Segments one case with a model bundle's manifest and an engine.
 * @throws {ArgumentError} when the manifest's channels or regions cannot be served, or the engine returns the
 *   wrong number of values.
 * @example const result = await predictCase(await loadCase(ref), manifest, engine, { tta: true });
 */
export async function predictCase(
  caseData: CanonicalCase,
  manifest: ModelManifest,
  runner: SliceRunner,
  options: PredictOptions = {},
): Promise<CasePrediction> {
  const batchSize = options.batchSize ?? 16;
  const threshold = options.threshold ?? manifest.threshold;
  const inference = resolveInference(manifest, options);
  const prepared = preprocessCase(caseData, manifest.preprocessing);
  const [depth, height, width, channels] = prepared.shape;
  const [modelHeight, modelWidth, modelChannels] = manifest.model.inputShape;
  if (height !== modelHeight || width !== modelWidth || channels !== modelChannels) {
    throw new ArgumentError('predictCase', 'manifest', `preprocessing gives slices [${height}, ${width}, ${channels}], the model takes [${modelHeight}, ${modelWidth}, ${modelChannels}]`);
  }
  const K = manifest.model.outputChannels;
  const sliceValues = height * width * channels;
  const outputValues = height * width * K;
  const block = new Float32Array(depth * outputValues);
  let inferenceSeconds = 0;
  const runChecked = async (input: Float32Array, count: number): Promise<Float32Array> => {
    const started = performance.now();
    const output = await runner.run(input, count);
    inferenceSeconds += (performance.now() - started) / 1000;
    if (output.length !== count * outputValues) {
      throw new ArgumentError('predictCase', 'runner', `returned ${output.length} values for ${count} slices of [${height}, ${width}, ${K}]`);
    }
    return output;
  };
  for (let start = 0; start < depth; start += batchSize) {
    const count = Math.min(batchSize, depth - start);
    const input = prepared.image.subarray(start * sliceValues, (start + count) * sliceValues);
    const output = await runChecked(input, count);
    if (inference.tta) {
      for (const axis of ['width', 'height'] as const) {
        const flipped = await runChecked(flipSlices(input, count, height, width, channels, axis), count);
        const restored = flipSlices(flipped, count, height, width, K, axis);
        for (let v = 0; v < output.length; v++) output[v]! += restored[v]!;
      }
      for (let v = 0; v < output.length; v++) output[v]! /= 3;
    }
    block.set(output, start * outputValues);
  }
  const regions = manifest.regions;
  const probabilities = restoreCrop(block, [depth, height, width, K], prepared.params);
  const masks: Uint8Array[] = probabilities.map((volume) => {
    const mask = new Uint8Array(volume.length);
    for (let v = 0; v < volume.length; v++) mask[v] = volume[v]! > threshold ? 1 : 0;
    return mask;
  });
  const grid = caseData.channels[0];
  const shape3 = [grid.shape[0], grid.shape[1], grid.shape[2]] as const;
  const wtIndex = regions.indexOf('WT');
  if (inference.largestComponent && wtIndex >= 0) masks[wtIndex] = keepLargestComponent(masks[wtIndex]!, shape3);
  // The regions are nested: ET inside TC inside WT.
  const tcIndex = regions.indexOf('TC');
  const etIndex = regions.indexOf('ET');
  const wt = wtIndex >= 0 ? masks[wtIndex]! : undefined;
  const tc = tcIndex >= 0 ? masks[tcIndex]! : undefined;
  const et = etIndex >= 0 ? masks[etIndex]! : undefined;
  for (let v = 0; v < (wt?.length ?? 0); v++) {
    if (tc !== undefined && wt![v] === 0) tc[v] = 0;
    if (et !== undefined && (tc !== undefined ? tc[v] === 0 : wt![v] === 0)) et[v] = 0;
  }
  const labelData = new Uint8Array(grid.data.length);
  if (regions.length === 1) {
    labelData.set(masks[0]!);
  } else {
    const values = labelsBySignature(options.labelMapping ?? caseData.labelMapping);
    for (let v = 0; v < labelData.length; v++) {
      if (wt !== undefined && wt[v] === 0) continue;
      labelData[v] = et !== undefined && et[v] === 1 ? values.enhancing : tc !== undefined && tc[v] === 1 ? values.core : values.oedema;
    }
  }
  const labels: Volume<'uint8'> = { dtype: 'uint8', data: labelData, shape: shape3, spacing: grid.spacing, affine: grid.affine };
  if (grid.header !== undefined) labels.header = grid.header;
  return { id: caseData.id, regions, probabilities, masks, labels, inferenceSeconds };
}
