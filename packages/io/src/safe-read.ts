/**
 * Reads that cannot hang or run away: only regular files are opened (a FIFO would block the read forever, a
 * device such as /dev/zero never ends, also behind a symbolic link), and a file larger than the caller's cap is
 * refused before a byte of it is read.
 */
import { promises as fs, type Stats } from 'node:fs';

/** Whether a path can be read as a regular file (`size` in bytes), or why not. */
export type RegularFileCheck = { ok: true; size: number } | { ok: false; reason: string; code?: string };

function kindOf(stat: Stats): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Checks that `path` (symbolic links followed) is a regular file of at most `maxBytes` bytes. */
export async function checkRegularFile(path: string, maxBytes: number): Promise<RegularFileCheck> {
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? 'I/O error'})`, ...(code === undefined ? {} : { code }) };
  }
  if (!stat.isFile()) return { ok: false, reason: `${kindOf(stat)}, not a regular file: only regular files are read` };
  if (stat.size > maxBytes) return { ok: false, reason: `file size ${stat.size} exceeds the limit of ${maxBytes} bytes` };
  return { ok: true, size: stat.size };
}

/**
 * Reads a regular file of at most `maxBytes` bytes, re-checking the opened handle (the path may have been
 * swapped between the check and the open).
 * @returns the bytes, or the reason the file cannot be read.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<{ ok: true; bytes: Buffer } | { ok: false; reason: string; code?: string }> {
  const check = await checkRegularFile(path, maxBytes);
  if (!check.ok) return check;
  let handle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: `cannot read file (${code ?? 'I/O error'})` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { ok: false, reason: `${kindOf(stat)}, not a regular file: only regular files are read` };
    if (stat.size > maxBytes) return { ok: false, reason: `file size ${stat.size} exceeds the limit of ${maxBytes} bytes` };
    // Never more than the cap, even if the file grows while it is read.
    const bytes = Buffer.allocUnsafe(stat.size);
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesRead } = await handle.read(bytes, offset, bytes.length - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    return { ok: true, bytes: offset === bytes.length ? bytes : bytes.subarray(0, offset) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: `cannot read file (${code ?? 'I/O error'})` };
  } finally {
    await handle.close();
  }
}

/** Cap on the size of the JSON files @brats reads (manifests, dataset.json): far above any real one. */
export const MAX_JSON_BYTES = 64 * 1024 ** 2;
