/**
 * Multipart uploads → a staged job: each file part is streamed to disk under the size cap, recognised by its
 * first bytes (gzip or a NIfTI-1/2 header), and its header is checked (with the decompressed-size cap) before
 * the job is accepted, so a bad scan is refused with 4xx at once instead of failing later.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { MultipartFile } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { NiftiFormatError, readNifti, type NiftiVolume } from '@brats/io';
import { brats2023SuffixOf } from '@brats/ncs2-runtime';
import { ApiError } from './errors.js';
import { SCAN_ROLES, type ScanRole } from './job-store.js';

/** What an accepted upload is: one 4D file or four files by role, with their names under `inputs/`. */
export interface StagedUpload {
  inputKind: '4d' | 'roles';
  inputFiles: Record<string, string>;
}

/** The form field of a 4D upload. */
export const SCAN_FIELD = 'scan';

const FIELDS: readonly string[] = [SCAN_FIELD, ...SCAN_ROLES];

function badRequest(message: string): ApiError {
  return new ApiError(400, 'BAD_UPLOAD', message);
}

/** `.nii.gz` for gzip bytes, `.nii` for a NIfTI-1/2 header (either byte order), undefined otherwise. */
function sniffNifti(head: Uint8Array): '.nii.gz' | '.nii' | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return '.nii.gz';
  if (head.length < 4) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const sizes = [view.getInt32(0, true), view.getInt32(0, false)];
  return sizes.includes(348) || sizes.includes(540) ? '.nii' : undefined;
}

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await fs.open(file, 'r');
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function stagePart(part: MultipartFile, inputs: string, field: string): Promise<string> {
  if (!/\.nii(\.gz)?$/i.test(part.filename)) {
    part.file.resume();
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `field '${field}': file '${part.filename}' is not a NIfTI file; expected .nii or .nii.gz`);
  }
  const target = path.join(inputs, `${field}.upload`);
  await pipeline(part.file, createWriteStream(target));
  if (part.file.truncated) {
    throw new ApiError(413, 'UPLOAD_TOO_LARGE', `field '${field}': file '${part.filename}' is larger than the upload limit`);
  }
  const extension = sniffNifti(await readHead(target));
  if (extension === undefined) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `field '${field}': file '${part.filename}' is neither gzip nor NIfTI (unknown first bytes)`);
  }
  // A file named as BraTS 2023+ names it (e.g. `...-t2f.nii.gz` for FLAIR) keeps that ending, so that four such files
  // read as that layout and a regions model writes its labels (1/2/3) rather than BraTS 2017-2021's (1/2/4).
  const suffix = field === SCAN_FIELD ? '' : brats2023SuffixOf(field as ScanRole, part.filename);
  const name = `${field}${suffix}${extension}`;
  await fs.rename(target, path.join(inputs, name));
  return name;
}

/**
 * Checks a staged file's header and its length against its dims, streaming it (decompressed up to the cap) in
 * constant memory: a burst of uploads or a gzip bomb never holds a whole decompressed scan.
 */
async function readHeader(file: string, label: string, maxBytes: number): Promise<NiftiVolume> {
  try {
    return await readNifti(file, { maxBytes, headerOnly: true });
  } catch (error) {
    if (error instanceof NiftiFormatError) {
      const tooLarge = /exceeds the limit/.test(error.reason);
      // The client knows the file by its field and name, not by the staging path.
      const message = `${label}: ${error.reason}`;
      throw new ApiError(tooLarge ? 413 : 422, tooLarge ? 'SCAN_TOO_LARGE' : 'SCAN_UNREADABLE', message, { cause: error });
    }
    throw error;
  }
}

/** The client closed the connection before its upload was read: there is no one to answer, nothing is kept. */
export function clientGoneError(): ApiError {
  return new ApiError(400, 'CLIENT_GONE', 'the client closed the connection before its upload was read');
}

/**
 * Streams the parts of a multipart request into `<staging>/inputs` (the folder made by `createStaging`) and
 * checks that they make one case.
 * @throws {ApiError} 400 for unknown, repeated, missing or extra fields or a connection closed early; 413 past the
 *   upload or decompressed cap; 415 for a file that is not NIfTI; 422 for a NIfTI that cannot be read or is the
 *   wrong shape.
 */
export async function stageUpload(
  request: FastifyRequest,
  createStaging: () => Promise<string>,
  maxDecompressedBytes: number,
  /** Runs each header check; the server passes a limiter so that few whole files are in memory at once. */
  runCheck: <T>(check: () => Promise<T>) => Promise<T> = (check) => check(),
): Promise<StagedUpload> {
  if (!request.isMultipart()) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `expected multipart/form-data with a '${SCAN_FIELD}' file or files ${SCAN_ROLES.join(', ')}; found ${request.headers['content-type'] ?? 'no content type'}`);
  }
  // The parser starts, and listens for the request's end and close, with the iterator's first step: anything
  // awaited before it could miss a connection that closes meanwhile and leave the upload waiting forever for a
  // body that never comes.
  const iterator = request.parts()[Symbol.asyncIterator]();
  const firstStep = iterator.next();
  // Its rejection (a body cut short) is handled below, once the staging folder exists.
  firstStep.catch(() => undefined);
  if (request.raw.destroyed) throw clientGoneError();
  const inputs = path.join(await createStaging(), 'inputs');
  const files: Record<string, string> = {};
  const labels: Record<string, string> = {};
  try {
    for (let step = await firstStep; step.done !== true; step = await iterator.next()) {
      const part = step.value;
      if (part.type === 'field') throw badRequest(`unexpected form field '${part.fieldname}'; send files only (${FIELDS.join(', ')})`);
      const field = part.fieldname.toLowerCase();
      if (!FIELDS.includes(field)) {
        part.file.resume();
        throw badRequest(`unknown file field '${part.fieldname}'; expected '${SCAN_FIELD}' (one 4D NIfTI) or ${SCAN_ROLES.join(', ')}`);
      }
      if (files[field] !== undefined) {
        part.file.resume();
        throw badRequest(`file field '${field}' is given twice`);
      }
      files[field] = await stagePart(part, inputs, field);
      labels[field] = `${field} (${part.filename})`;
    }
  } catch (error) {
    // As a for-await loop would: the parser is told that no more parts are wanted.
    void iterator.return?.(undefined).catch(() => undefined);
    throw error;
  }
  const fields = Object.keys(files);
  if (fields.length === 0) throw badRequest(`no file: send '${SCAN_FIELD}' (one 4D NIfTI) or the four files ${SCAN_ROLES.join(', ')}`);
  if (files[SCAN_FIELD] !== undefined) {
    if (fields.length > 1) throw badRequest(`send either '${SCAN_FIELD}' or the four role files, not both`);
    const volume = await runCheck(() => readHeader(path.join(inputs, files[SCAN_FIELD]!), labels[SCAN_FIELD]!, maxDecompressedBytes));
    if (volume.shape.length !== 4 || volume.shape[3] < 4) {
      throw new ApiError(422, 'SCAN_INVALID', `${labels[SCAN_FIELD]}: expected a 4D image with 4 frames (FLAIR, T1w, T1gd, T2w), found shape [${volume.shape.join(', ')}]`);
    }
    return { inputKind: '4d', inputFiles: files };
  }
  const missing = SCAN_ROLES.filter((role) => files[role] === undefined);
  if (missing.length > 0) throw badRequest(`four files are needed (${SCAN_ROLES.join(', ')}); missing ${missing.join(', ')}`);
  let first: { shape: readonly number[]; label: string } | undefined;
  for (const role of SCAN_ROLES as readonly ScanRole[]) {
    const volume = await runCheck(() => readHeader(path.join(inputs, files[role]!), labels[role]!, maxDecompressedBytes));
    if (volume.shape.length !== 3) throw new ApiError(422, 'SCAN_INVALID', `${labels[role]}: expected a 3D image, found shape [${volume.shape.join(', ')}]`);
    if (first === undefined) first = { shape: volume.shape, label: labels[role]! };
    else if (volume.shape.some((n, i) => n !== first!.shape[i])) {
      throw new ApiError(422, 'SCAN_INVALID', `${labels[role]}: shape [${volume.shape.join(', ')}] differs from ${first.label} [${first.shape.join(', ')}]`);
    }
  }
  return { inputKind: 'roles', inputFiles: files };
}
