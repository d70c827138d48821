import { createReadStream, promises as fs } from 'node:fs';
import { pipeline, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGunzip, gunzip } from 'node:zlib';
import { NiftiFormatError } from '../errors.js';
import { checkRegularFile, readRegularFile } from '../safe-read.js';
import { DEFAULT_MAX_NIFTI_BYTES, decodeNifti, headerEnd, parseNiftiWith, type NiftiVolume, type ReadNiftiOptions } from './decode.js';

export { DEFAULT_MAX_NIFTI_BYTES, type NiftiHeaderSummary, type NiftiVolume, type ReadNiftiOptions } from './decode.js';

const gunzipAsync = promisify(gunzip);

/** The largest output chunk asked of zlib at once (a bigger file is inflated in chunks of this size). */
const MAX_GUNZIP_CHUNK = 256 * 1024 ** 2;

/**
 * zlib's gunzip (on libuv's thread pool), capped at `maxBytes` of output. The output chunk is sized from the gzip
 * trailer's ISIZE (the decompressed size modulo 2^32), so a scan inflates in one call on the pool into one buffer
 * of its own: with zlib's default 16 KiB chunks, a 17 MB scan took a thousand round trips through the event loop
 * and a copy of the joined chunks (0.25 s of a case's main-thread time). ISIZE is only a size hint: a wrong one
 * changes the chunking, never the bytes.
 */
const zlibGunzip = (bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hint = bytes.length >= 18 ? view.getUint32(bytes.length - 4, true) : 0;
  // One byte past the hint lets zlib see the end of the stream in the same call.
  const chunkSize = Math.max(64 * 1024, Math.min(hint + 1, maxBytes + 1, MAX_GUNZIP_CHUNK));
  return gunzipAsync(bytes, { maxOutputLength: maxBytes, chunkSize });
};

/**
 * Reads a NIfTI-1 or NIfTI-2 file (`.nii` or `.nii.gz`, either byte order) into a Volume.
 * Shape is NIfTI i-j-k[-t]; scl_slope/scl_inter are applied (the dtype becomes float32, or float64 for
 * float64 files); the affine comes from the sform when sform_code > 0, else the qform when
 * qform_code > 0, else from pixdim (NIfTI method 1).
 * @throws {NiftiFormatError} for an unreadable, truncated, oversized or unsupported file, or a path that is not a
 *   regular file (a FIFO, a device, a folder; symbolic links are followed).
 * @example const flair = await readNifti('BraTS_001_flair.nii.gz');
 */
export async function readNifti(path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  if (options.headerOnly === true) return readNiftiHeader(path, options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES);
  // A gzip file is smaller than what it holds: the compressed bytes get the same cap as the decompressed ones.
  const read = await readRegularFile(path, options.maxBytes ?? DEFAULT_MAX_NIFTI_BYTES);
  if (!read.ok) throw new NiftiFormatError(path, read.reason);
  return parseNifti(read.bytes, path, options);
}

/**
 * Parses NIfTI bytes (gzip-compressed or not); `path` is used in error messages only.
 * @throws {NiftiFormatError} as {@link readNifti}.
 */
export async function parseNifti(bytes: Uint8Array, path: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  return parseNiftiWith(zlibGunzip, bytes, path, options);
}

/** The most header and extension bytes {@link readNiftiHeader} keeps, whatever vox_offset claims. */
const MAX_HEADER_PREFIX = 16 * 1024 ** 2;

/**
 * The header of a NIfTI file, checked as {@link readNifti} checks it (its length against its dims included), in
 * constant memory: the file is streamed and decompressed chunk by chunk, only the header is kept, and the rest
 * is counted. A server checks uploads this way so that a burst of them, or a gzip bomb, never holds whole
 * decompressed scans in memory.
 */
async function readNiftiHeader(path: string, maxBytes: number): Promise<NiftiVolume> {
  const check = await checkRegularFile(path, maxBytes);
  if (!check.ok) throw new NiftiFormatError(path, check.reason);
  let gzipped: boolean;
  try {
    const handle = await fs.open(path, 'r');
    try {
      const magic = new Uint8Array(2);
      const { bytesRead } = await handle.read(magic, 0, 2, 0);
      gzipped = bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new NiftiFormatError(path, `cannot read file (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`, { cause: error });
  }
  const file = createReadStream(path);
  // pipeline() forwards an error of either stream to the one that is iterated, and destroys both on an early stop.
  const source: Readable = gzipped ? pipeline(file, createGunzip(), () => undefined) : file;
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  // Enough for either header (NIfTI-2's is the larger) until the header says where its extensions end.
  let wanted = 544;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > maxBytes) throw new NiftiFormatError(path, `${gzipped ? 'decompressed ' : 'file '}size exceeds the limit of ${maxBytes} bytes`);
      if (kept < wanted) {
        chunks.push(chunk);
        kept += chunk.length;
        if (kept >= wanted) {
          const end = headerEnd(Buffer.concat(chunks, kept));
          if (end !== undefined) wanted = Math.min(end, MAX_HEADER_PREFIX);
        }
      }
    }
  } catch (error) {
    if (error instanceof NiftiFormatError) throw error;
    throw new NiftiFormatError(path, gzipped ? 'gzip stream is truncated or corrupt' : `cannot read file (${(error as NodeJS.ErrnoException).code ?? 'I/O error'})`, { cause: error });
  } finally {
    source.destroy();
    file.destroy();
  }
  return decodeNifti(Buffer.concat(chunks, kept), path, true, total);
}
