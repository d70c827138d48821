import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { writeFileAtomic } from '../atomic.js';
import type { Volume } from '../volume.js';
import { encodeNifti, type WriteNiftiOptions } from './encode.js';

export { encodeNifti, type WriteNiftiOptions } from './encode.js';

const gzipAsync = promisify(gzip);

/**
 * Writes a volume to a NIfTI-1 file, gzip-compressed when `path` ends in `.gz`. The write is atomic
 * (temporary file, then rename). See {@link encodeNifti} for the header that is written.
 * @example await writeNifti('seg.nii.gz', mask, { dtype: 'uint8' });
 */
export async function writeNifti(path: string, volume: Volume, options: WriteNiftiOptions = {}): Promise<void> {
  const encoded = encodeNifti(volume, options);
  const bytes = path.endsWith('.gz') ? await gzipAsync(encoded, { level: options.compressionLevel ?? 6 }) : encoded;
  await writeFileAtomic(path, bytes);
}
