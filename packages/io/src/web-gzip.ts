/**
 * gzip through the Compression Streams API (browsers, and Node.js >= 18 as globals): what `@brats/io/browser`
 * uses where zlib does not exist. Written here because the API is a stream and callers want bytes with a size cap.
 */
import { parseNiftiWith, type NiftiVolume, type ReadNiftiOptions } from './nifti/decode.js';

async function collect(stream: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      // The same error class zlib gives for its maxOutputLength, so parseNiftiWith words both alike.
      throw new RangeError(`decompressed size exceeds ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Decompresses gzip bytes, stopping with a RangeError past `maxBytes` of output. */
export function gunzipWeb(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  return collect(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip')), maxBytes);
}

/** gzip-compresses bytes (a `.nii.gz` for a download). */
export function gzipWeb(bytes: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return collect(new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip')), Number.POSITIVE_INFINITY);
}

/**
 * Parses NIfTI bytes (gzip-compressed or not) as `parseNifti` does, with the Compression Streams API instead of
 * zlib; `name` is used in error messages only.
 * @throws {NiftiFormatError} as `parseNifti`.
 */
export function parseNiftiBytes(bytes: Uint8Array, name: string, options: ReadNiftiOptions = {}): Promise<NiftiVolume> {
  return parseNiftiWith(gunzipWeb, bytes, name, options);
}
