import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** A temporary sibling path for `target`; same directory so that the final rename is atomic. */
export function temporaryPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
}

/**
 * Writes a file atomically: the bytes go to a temporary sibling that is renamed over `target` only
 * once complete, so a crash never leaves a half-written file under the final name.
 */
export async function writeFileAtomic(target: string, bytes: Uint8Array | string): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  const partial = temporaryPathFor(target);
  try {
    await fs.writeFile(partial, bytes);
    await fs.rename(partial, target);
  } catch (error) {
    await fs.rm(partial, { force: true });
    throw error;
  }
}

/**
 * Runs `produce` with a temporary path and renames the result to `target` when it resolves; on failure
 * the temporary file is removed. For writers that need a path of their own (HDF5, folders).
 */
export async function withAtomicPath<T>(target: string, produce: (partialPath: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  const partial = temporaryPathFor(target);
  try {
    const result = await produce(partial);
    await fs.rename(partial, target);
    return result;
  } catch (error) {
    await fs.rm(partial, { recursive: true, force: true });
    throw error;
  }
}
