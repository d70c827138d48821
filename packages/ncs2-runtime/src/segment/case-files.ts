/**
 * A case made of the files a user hands over (one 4D file, or four 3D files by modality role), with no Node.js
 * module: the CLI's arguments, the server's uploads and the browser page's chosen files become cases here alike.
 */
import type { CaseRef } from '@brats/io/browser';

/** The four modality roles of a case given as separate 3D files, in canonical channel order. */
export const MODALITY_ROLES = ['flair', 't1w', 't1gd', 't2w'] as const;
export type ModalityRole = (typeof MODALITY_ROLES)[number];

/** A case's image files: one 4D file (channels FLAIR, T1w, T1gd, T2w) or one 3D file per modality role. */
export type CaseFiles = { readonly scan: string } | Readonly<Record<ModalityRole, string>>;

/** A file name without its `.nii` or `.nii.gz` extension. */
function stripNifti(name: string): string {
  return name.replace(/\.nii(\.gz)?$/, '');
}

/** A path's last part without its NIfTI extension. */
function baseName(file: string): string {
  return stripNifti(file.split(/[\\/]/).pop() ?? file);
}

/** The case id files give: a 4D file's name, or the FLAIR file's name without its `_flair` / `-t2f` suffix. */
export function caseIdOfFiles(files: CaseFiles): string {
  return 'scan' in files ? baseName(files.scan) : baseName(files.flair).replace(/[_-](flair|t2f)$/i, '');
}

/** The file-name endings of BraTS 2023+ (`-t2f`, `-t1n`, `-t1c`, `-t2w`), by role. */
const BRATS2023_SUFFIXES: Readonly<Record<ModalityRole, string>> = { flair: '-t2f', t1w: '-t1n', t1gd: '-t1c', t2w: '-t2w' };

/**
 * The BraTS 2023+ ending of role `role` (e.g. `-t2f` for FLAIR) when `fileName` ends with it, else ''. The server
 * keeps it in the names it stores uploads under, so that four files named as BraTS 2023+ names them stay that layout.
 */
export function brats2023SuffixOf(role: ModalityRole, fileName: string): string {
  const suffix = BRATS2023_SUFFIXES[role];
  return baseName(fileName).toLowerCase().endsWith(suffix) ? suffix : '';
}

/**
 * The case made of `files`: a 4D file reads as the Decathlon layout (frames 0-3 = FLAIR, T1w, T1gd, T2w); four 3D
 * files named as BraTS 2023+ names them (`-t2f`, `-t1n`, `-t1c`, `-t2w`) as that layout, any other four as the
 * BraTS 2017-2021 layout. A regions model writes each layout's own labels: 1/2/3 for the Decathlon and BraTS
 * 2023+, 1/2/4 for BraTS 2017-2021.
 */
export function caseRefFromFiles(id: string, files: CaseFiles): CaseRef {
  if ('scan' in files) return { id, layout: 'msd', images: [files.scan], frames: [0, 1, 2, 3] };
  const modern = MODALITY_ROLES.every((role) => brats2023SuffixOf(role, files[role]) !== '');
  return { id, layout: modern ? 'brats2023' : 'brats2017', images: MODALITY_ROLES.map((role) => files[role]) };
}
