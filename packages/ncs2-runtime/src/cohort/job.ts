/**
 * A cohort job: one case to segment, described once, in plain JSON, so that the same description runs in this
 * process or on any machine that reads it from a queue. Paths are absolute: a worker elsewhere sees the inputs,
 * the bundle and the output folder under the same paths (a shared filesystem).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ArgumentError, type CaseRef } from '@brats/io';

/** Where a job writes. Every path is absolute. */
export interface CohortJobOutputs {
  /** The label map: uint8 NIfTI on the scan's grid. */
  labels: string;
  /** Folder for one float32 probability map per region, `<case id>_prob_<region>.nii.gz`; absent: none written. */
  probabilities?: string;
  /** Folder for the seed's slice figures and an overlay montage (PNG); absent: none written. */
  figures?: string;
  /** Folder for each channel of the case as `<role>.nii.gz` (flair, t1w, t1gd, t2w); absent: none written. */
  channels?: string;
}

/** One case to segment, with everything a worker needs to do it. */
export interface CohortJob {
  /** The case, its files by absolute path. */
  case: CaseRef;
  /** Model bundle folder (absolute). */
  bundle: string;
  /** Engine name: `auto` or a registered engine (`onnxruntime`, `openvino`, `tfjs`). */
  engine: string;
  /** Device for the runtime engines (CPU, GPU, NPU, AUTO); absent: the engine's default. */
  device?: string;
  /** Runtime engines only: `auto` never tries (nor loads) TensorFlow.js. */
  runtimeOnly?: boolean;
  /** Run the bundle's INT8 model (`files.onnxInt8`) instead of its FP32 model. */
  int8?: boolean;
  /** Test-time flips; absent: what the bundle chose on validation. */
  tta?: boolean;
  /** Largest whole-tumour component only; absent: what the bundle chose on validation. */
  largestComponent?: boolean;
  /** Segment beyond the model's window where the tumour reaches it (default true; false: the window alone, with a warning). */
  extendWindow?: boolean;
  /** Read the case's reference label map when it has one and score the prediction against it (default true). */
  readReference?: boolean;
  /** Cap on each file's decompressed size in bytes (a gzip bomb stops here); absent: no cap. */
  maxDecompressedBytes?: number;
  /** Set NaN or infinite image voxels to 0 (with a warning) instead of refusing the case. */
  replaceNonFinite?: boolean;
  outputs: CohortJobOutputs;
}

/** What {@link createCohortJobs} needs beyond the cases: the same for every job of a cohort. */
export interface CohortSettings {
  bundle: string;
  /** Output folder: `<out>/<case id>.nii.gz`, `<out>/<case id>_prob_<region>.nii.gz`, `<out>/figures/`. */
  out: string;
  engine?: string;
  device?: string;
  runtimeOnly?: boolean;
  int8?: boolean;
  tta?: boolean | undefined;
  largestComponent?: boolean | undefined;
  /** False: the model's window alone (see {@link CohortJob.extendWindow}). */
  extendWindow?: boolean;
  probabilities?: boolean;
  figures?: boolean;
  /** Set NaN or infinite image voxels to 0 (with a warning) instead of refusing the case. */
  replaceNonFinite?: boolean;
}

function absoluteRef(ref: CaseRef): CaseRef {
  const absolute: CaseRef = { id: ref.id, layout: ref.layout, images: ref.images.map((image) => path.resolve(image)) };
  if (ref.frames !== undefined) absolute.frames = ref.frames;
  if (ref.label !== undefined) absolute.label = path.resolve(ref.label);
  return absolute;
}

/**
 * One job per case, writing what `brats predict` writes for it into `settings.out`; every path made absolute.
 * @throws {ArgumentError} for two cases with the same id (their outputs would overwrite each other).
 * @example const jobs = createCohortJobs(await resolveCaseInputs(['scans']), { bundle: 'model', out: 'predictions' });
 */
export function createCohortJobs(refs: readonly CaseRef[], settings: CohortSettings): CohortJob[] {
  const out = path.resolve(settings.out);
  const seen = new Set<string>();
  return refs.map((ref) => {
    if (seen.has(ref.id)) throw new ArgumentError('createCohortJobs', 'refs', `case id '${ref.id}' appears twice; each case writes <out>/<id>.nii.gz, so ids must differ`);
    seen.add(ref.id);
    const job: CohortJob = {
      case: absoluteRef(ref),
      bundle: path.resolve(settings.bundle),
      engine: settings.engine ?? 'auto',
      outputs: { labels: path.join(out, `${ref.id}.nii.gz`) },
    };
    if (settings.device !== undefined) job.device = settings.device;
    if (settings.runtimeOnly === true) job.runtimeOnly = true;
    if (settings.int8 === true) job.int8 = true;
    if (settings.tta !== undefined) job.tta = settings.tta;
    if (settings.largestComponent !== undefined) job.largestComponent = settings.largestComponent;
    if (settings.extendWindow === false) job.extendWindow = false;
    if (settings.probabilities === true) job.outputs.probabilities = out;
    if (settings.figures === true) job.outputs.figures = path.join(out, 'figures');
    if (settings.replaceNonFinite === true) job.replaceNonFinite = true;
    return job;
  });
}

/** JSON with object keys sorted, so equal descriptions give equal text whatever order their fields were set in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The job's id, derived from its case (id and input files) and its label map path only: submitting the same case
 * to the same output again names the same job, so a queue adds nothing that is already there. Safe as a queue
 * key and a file name: `<case id with [A-Za-z0-9._-] kept>-<16 hex digits>`.
 * @example cohortJobId(job) // 'Phantom_001-3f2a9c0d1e4b5a6f'
 */
export function cohortJobId(job: CohortJob): string {
  const { id, layout, images, frames } = job.case;
  const digest = sha256(canonicalJson({ case: { id, layout, images, frames }, labels: path.resolve(job.outputs.labels) })).slice(0, 16);
  const readable = id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return `${readable}-${digest}`;
}

/** A digest of the whole description (model, engine, settings, outputs): equal digests run the same work. */
export function cohortJobFingerprint(job: CohortJob): string {
  return sha256(canonicalJson(job));
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

/**
 * Checks that `value` (e.g. read back from a queue) is a cohort job and returns it typed.
 * @throws {ArgumentError} naming the first field that is missing or of the wrong type.
 */
export function parseCohortJob(value: unknown): CohortJob {
  const fail = (field: string, expected: string): never => {
    throw new ArgumentError('parseCohortJob', field, `must be ${expected}`);
  };
  if (value === null || typeof value !== 'object') fail('job', 'an object');
  const job = value as Record<string, unknown>;
  const ref = job.case as Record<string, unknown> | undefined;
  if (ref === null || typeof ref !== 'object') fail('case', 'a case reference');
  if (typeof ref!.id !== 'string' || ref!.id === '') fail('case.id', 'a non-empty string');
  if (typeof ref!.layout !== 'string') fail('case.layout', 'a layout name');
  if (!isStringArray(ref!.images) || ref!.images.length === 0) fail('case.images', 'a non-empty array of paths');
  if (typeof job.bundle !== 'string' || job.bundle === '') fail('bundle', 'a model bundle path');
  if (typeof job.engine !== 'string' || job.engine === '') fail('engine', 'an engine name');
  const outputs = job.outputs as Record<string, unknown> | undefined;
  if (outputs === null || typeof outputs !== 'object') fail('outputs', 'an object');
  if (typeof outputs!.labels !== 'string' || !path.isAbsolute(outputs!.labels)) fail('outputs.labels', 'an absolute path');
  for (const key of ['probabilities', 'figures', 'channels'] as const) {
    if (outputs![key] !== undefined && (typeof outputs![key] !== 'string' || !path.isAbsolute(outputs![key]))) fail(`outputs.${key}`, 'an absolute path when given');
  }
  for (const key of ['tta', 'largestComponent', 'extendWindow', 'runtimeOnly', 'int8', 'readReference', 'replaceNonFinite'] as const) {
    if (job[key] !== undefined && typeof job[key] !== 'boolean') fail(key, 'true or false when given');
  }
  if (job.device !== undefined && typeof job.device !== 'string') fail('device', 'a device name when given');
  if (job.maxDecompressedBytes !== undefined && !(Number.isInteger(job.maxDecompressedBytes) && (job.maxDecompressedBytes as number) > 0)) {
    fail('maxDecompressedBytes', 'a positive integer when given');
  }
  return value as CohortJob;
}
