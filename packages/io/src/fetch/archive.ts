import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ReadEntry } from 'tar';
import { FetchError } from './errors.js';

/** One entry of a tar archive as stored (path not normalised). */
export interface ArchiveEntry {
  /** The path stored in the archive (after PAX/GNU long-name headers). */
  path: string;
  /** node-tar's type name: `File`, `Directory`, `SymbolicLink`, `Link`, … */
  type: string;
  /** Size of the entry's data in bytes. */
  size: number;
  /** Target of a symbolic link (relative to the link's folder) or of a hard link (relative to the archive root). */
  linkpath?: string;
}

/** Why an archive entry was refused. */
export interface UnsafeEntry {
  entry: ArchiveEntry;
  reason: string;
}

/** Options of {@link extractArchive}. */
export interface ExtractArchiveOptions {
  /** Called after each entry is read; `done` of `total` entries. */
  onProgress?: (done: number, total: number, entryPath: string) => void;
}

const SAFE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

function isAbsoluteEntryPath(entryPath: string): boolean {
  // Windows drive letters and UNC paths too: node-tar treats them as absolute on every platform.
  return entryPath.startsWith('/') || entryPath.startsWith('\\') || /^[A-Za-z]:/.test(entryPath);
}

/** The segments of an archive path; backslashes count as separators so no platform sees a different path. */
function segmentsOf(entryPath: string): string[] {
  return entryPath.split(/[/\\]+/).filter((segment) => segment !== '' && segment !== '.');
}

/**
 * Checks every entry of an archive before anything is written, and returns the first that could put a file
 * outside the extraction folder: an absolute path, a `..` segment, a device or other special file, a
 * symbolic link whose target is absolute, climbs out, or passes through another link of the archive (a link
 * chain can escape where each link alone looks contained), a hard link to a path outside or to a link, or
 * an entry placed under a symbolic link. node-tar would strip or skip some of these with a warning; the
 * point here is to refuse the archive instead.
 * @returns undefined when every entry is safe.
 */
export function findUnsafeEntry(entries: readonly ArchiveEntry[]): UnsafeEntry | undefined {
  const symbolicLinks = new Set(
    entries.filter((entry) => entry.type === 'SymbolicLink').map((entry) => segmentsOf(entry.path).join('/')),
  );
  const underLink = (segments: readonly string[], includeLast: boolean): string | undefined => {
    const last = includeLast ? segments.length : segments.length - 1;
    for (let length = 1; length <= last; length += 1) {
      const prefix = segments.slice(0, length).join('/');
      if (symbolicLinks.has(prefix)) return prefix;
    }
    return undefined;
  };
  for (const entry of entries) {
    if (!SAFE_TYPES.has(entry.type)) return { entry, reason: `is a ${entry.type}, not a file, folder or link` };
    if (isAbsoluteEntryPath(entry.path)) return { entry, reason: 'has an absolute path' };
    if (entry.path.split(/[/\\]+/).includes('..')) return { entry, reason: "has a '..' segment in its path" };
    const segments = segmentsOf(entry.path);
    if (segments.length === 0 && entry.type !== 'Directory') return { entry, reason: 'has an empty path' };
    const parentLink = underLink(segments, false);
    if (parentLink !== undefined) return { entry, reason: `lies under the symbolic link ${parentLink}` };
    if (entry.type === 'SymbolicLink') {
      const target = entry.linkpath ?? '';
      if (target === '') return { entry, reason: 'is a symbolic link without a target' };
      if (isAbsoluteEntryPath(target)) return { entry, reason: `is a symbolic link to the absolute path ${target}` };
      const resolved = segments.slice(0, -1);
      const steps = target.split(/[/\\]+/).filter((segment) => segment !== '' && segment !== '.');
      for (const [index, step] of steps.entries()) {
        if (step === '..') {
          if (resolved.length === 0) return { entry, reason: `is a symbolic link to ${target}, outside the archive's folder` };
          resolved.pop();
        } else {
          resolved.push(step);
          if (index < steps.length - 1 && symbolicLinks.has(resolved.join('/'))) {
            return { entry, reason: `is a symbolic link to ${target}, which passes through the link ${resolved.join('/')}` };
          }
        }
      }
    }
    if (entry.type === 'Link') {
      const target = entry.linkpath ?? '';
      if (target === '' || isAbsoluteEntryPath(target) || target.split(/[/\\]+/).includes('..')) {
        return { entry, reason: `is a hard link to ${target === '' ? 'nothing' : target}, outside the archive's folder` };
      }
      const targetSegments = segmentsOf(target);
      const through = underLink(targetSegments, true);
      if (through !== undefined) return { entry, reason: `is a hard link to ${target}, which is or lies under the symbolic link ${through}` };
    }
  }
  return undefined;
}

/**
 * Lists the entries of a tar file (optionally gzip-compressed) without extracting anything.
 * @throws {FetchError} `archive` when the file is not a readable tar archive.
 */
export async function listArchive(file: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  try {
    // tar loads when an archive is read, not with @brats/io.
    const { list } = await import('tar');
    await list({
      file,
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        const item: ArchiveEntry = { path: entry.path, type: entry.type, size: entry.size };
        if (entry.linkpath !== undefined && entry.linkpath !== '') item.linkpath = entry.linkpath;
        entries.push(item);
      },
    });
  } catch (error) {
    throw new FetchError('archive', `${file}: not a readable tar archive (${(error as Error).message})`, { path: file }, { cause: error });
  }
  if (entries.length === 0) throw new FetchError('archive', `${file}: the archive holds no entries`, { path: file });
  return entries;
}

/**
 * Extracts a tar file into the folder `destination` (created if missing) after checking every entry with
 * {@link findUnsafeEntry}: an unsafe archive is refused before a single file is written. node-tar runs in
 * strict mode, so anything it would otherwise skip with a warning fails the extraction too. A failure
 * during extraction can leave part of the archive in `destination`: extract into a fresh temporary folder
 * and rename it when this resolves (as {@link fetchDecathlonTask} does).
 * @returns the archive's entries.
 * @throws {FetchError} `unsafe-entry` (with `entry`) for an entry that could escape `destination`,
 * `archive` for an unreadable archive.
 */
export async function extractArchive(file: string, destination: string, options: ExtractArchiveOptions = {}): Promise<ArchiveEntry[]> {
  const entries = await listArchive(file);
  const unsafe = findUnsafeEntry(entries);
  if (unsafe !== undefined) {
    throw new FetchError(
      'unsafe-entry',
      `${file}: refusing to extract: entry '${unsafe.entry.path}' ${unsafe.reason}; nothing was written`,
      { path: file, entry: unsafe.entry.path },
    );
  }
  const root = path.resolve(destination);
  await fs.mkdir(root, { recursive: true });
  let done = 0;
  try {
    const { extract } = await import('tar');
    await extract({
      file,
      cwd: root,
      strict: true,
      preserveOwner: false,
      filter: (entryPath: string) => {
        done += 1;
        options.onProgress?.(done, entries.length, entryPath);
        return true;
      },
    });
  } catch (error) {
    throw new FetchError('archive', `${file}: extraction into ${root} failed (${(error as Error).message})`, { path: file }, { cause: error });
  }
  return entries;
}
