/**
 * The model bundle's manifest (brats-model.json): its types and its validation from text, with no Node.js module
 * (a browser page reads it too, from `@brats/io/browser`). Reading and writing bundle folders stay in bundle.ts.
 */
import { BratsError } from './errors.js';
import type { ChannelName } from './layouts/channels.js';
import { isOrientation } from './orientation.js';
import type { PreprocessSettings } from './preprocess.js';
import type { RegionName } from './regions.js';

/** File name of the manifest inside a bundle folder. */
export const MODEL_MANIFEST_FILE = 'brats-model.json';
/** The training log of a bundle: one JSON line per epoch. */
export const TRAINING_LOG_FILE = 'metrics.jsonl';
/** The training-curves figure of a bundle (loss and validation Dice per epoch). */
export const TRAINING_CURVES_FILE = 'training-curves.png';
/** Manifest format version this release writes and reads. */
export const MODEL_MANIFEST_VERSION = 1;

/** A bundle folder or its manifest is missing or invalid. */
export class ModelBundleError extends BratsError {
  readonly path: string;
  readonly reason: string;

  constructor(path: string, reason: string) {
    super('MODEL_BUNDLE', `${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

/** The U-Net's architecture, enough to rebuild it. */
export interface UnetArchitecture {
  architecture: 'unet2d';
  /** [height, width, channels], channels last. */
  inputShape: readonly [number, number, number];
  filters: number;
  depth: number;
  upsampling: 'bilinear' | 'transpose';
  batchNorm: boolean;
  dropout: number;
  outputChannels: number;
  parameters: number;
}

/** Files of the bundle, relative to its folder. */
export interface BundleFiles {
  /** TensorFlow.js layers model (model.json + weights). */
  tfjs?: string;
  /** ONNX graph, input NHWC float32 [batch, H, W, C], output [batch, H, W, K] probabilities. */
  onnx?: string;
  /** OpenVINO IR per precision. */
  openvino?: Partial<Record<'FP32' | 'FP16' | 'INT8', { xml: string; bin: string }>>;
  /** The ONNX graph statically quantised to INT8 (QDQ form), same input and output as `onnx`. */
  onnxInt8?: string;
}

/** How the INT8 model (`files.onnxInt8`) was made and what it costs, measured when it was made. */
export interface QuantizationRecord {
  /** e.g. `static QDQ: uint8 activations per tensor (MinMax), int8 weights per output channel (7 bits)`. */
  method: string;
  /** The training cases whose slices calibrated the activation ranges, and how many slices ran. */
  calibration: { data: string; cases: readonly string[]; slices: number };
  /** Mean Dice per region on the validation cases, FP32 and INT8, with the bundle's inference settings. */
  validation: { cases: readonly string[]; fp32: Partial<Record<RegionName, number>>; int8: Partial<Record<RegionName, number>> };
  /** Engine seconds per slice on the validation cases, each model on the same engine and threads. */
  speed: { engine: string; fp32SecondsPerSlice: number; int8SecondsPerSlice: number };
  /** ISO time it was made. */
  createdAt: string;
}

/** How the model was trained (provenance). */
export interface TrainingRecord {
  backend: string;
  dataFile: string;
  split: { seed: number; train: readonly string[]; validation: readonly string[]; testing: readonly string[] };
  epochs: number;
  bestEpoch: number;
  batchSize: number;
  learningRate: number;
  /** How the rate moved, e.g. `constant to epoch 50, then cosine to 0 at epoch 90` (absent: constant). */
  learningRateSchedule?: string;
  seed: number;
  durationSeconds: number;
  slicesPerSecond?: number;
  /** Weight of each region's Dice loss, when the run was given weights (absent: equal, the seed's plain mean). */
  regionWeights?: Partial<Record<RegionName, number>>;
  /** The bundle whose weights the run started from (fine-tuning), instead of a random initialisation. */
  initialWeights?: InitialWeightsRecord;
}

/** Where a fine-tuned model's starting weights came from. */
export interface InitialWeightsRecord {
  /** The source: its package name when it is an installed model package, else its folder's name. */
  source: string;
  /** The source manifest's creation time, which tells two versions of one package apart. */
  createdAt: string;
  /** The epoch of the source's training that the weights are from, when it recorded one. */
  bestEpoch?: number;
  /** SHA-256 of the source's weights as loaded (the float32 values in layer order), hex. */
  weightsSha256: string;
}

/**
 * Inference settings chosen on the validation cases (as nnU-Net picks its post-processing on validation folds):
 * predict applies them unless its caller says otherwise.
 */
export interface InferenceDefaults {
  /** Average the probabilities over left-right and up-down flipped slices. */
  tta: boolean;
  /** Keep only the largest connected whole-tumour component. */
  largestComponent: boolean;
  /**
   * For a regions model, the inner regions (TC, ET) whose largest connected component alone is kept as well, each
   * after the one it nests in; chosen on validation like `largestComponent` (the whole tumour's), which gates them.
   */
  componentRegions?: RegionName[];
  /** Probability threshold of each region (a region left out uses the manifest's `threshold`). */
  thresholds?: Partial<Record<RegionName, number>>;
  /**
   * A predicted enhancing tumour smaller than this many voxels is relabelled as tumour core (the BraTS practice:
   * an empty ET reference makes any ET voxel a Dice of 0). 0 or absent: never.
   */
  minEnhancingVoxels?: number;
  /**
   * For a regions model, per region: predicted connected components (26-connected) smaller than this many voxels are
   * removed from the region (an enhancing one stays core, a core one stays whole tumour), as stray specks cost a
   * lesion-wise score most. Absent or 0: every component is kept.
   */
  minComponentVoxels?: Partial<Record<RegionName, number>>;
  /** How the choice was made (written by `brats tune`): the cases, the metric and every option's score. */
  selection?: InferenceSelectionRecord;
}

/** The record of a post-processing choice: which cases scored which options, and how each did. */
export interface InferenceSelectionRecord {
  /** What was maximised, e.g. `mean WT Dice`. */
  metric: string;
  /** The dataset the cases came from: a path relative to the bundle folder, or its name when on another volume. */
  data: string;
  /** The case ids scored (the validation split). */
  cases: readonly string[];
  /** Every option tried, with its mean and per-case scores (same order as `cases`). */
  candidates: readonly { tta: boolean; largestComponent: boolean; mean: number; perCase: readonly number[] }[];
  /** For a regions model, each threshold tried per region with that region's mean Dice (under the chosen flips and component). */
  thresholdCandidates?: Partial<Record<RegionName, readonly { threshold: number; mean: number }[]>>;
  /**
   * For a regions model, the largest component decided again once the thresholds are chosen, on the masks they give
   * (mean Dice over the regions, as `candidates`): this decision is the one recorded in `largestComponent`.
   */
  componentCandidates?: readonly { largestComponent: boolean; mean: number; perCase: readonly number[] }[];
  /**
   * For a regions model, the largest component of each inner region tried after the whole tumour's, without and with
   * it (mean Dice over the regions): the ones kept are `componentRegions`.
   */
  innerComponentCandidates?: readonly { region: RegionName; largestComponent: boolean; mean: number; perCase: readonly number[] }[];
  /** For a regions model, each smallest enhancing tumour tried (voxels) with the mean ET Dice. */
  enhancingCandidates?: readonly { minEnhancingVoxels: number; mean: number }[];
  /**
   * For a regions model, each smallest component tried per region (voxels) with the region's mean lesion-wise Dice
   * (BraTS-GLI) and its mean Dice over the whole region, decided last.
   */
  componentMinimumCandidates?: Partial<Record<RegionName, readonly { minComponentVoxels: number; lesionWiseDice: number; dice: number }[]>>;
  /** ISO time of the choice. */
  chosenAt: string;
}

/** The manifest `brats-model.json`. */
export interface ModelManifest {
  format: 'brats-model';
  formatVersion: number;
  createdAt: string;
  model: UnetArchitecture;
  /** Input channels in order. */
  channels: readonly ChannelName[];
  preprocessing: PreprocessSettings;
  /** Region of each output channel. */
  regions: readonly RegionName[];
  /** Probability above which a voxel is labelled. */
  threshold: number;
  /** Tensor layout of the model's input: [batch, height, width, channels]. */
  inputLayout: 'NHWC';
  files: BundleFiles;
  training?: TrainingRecord;
  /** Validation metrics of the kept model (e.g. { dice: 0.87, loss: 0.21 } or per region). */
  validation?: Record<string, number>;
  /**
   * Voxel size in mm (i, j, k) of the data the model learnt from; scans at another spacing are resampled to it.
   * Absent: 1 mm isotropic, the spacing of BraTS and the Decathlon.
   */
  spacing?: readonly [number, number, number];
  /**
   * Voxel orientation of the slices the model learnt (three letters, e.g. `LPS`: i toward the left, j posterior,
   * k superior); scans stored otherwise are turned to it, exactly, and their label maps back. Absent: LPS, the
   * orientation of BraTS and the Decathlon.
   */
  orientation?: string;
  /** Inference settings that won on the validation cases; absent means plain prediction. */
  inference?: InferenceDefaults;
  /** Present with `files.onnxInt8`: how the INT8 model was made and its measured Dice and speed. */
  quantization?: QuantizationRecord;
  licence?: string;
  notes?: string;
}

function check(condition: boolean, file: string, reason: string): asserts condition {
  if (!condition) throw new ModelBundleError(file, reason);
}

/**
 * Parses and validates the text of a manifest; `file` names it in errors.
 * @throws {ModelBundleError} when the text is not JSON, or not a brats-model manifest of this version and shape.
 */
export function parseModelManifest(text: string, file: string): ModelManifest {
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(text) as ModelManifest;
  } catch {
    throw new ModelBundleError(file, 'is not valid JSON');
  }
  check(manifest !== null && typeof manifest === 'object' && manifest.format === 'brats-model', file, 'is not a brats-model manifest');
  check(
    manifest.formatVersion === MODEL_MANIFEST_VERSION,
    file,
    `has format version ${String(manifest.formatVersion)}; this release reads version ${MODEL_MANIFEST_VERSION}`,
  );
  const shape = manifest.model?.inputShape;
  check(Array.isArray(shape) && shape.length === 3 && shape.every((n) => Number.isInteger(n) && n > 0), file, 'model.inputShape must be [height, width, channels]');
  check(Array.isArray(manifest.channels) && manifest.channels.length === shape[2], file, 'channels must list one name per input channel');
  check(Array.isArray(manifest.regions) && manifest.regions.length === manifest.model.outputChannels, file, 'regions must list one region per output channel');
  check(typeof manifest.threshold === 'number' && manifest.threshold > 0 && manifest.threshold < 1, file, 'threshold must be in (0, 1)');
  check(manifest.preprocessing !== undefined && Array.isArray(manifest.preprocessing.cropSize), file, 'preprocessing is missing');
  check(manifest.orientation === undefined || isOrientation(manifest.orientation), file, 'orientation must be three letters, one per world axis (e.g. LPS)');
  const inference = manifest.inference;
  check(
    inference === undefined || (typeof inference === 'object' && inference !== null && typeof inference.tta === 'boolean' && typeof inference.largestComponent === 'boolean'),
    file,
    'inference must be { "tta": true|false, "largestComponent": true|false }',
  );
  const thresholds = inference?.thresholds;
  check(
    thresholds === undefined ||
      (typeof thresholds === 'object' && thresholds !== null && Object.entries(thresholds).every(([region, value]) => manifest.regions.includes(region as RegionName) && typeof value === 'number' && value > 0 && value < 1)),
    file,
    "inference.thresholds must map the model's regions to numbers in (0, 1)",
  );
  const inner = inference?.componentRegions;
  check(
    inner === undefined || (Array.isArray(inner) && inner.every((region) => (region === 'TC' || region === 'ET') && manifest.regions.includes(region))),
    file,
    "inference.componentRegions must list inner regions of the model (TC, ET)",
  );
  const minimum = inference?.minEnhancingVoxels;
  check(minimum === undefined || (Number.isInteger(minimum) && minimum >= 0), file, 'inference.minEnhancingVoxels must be a non-negative integer');
  const smallest = inference?.minComponentVoxels;
  check(
    smallest === undefined ||
      (typeof smallest === 'object' && smallest !== null && Object.entries(smallest).every(([region, value]) => manifest.regions.includes(region as RegionName) && Number.isInteger(value) && (value as number) >= 0)),
    file,
    "inference.minComponentVoxels must map the model's regions to non-negative integers",
  );
  const int8 = manifest.files?.onnxInt8;
  check(int8 === undefined || (typeof int8 === 'string' && int8.length > 0), file, 'files.onnxInt8 must be a file name');
  const quantization = manifest.quantization;
  check(
    quantization === undefined ||
      (int8 !== undefined && typeof quantization === 'object' && quantization !== null && typeof quantization.speed?.int8SecondsPerSlice === 'number' && Array.isArray(quantization.validation?.cases)),
    file,
    'quantization must record the INT8 model (files.onnxInt8), its validation Dice and its speed',
  );
  return manifest;
}
