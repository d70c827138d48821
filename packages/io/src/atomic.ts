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

/** True when process `pid` runs on this machine (signal 0 checks without signalling). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary siblings of `target` that a killed run left behind: those whose writing process (the pid
 * in their name) no longer runs. A rerun cleans up after the run it replaces; a writer still at work keeps its own.
 * @returns the paths removed.
 */
export async function removeStalePartials(target: string): Promise<string[]> {
  const directory = path.dirname(path.resolve(target));
  const prefix = `.${path.basename(target)}.`;
  const removed: string[] = [];
  const names = await fs.readdir(directory).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.partial')) continue;
    const match = /^(\d+)\.[0-9a-f]+\.partial$/.exec(name.slice(prefix.length));
    if (match === null) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await fs.rm(path.join(directory, name), { recursive: true, force: true });
    removed.push(path.join(directory, name));
  }
  return removed;
}

/**
 * Runs `produce` with a temporary path and renames the result to `target` when it resolves; on failure
 * the temporary file is removed, and temporary files of killed earlier runs for the same target are removed
 * first ({@link removeStalePartials}). For writers that need a path of their own (HDF5, folders).
 */
export async function withAtomicPath<T>(target: string, produce: (partialPath: string) => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(path.resolve(target)), { recursive: true });
  // A run killed before its rename (SIGKILL, power loss) left its temporary file: this run replaces that one.
  await removeStalePartials(target);
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
