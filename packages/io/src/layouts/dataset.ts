/**
 * Dataset layouts: the Medical Segmentation Decathlon Task01 folder, BraTS 2017-2021 case folders and
 * BraTS 2023+ case folders, each discovered from a folder and mapped onto one canonical case
 * (channels FLAIR, T1w, T1gd, T2w; a label map with its layout's label → region mapping).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError, NiftiFormatError } from '../errors.js';
import { readNifti, type NiftiVolume } from '../nifti/read.js';
import { MSD_LABELS, type LabelRegionMapping } from '../regions.js';
import type { Volume } from '../volume.js';
import { CANONICAL_CHANNELS, parseChannelName } from './channels.js';
import { LAYOUT_LABELS, assembleCase, caseLabels, type CanonicalCase, type CaseRef, type LayoutName, type LoadCaseOptions } from './case.js';

export * from './case.js';
import { MAX_JSON_BYTES, readRegularFile } from '../safe-read.js';

/** Descriptive metadata of a dataset (from dataset.json for the Decathlon; defaults otherwise). */
export interface DatasetMetadata {
  name: string;
  description: string;
  reference: string;
  licence: string;
  release: string;
  tensorImageSize: string;
  modalities: readonly string[];
}

/** A discovered dataset: its layout, cases and label convention. */
export interface Dataset {
  root: string;
  layout: LayoutName;
  cases: readonly CaseRef[];
  labelMapping: LabelRegionMapping;
  metadata: DatasetMetadata;
}

/** File-name suffixes of the BraTS layouts, in canonical channel order, then the label. */
const BRATS_SUFFIXES: Readonly<Record<'brats2017' | 'brats2023', { channels: readonly string[]; label: string }>> = {
  brats2017: { channels: ['_flair', '_t1', '_t1ce', '_t2'], label: '_seg' },
  brats2023: { channels: ['-t2f', '-t1n', '-t1c', '-t2w'], label: '-seg' },
};

const NIFTI_EXTENSIONS = ['.nii.gz', '.nii'];
const MAX_DEPTH = 3;

function stripNiftiExtension(name: string): string | undefined {
  const extension = NIFTI_EXTENSIONS.find((candidate) => name.endsWith(candidate));
  return extension === undefined ? undefined : name.slice(0, -extension.length);
}

async function isDirectory(target: string): Promise<boolean> {
  try {
    return (await fs.stat(target)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Discovers the dataset in a folder: a Decathlon task (`dataset.json`), or BraTS case folders (found up
 * to three levels deep, so `HGG/` and `LGG/` sub-folders work), or a single BraTS case folder.
 * Cases are sorted by id. Nothing is decoded here; {@link loadCase} validates a case's files.
 * @throws {DatasetError} when the folder does not exist or holds no known layout.
 */
export async function openDataset(dir: string): Promise<Dataset> {
  const root = path.resolve(dir);
  if (!(await isDirectory(root))) throw new DatasetError(dir, 'not a folder');
  const datasetJson = path.join(root, 'dataset.json');
  if (await fs.stat(datasetJson).then(() => true, () => false)) return openDecathlon(root, datasetJson);
  const cases: CaseRef[] = [];
  const layouts = new Set<LayoutName>();
  await collectBratsCases(root, 0, cases, layouts);
  if (cases.length === 0) {
    // Name what is there: a case folder that lost its FLAIR file looks like "no dataset" otherwise.
    const seen = (await fs.readdir(root)).filter((name) => stripNiftiExtension(name) !== undefined).sort();
    const found = seen.length === 0 ? '' : ` (found ${seen.slice(0, 4).join(', ')}${seen.length > 4 ? ` and ${seen.length - 4} more` : ''}, but no FLAIR file of either naming)`;
    throw new DatasetError(
      dir,
      `no dataset found: expected dataset.json (Decathlon) or case folders with <id>_flair.nii.gz (BraTS 2017-2021) or <id>-t2f.nii.gz (BraTS 2023+)${found}`,
    );
  }
  if (layouts.size > 1) throw new DatasetError(dir, `mixes layouts ${[...layouts].join(' and ')}; keep one layout per folder`);
  const layout = [...layouts][0]!;
  cases.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const duplicate = cases.find((c, i) => i > 0 && cases[i - 1]!.id === c.id);
  if (duplicate !== undefined) throw new DatasetError(dir, `case id ${duplicate.id} appears twice`);
  return {
    root,
    layout,
    cases,
    labelMapping: LAYOUT_LABELS[layout],
    metadata: {
      name: layout === 'brats2017' ? 'BraTS 2017-2021' : 'BraTS 2023+',
      description: `Brain tumour MRI cases in the ${layout} layout`,
      reference: 'https://www.synapse.org/brats',
      licence: 'see the data provider',
      release: '',
      tensorImageSize: '3D',
      modalities: [...CANONICAL_CHANNELS],
    },
  };
}

async function collectBratsCases(dir: string, depth: number, cases: CaseRef[], layouts: Set<LayoutName>): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const files = new Map<string, string>();
  const folders: string[] = [];
  // Symbolic links are followed: datasets are often assembled from linked case folders or files.
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    const linked = entry.isSymbolicLink() ? await fs.stat(full).catch(() => undefined) : undefined;
    // Anything that is not a folder counts as a file here, a FIFO or a dangling link included: reading it then
    // says what it is, rather than the case silently losing that file.
    // A folder with a NIfTI name is one too: reading it says it is a folder.
    if ((entry.isDirectory() || linked?.isDirectory() === true) && stripNiftiExtension(entry.name) === undefined) {
      if (!entry.name.startsWith('.')) folders.push(full);
    } else {
      files.set(entry.name, full);
    }
  }
  for (const layout of ['brats2017', 'brats2023'] as const) {
    const suffixes = BRATS_SUFFIXES[layout];
    const first = suffixes.channels[0]!;
    for (const name of files.keys()) {
      const stem = stripNiftiExtension(name);
      if (stem === undefined || !stem.endsWith(first)) continue;
      const id = stem.slice(0, -first.length);
      const find = (suffix: string): string | undefined => {
        const found = NIFTI_EXTENSIONS.map((extension) => files.get(`${id}${suffix}${extension}`)).filter((file) => file !== undefined);
        if (found.length > 1) throw new DatasetError(dir, `two files for ${id}${suffix}: ${found.map((file) => path.basename(file)).join(' and ')}; keep one`, id);
        return found[0];
      };
      const images = suffixes.channels.map((suffix) => find(suffix) ?? path.join(dir, `${id}${suffix}.nii.gz`));
      const label = find(suffixes.label);
      const ref: CaseRef = { id, layout, images };
      if (label !== undefined) ref.label = label;
      cases.push(ref);
      layouts.add(layout);
    }
  }
  if (depth >= MAX_DEPTH) return;
  for (const folder of folders) await collectBratsCases(folder, depth + 1, cases, layouts);
}

async function openDecathlon(root: string, datasetJson: string): Promise<Dataset> {
  let json: Record<string, unknown>;
  const read = await readRegularFile(datasetJson, MAX_JSON_BYTES);
  if (!read.ok) throw new DatasetError(datasetJson, read.reason);
  try {
    json = JSON.parse(read.bytes.toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new DatasetError(datasetJson, `is not valid JSON (${(error as Error).message})`);
  }
  const modality = (json.modality ?? {}) as Record<string, string>;
  const modalities = Object.keys(modality)
    .sort((a, b) => Number(a) - Number(b))
    .map((key) => String(modality[key]));
  const frames = CANONICAL_CHANNELS.map((channel) => modalities.findIndex((name) => parseChannelName(name) === channel));
  const missing = CANONICAL_CHANNELS.filter((_, index) => frames[index]! < 0);
  if (missing.length > 0) {
    throw new DatasetError(datasetJson, `modality lists [${modalities.join(', ')}], missing ${missing.join(', ')}`);
  }
  const resolveEntry = (entry: string): string => path.resolve(root, entry);
  const idOf = (file: string): string => stripNiftiExtension(path.basename(file)) ?? path.basename(file);
  const cases: CaseRef[] = [];
  const training = Array.isArray(json.training) ? (json.training as unknown[]) : [];
  for (const item of training) {
    const entry = item as { image?: unknown; label?: unknown };
    if (typeof entry.image !== 'string') throw new DatasetError(datasetJson, 'a training entry has no "image" path');
    const ref: CaseRef = {
      id: idOf(entry.image),
      layout: 'msd',
      images: [resolveEntry(entry.image)],
      frames: frames as unknown as [number, number, number, number],
    };
    if (typeof entry.label === 'string') ref.label = resolveEntry(entry.label);
    cases.push(ref);
  }
  const test = Array.isArray(json.test) ? (json.test as unknown[]) : [];
  for (const item of test) {
    const image = typeof item === 'string' ? item : (item as { image?: unknown }).image;
    if (typeof image !== 'string') throw new DatasetError(datasetJson, 'a test entry has no image path');
    cases.push({ id: idOf(image), layout: 'msd', images: [resolveEntry(image)], frames: frames as unknown as [number, number, number, number] });
  }
  if (cases.length === 0) throw new DatasetError(datasetJson, 'lists no training or test cases');
  const text = (key: string): string => (typeof json[key] === 'string' ? (json[key] as string) : '');
  return {
    root,
    layout: 'msd',
    cases,
    labelMapping: MSD_LABELS,
    metadata: {
      name: text('name'),
      description: text('description'),
      reference: text('reference'),
      licence: text('licence') || text('license'),
      release: text('release'),
      tensorImageSize: text('tensorImageSize'),
      modalities,
    },
  };
}

async function readCaseFile(ref: CaseRef, file: string, options: LoadCaseOptions): Promise<NiftiVolume> {
  try {
    return await readNifti(file, options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes });
  } catch (error) {
    if (error instanceof NiftiFormatError) {
      throw new DatasetError(file, error.reason === 'file not found' ? 'missing file' : error.reason, ref.id);
    }
    throw error;
  }
}

/**
 * Reads one case into canonical form: four float32 channels (FLAIR, T1w, T1gd, T2w) on one grid and
 * its label map (uint8, the layout's own label values).
 * A 4D file with more than four frames is read (frames as the reference says) with a warning in `warnings`.
 * @throws {DatasetError} naming the case and file for a missing or unreadable file, NaN or infinite image voxels
 * (unless `nonFinite: 'zero'`), a 4D file without four frames, shapes or affines that differ between the case's files, a non-integer label map or label
 * values that the layout does not define.
 */
export async function loadCase(ref: CaseRef, options: LoadCaseOptions = {}): Promise<CanonicalCase> {
  // The files, label map included, decompress in parallel (zlib works on libuv's thread pool); errors are still
  // reported in file order, the images' first.
  const wantLabels = ref.label !== undefined && options.labels !== false;
  const labelRead = wantLabels ? readCaseFile(ref, ref.label!, options) : undefined;
  // Its failure is handled below, after the images' (an unhandled rejection meanwhile would end the process).
  labelRead?.catch(() => undefined);
  const volumes = await readAllInOrder((ref.layout === 'msd' ? ref.images.slice(0, 1) : ref.images).map((file) => readCaseFile(ref, file, options)));
  const result = assembleCase(ref, volumes, options);
  if (labelRead !== undefined) {
    try {
      result.labels = caseLabels(ref, ref.label!, await labelRead, result.channels[0]);
    } catch (error) {
      if (options.labels !== 'if-readable' || !(error instanceof DatasetError)) throw error;
      result.warnings = [...(result.warnings ?? []), `${error.path}: the reference label map is left out (${error.reason}): the prediction is not scored`];
    }
  }
  return result;
}

/**
 * Reads only the label map of a case (what scoring needs: none of its images is opened), checked against the
 * layout's label values.
 * @throws {DatasetError} naming the case and file when the case has no label map, or it cannot be read, is not 3D
 *   or holds values the layout does not define.
 */
export async function loadCaseLabels(ref: CaseRef, options: Pick<LoadCaseOptions, 'maxBytes'> = {}): Promise<Volume<'uint8'>> {
  if (ref.label === undefined) throw new DatasetError(ref.images[0] ?? ref.id, 'the case has no label map', ref.id);
  return caseLabels(ref, ref.label, await readCaseFile(ref, ref.label, options));
}

/** Awaits every promise, then returns the values, or throws the error of the first that failed, in array order. */
async function readAllInOrder<T>(reads: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(reads);
  return settled.map((outcome) => {
    if (outcome.status === 'rejected') throw outcome.reason;
    return outcome.value;
  });
}

