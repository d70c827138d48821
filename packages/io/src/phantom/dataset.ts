/**
 * Writes phantom datasets in the three layouts @brats reads: the Medical Segmentation Decathlon Task01
 * folder, BraTS 2017-2021 case folders and BraTS 2023+ case folders.
 */
import path from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { ArgumentError } from '../errors.js';
import { writeNifti } from '../nifti/write.js';
import { BRATS2017_LABELS, BRATS2023_LABELS, MSD_LABELS, convertLabels } from '../regions.js';
import { createVolume, type Spacing, type Volume } from '../volume.js';
import { generatePhantom, type PhantomCase } from './generate.js';
import { checkSeed, deriveCaseSeed } from './random.js';

/**
 * A layout to write: `msd` (Decathlon Task01), `brats2018` (BraTS 2017-2021; `brats2017` is the same
 * layout under the name the dataset reader uses) or `brats2023`.
 */
export type PhantomLayout = 'msd' | 'brats2017' | 'brats2018' | 'brats2023';

/** Every layout name {@link writePhantomDataset} accepts. */
export const PHANTOM_LAYOUTS: readonly PhantomLayout[] = ['msd', 'brats2018', 'brats2023', 'brats2017'];

/** Options of {@link writePhantomDataset}. */
export interface WritePhantomDatasetOptions {
  layout: PhantomLayout;
  /** Number of cases, 1 to 100000. */
  cases: number;
  /** Grid size `[i, j, k]` of every case (default `[240, 240, 155]`). */
  size?: readonly [number, number, number];
  /** Voxel size in mm (default `[1, 1, 1]`). */
  spacing?: Spacing;
  /** Dataset seed (default 0); case i uses {@link deriveCaseSeed}(seed, i). */
  seed?: number;
  /** Write label maps (default true); without them cases are unlabelled, as a challenge's test set. */
  labels?: boolean;
  /** Keep skull and scalp (default false). */
  skull?: boolean;
  /** gzip level 1-9 (default 6). */
  compressionLevel?: number;
  /** Called after each case is written. */
  onProgress?: (done: number, total: number, caseId: string) => void;
}

/** What {@link writePhantomDataset} wrote. */
export interface PhantomDatasetSummary {
  /** Absolute path of the dataset folder. */
  directory: string;
  layout: PhantomLayout;
  caseIds: readonly string[];
  /** Every file written, absolute paths, in writing order. */
  files: readonly string[];
}

/**
 * The id of case `index` (0-based) in a layout: `PHANTOM_001` (msd), `Phantom_001` (BraTS 2017-2021),
 * `BraTS-PHA-00001-000` (BraTS 2023+), numbered from 1.
 * @throws {ArgumentError} for an unknown layout or a negative or non-integer index.
 */
export function createPhantomCaseId(layout: PhantomLayout, index: number): string {
  checkSeed('createPhantomCaseId', index, 'index');
  const number = index + 1;
  switch (layout) {
    case 'msd':
      return `PHANTOM_${String(number).padStart(3, '0')}`;
    case 'brats2017':
    case 'brats2018':
      return `Phantom_${String(number).padStart(3, '0')}`;
    case 'brats2023':
      return `BraTS-PHA-${String(number).padStart(5, '0')}-000`;
    default:
      throw unknownLayout('createPhantomCaseId', layout);
  }
}

function unknownLayout(functionName: string, layout: string): ArgumentError {
  return new ArgumentError(functionName, 'layout', `'${layout}' is unknown; known: ${PHANTOM_LAYOUTS.join(', ')}`);
}

/** The four channels of a phantom stacked as one 4D float32 volume [X, Y, Z, 4] (FLAIR, T1w, T1gd, T2w). */
function stackChannels(phantom: PhantomCase): Volume<'float32'> {
  const { FLAIR, T1w, T1gd, T2w } = phantom.channels;
  const count = FLAIR.data.length;
  const data = new Float32Array(count * 4);
  [FLAIR, T1w, T1gd, T2w].forEach((channel, frame) => data.set(channel.data, frame * count));
  const [x, y, z] = [FLAIR.shape[0], FLAIR.shape[1], FLAIR.shape[2]];
  // The Decathlon files carry qform and sform code 1 (scanner anatomical).
  const header = FLAIR.header === undefined ? undefined : { ...FLAIR.header, qformCode: 1 };
  return createVolume('float32', data, [x, y, z, 4], header === undefined ? FLAIR : { spacing: FLAIR.spacing, affine: FLAIR.affine, header });
}

function withLabels(phantom: PhantomCase, data: Uint8Array): Volume<'uint8'> {
  const labels = phantom.labels;
  const geometry = labels.header === undefined ? labels : { spacing: labels.spacing, affine: labels.affine, header: { ...labels.header, qformCode: 1 } };
  return createVolume('uint8', data, labels.shape, geometry);
}

/**
 * Generates `cases` phantoms and writes them under `dir` in one of the dataset layouts; the same options
 * give byte-identical files. msd: `dataset.json`, `imagesTr/<id>.nii.gz` (4D float32 [X, Y, Z, 4]: FLAIR,
 * T1w, T1gd, T2w) and `labelsTr/<id>.nii.gz` (uint8, 1 oedema, 2 non-enhancing, 3 enhancing), or
 * `imagesTs/` and a `test` list without labels. brats2018: `<id>/<id>_flair|_t1|_t1ce|_t2.nii.gz` (int16)
 * and `_seg` (uint8, 1/2/4). brats2023: `<id>/<id>-t2f|-t1n|-t1c|-t2w.nii.gz` (int16) and `-seg` (uint8,
 * 1/2/3). Every file is written atomically; dataset.json comes last. Existing files of the same names are
 * replaced.
 * @throws {ArgumentError} for an unknown layout, a case count outside [1, 100000] or bad phantom options.
 * @example await writePhantomDataset('data/phantoms', { layout: 'msd', cases: 4, size: [96, 96, 64] });
 */
export async function writePhantomDataset(dir: string, options: WritePhantomDatasetOptions): Promise<PhantomDatasetSummary> {
  const { layout, cases } = options;
  if (!PHANTOM_LAYOUTS.includes(layout)) throw unknownLayout('writePhantomDataset', String(layout));
  if (!Number.isInteger(cases) || cases < 1 || cases > 100000) {
    throw new ArgumentError('writePhantomDataset', 'cases', `must be an integer in [1, 100000], got ${String(cases)}`);
  }
  const seed = options.seed ?? 0;
  checkSeed('writePhantomDataset', seed);
  const level = options.compressionLevel ?? 6;
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw new ArgumentError('writePhantomDataset', 'compressionLevel', `must be an integer in [1, 9], got ${String(level)}`);
  }
  const labelled = options.labels ?? true;
  const directory = path.resolve(dir);
  const files: string[] = [];
  const caseIds: string[] = [];
  const write = async (file: string, volume: Volume): Promise<void> => {
    await writeNifti(file, volume, { compressionLevel: level });
    files.push(file);
  };
  for (let index = 0; index < cases; index++) {
    const id = createPhantomCaseId(layout, index);
    const generateOptions: Parameters<typeof generatePhantom>[0] = { seed: deriveCaseSeed(seed, index), id };
    if (options.size !== undefined) generateOptions.size = options.size;
    if (options.spacing !== undefined) generateOptions.spacing = options.spacing;
    if (options.skull !== undefined) generateOptions.skull = options.skull;
    const phantom = generatePhantom(generateOptions);
    if (layout === 'msd') {
      await write(path.join(directory, labelled ? 'imagesTr' : 'imagesTs', `${id}.nii.gz`), stackChannels(phantom));
      if (labelled) {
        const labels = convertLabels(phantom.labels.data, BRATS2017_LABELS, MSD_LABELS);
        await write(path.join(directory, 'labelsTr', `${id}.nii.gz`), withLabels(phantom, labels));
      }
    } else {
      const modern = layout === 'brats2023';
      const suffixes = modern ? ['-t2f', '-t1n', '-t1c', '-t2w'] : ['_flair', '_t1', '_t1ce', '_t2'];
      const { FLAIR, T1w, T1gd, T2w } = phantom.channels;
      const caseDirectory = path.join(directory, id);
      for (const [n, volume] of [FLAIR, T1w, T1gd, T2w].entries()) {
        await write(path.join(caseDirectory, `${id}${suffixes[n]!}.nii.gz`), volume);
      }
      if (labelled) {
        const labels = modern ? convertLabels(phantom.labels.data, BRATS2017_LABELS, BRATS2023_LABELS) : phantom.labels.data;
        await write(path.join(caseDirectory, `${id}${modern ? '-seg' : '_seg'}.nii.gz`), withLabels(phantom, labels));
      }
    }
    caseIds.push(id);
    options.onProgress?.(index + 1, cases, id);
  }
  if (layout === 'msd') {
    const file = path.join(directory, 'dataset.json');
    await writeFileAtomic(file, `${JSON.stringify(decathlonIndex(caseIds, labelled, seed), null, 2)}\n`);
    files.push(file);
  }
  return { directory, layout, caseIds, files };
}

/** The Decathlon `dataset.json` of a phantom dataset, with the keys and wording of Task01_BrainTumour. */
function decathlonIndex(caseIds: readonly string[], labelled: boolean, seed: number): Record<string, unknown> {
  return {
    name: 'BRATS',
    description: `Synthetic glioma phantoms (oedema, necrotic core, enhancing rim) generated by @brats/io with seed ${seed}`,
    reference: 'https://www.med.upenn.edu/sbia/brats2017.html',
    licence: 'CC0 1.0 (synthetic data)',
    release: '1.0 phantom',
    tensorImageSize: '4D',
    modality: { 0: 'FLAIR', 1: 'T1w', 2: 't1gd', 3: 'T2w' },
    labels: { 0: 'background', 1: 'edema', 2: 'non-enhancing tumor', 3: 'enhancing tumour' },
    numTraining: labelled ? caseIds.length : 0,
    numTest: labelled ? 0 : caseIds.length,
    training: labelled ? caseIds.map((id) => ({ image: `./imagesTr/${id}.nii.gz`, label: `./labelsTr/${id}.nii.gz` })) : [],
    test: labelled ? [] : caseIds.map((id) => `./imagesTs/${id}.nii.gz`),
  };
}
