/**
 * Case references from what a user hands over: dataset or case folders (any layout), 4D NIfTI files, or four
 * 3D files by modality role. The CLI's arguments and the server's uploads both become cases here.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openDataset, type CaseRef } from '@brats/io';
import { CaseInputError } from '../errors.js';

/** The four modality roles of a case given as separate 3D files, in canonical channel order. */
export const MODALITY_ROLES = ['flair', 't1w', 't1gd', 't2w'] as const;
export type ModalityRole = (typeof MODALITY_ROLES)[number];

/** A case's image files: one 4D file (channels FLAIR, T1w, T1gd, T2w) or one 3D file per modality role. */
export type CaseFiles = { readonly scan: string } | Readonly<Record<ModalityRole, string>>;

function stripNifti(name: string): string {
  return name.replace(/\.nii(\.gz)?$/, '');
}

/**
 * The case made of `files`: a 4D file reads as the Decathlon layout (frames 0-3 = FLAIR, T1w, T1gd, T2w), four
 * 3D files as the BraTS 2017-2021 layout (so a regions model writes labels 1/2/4 for them).
 */
export function caseRefFromFiles(id: string, files: CaseFiles): CaseRef {
  if ('scan' in files) return { id, layout: 'msd', images: [files.scan], frames: [0, 1, 2, 3] };
  return { id, layout: 'brats2017', images: MODALITY_ROLES.map((role) => files[role]) };
}

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
      refs.push(caseRefFromFiles(stripNifti(path.basename(input)), { scan: input }));
    }
  }
  if (roles.size > 0) {
    const missing = MODALITY_ROLES.filter((role) => !roles.has(role));
    if (missing.length > 0) throw new CaseInputError('', `four modality files are needed; missing ${missing.map((role) => `${role}=`).join(', ')}`);
    const files = Object.fromEntries(roles) as Record<ModalityRole, string>;
    const id = stripNifti(path.basename(files.flair)).replace(/[_-](flair|t2f)$/i, '');
    refs.push(caseRefFromFiles(id, files));
  }
  if (refs.length === 0) throw new CaseInputError('', 'no input: give a dataset folder, case folders, 4D NIfTI files or flair= t1w= t1gd= t2w= files');
  return refs;
}
