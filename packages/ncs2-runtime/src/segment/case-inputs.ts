/**
 * Case references from what a user hands over: dataset or case folders (any layout), 4D NIfTI files, or four
 * 3D files by modality role. The CLI's arguments and the server's uploads both become cases here.
 */
import { promises as fs } from 'node:fs';
import { openDataset, type CaseRef } from '@brats/io';
import { CaseInputError } from '../errors.js';
import { MODALITY_ROLES, caseIdOfFiles, caseRefFromFiles, type ModalityRole } from './case-files.js';

/**
 * Turns command-line style inputs into cases: dataset or case folders (any layout), 4D NIfTI files, or four
 * `role=file` arguments (`flair=`, `t1w=`, `t1gd=`, `t2w=`, case-insensitive) for one case named after the FLAIR file.
 * @throws {CaseInputError} for a role given twice, missing roles, a path that does not exist, or no input at all.
 * @throws {DatasetError} for a folder that is no dataset or case of a known layout.
 */
export async function resolveCaseInputs(inputs: readonly string[]): Promise<CaseRef[]> {
  const roles = new Map<ModalityRole, string>();
  const refs: CaseRef[] = [];
  for (const input of inputs) {
    const match = /^(flair|t1w|t1gd|t2w)=(.+)$/i.exec(input);
    if (match !== null) {
      const role = match[1]!.toLowerCase() as ModalityRole;
      if (roles.has(role)) throw new CaseInputError(`${role}=`, 'is given twice');
      // A path named on the command line that does not exist is the argument's fault, like any other path.
      if ((await fs.lstat(match[2]!).catch(() => undefined)) === undefined) throw new CaseInputError(input, 'no such file');
      roles.set(role, match[2]!);
      continue;
    }
    const stat = await fs.stat(input).catch(() => undefined);
    if (stat === undefined) throw new CaseInputError(input, 'no such file or folder');
    if (stat.isDirectory()) {
      refs.push(...(await openDataset(input)).cases);
    } else {
      refs.push(caseRefFromFiles(caseIdOfFiles({ scan: input }), { scan: input }));
    }
  }
  if (roles.size > 0) {
    const missing = MODALITY_ROLES.filter((role) => !roles.has(role));
    if (missing.length > 0) throw new CaseInputError('', `four modality files are needed; missing ${missing.map((role) => `${role}=`).join(', ')}`);
    const files = Object.fromEntries(roles) as Record<ModalityRole, string>;
    refs.push(caseRefFromFiles(caseIdOfFiles(files), files));
  }
  if (refs.length === 0) throw new CaseInputError('', 'no input: give a dataset folder, case folders, 4D NIfTI files or flair= t1w= t1gd= t2w= files');
  return refs;
}
