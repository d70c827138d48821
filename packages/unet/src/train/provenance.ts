/**
 * How a bundle records where its training data came from. The manifest travels with the bundle to other machines,
 * so it names the data file relative to the bundle folder, never by an absolute path of the machine that trained.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

function topFolder(absolute: string): string {
  return absolute.slice(path.parse(absolute).root.length).split(path.sep)[0] ?? '';
}

/**
 * The data file as `training.dataFile` records it: its path relative to the bundle folder, with `/` separators
 * (`../brats2018.h5`), which stays true when the two move together. Only the file name (`brats2018.h5`) when a
 * relative path would describe nothing but this machine: the two on different volumes or drives, or sharing no
 * folder below the filesystem root.
 * @throws when either path cannot be stat'ed (the bundle folder must exist).
 * @example await recordedDataFile('/data/runs/brats2018.h5', '/data/runs/model') // '../brats2018.h5'
 */
export async function recordedDataFile(dataFile: string, bundle: string): Promise<string> {
  const data = path.resolve(dataFile);
  const folder = path.resolve(bundle);
  const name = path.basename(data);
  const relative = path.relative(folder, data);
  // On Windows a file on another drive has no relative path: path.relative returns it absolute.
  if (path.isAbsolute(relative) || topFolder(data) !== topFolder(folder)) return name;
  const [dataStat, folderStat] = await Promise.all([fs.stat(data), fs.stat(folder)]);
  if (dataStat.dev !== folderStat.dev) return name;
  return relative.split(path.sep).join('/');
}
