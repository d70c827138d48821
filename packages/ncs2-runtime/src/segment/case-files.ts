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

/** The case id files give: a 4D file's name, or the FLAIR file's name without its `_flair` / `-t2f` suffix. */
export function caseIdOfFiles(files: CaseFiles): string {
  const base = (file: string): string => stripNifti(file.split(/[\\/]/).pop() ?? file);
  return 'scan' in files ? base(files.scan) : base(files.flair).replace(/[_-](flair|t2f)$/i, '');
}

/**
 * The case made of `files`: a 4D file reads as the Decathlon layout (frames 0-3 = FLAIR, T1w, T1gd, T2w), four
 * 3D files as the BraTS 2017-2021 layout (so a regions model writes labels 1/2/4 for them).
 */
export function caseRefFromFiles(id: string, files: CaseFiles): CaseRef {
  if ('scan' in files) return { id, layout: 'msd', images: [files.scan], frames: [0, 1, 2, 3] };
  return { id, layout: 'brats2017', images: MODALITY_ROLES.map((role) => files[role]) };
}
