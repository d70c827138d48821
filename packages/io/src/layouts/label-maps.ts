import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatasetError } from '../errors.js';

/** A label-map file and the case id it belongs to. */
export interface LabelMapFile {
  id: string;
  path: string;
}

const IMAGE_SUFFIXES = ['_flair', '_t1', '_t1ce', '_t2', '-t2f', '-t1n', '-t1c', '-t2w'];
const LABEL_SUFFIXES = ['_seg', '-seg', '_pred', '-pred', '_prediction', '-prediction'];
const IMAGE_FOLDERS = new Set(['imagesTr', 'imagesTs']);

/**
 * Finds the label maps in a folder of any layout, as predictions are written: `<id>.nii.gz`,
 * `<id>_seg.nii.gz`, `<id>-seg.nii.gz`, `<id>_pred.nii.gz`, in the folder, in case sub-folders or in a
 * Decathlon `labelsTr/`. Image files (`_flair`, `-t2f`, …, `imagesTr/`) are ignored. Sorted by id.
 * @throws {DatasetError} when the folder does not exist or two files claim the same case id.
 */
export async function findLabelMaps(dir: string): Promise<LabelMapFile[]> {
  const root = path.resolve(dir);
  const found = new Map<string, string>();
  const visit = async (folder: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(folder, { withFileTypes: true });
    } catch {
      throw new DatasetError(folder, 'not a readable folder');
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        if (depth < 3 && !entry.name.startsWith('.') && !IMAGE_FOLDERS.has(entry.name)) await visit(full, depth + 1);
        continue;
      }
      const extension = ['.nii.gz', '.nii'].find((candidate) => entry.name.endsWith(candidate));
      if (extension === undefined || entry.name.startsWith('.')) continue;
      const stem = entry.name.slice(0, -extension.length);
      if (IMAGE_SUFFIXES.some((suffix) => stem.endsWith(suffix))) continue;
      const suffix = LABEL_SUFFIXES.find((candidate) => stem.endsWith(candidate));
      const id = suffix === undefined ? stem : stem.slice(0, -suffix.length);
      const previous = found.get(id);
      if (previous !== undefined) throw new DatasetError(full, `case id ${id} also has label map ${previous}`);
      found.set(id, full);
    }
  };
  await visit(root, 0);
  return [...found.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([id, file]) => ({ id, path: file }));
}
