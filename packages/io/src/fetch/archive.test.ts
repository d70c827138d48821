import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractArchive, findUnsafeEntry, listArchive, type ArchiveEntry } from './archive.js';
import { FetchError } from './errors.js';
import { buildTar, type TarEntrySpec } from './fixtures.js';

let work: string;

beforeEach(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-archive-'));
});

afterEach(async () => {
  await fs.rm(work, { recursive: true, force: true });
});

const file = (entryPath: string): ArchiveEntry => ({ path: entryPath, type: 'File', size: 1 });
const symlink = (entryPath: string, linkpath: string): ArchiveEntry => ({ path: entryPath, type: 'SymbolicLink', size: 0, linkpath });
const hardlink = (entryPath: string, linkpath: string): ArchiveEntry => ({ path: entryPath, type: 'Link', size: 0, linkpath });

describe('findUnsafeEntry', () => {
  it.each([
    ['a plain tree', [{ path: 'T/', type: 'Directory', size: 0 }, file('T/a.nii.gz'), file('./T/b.nii.gz')]],
    ['a link to a sibling', [file('T/a'), symlink('T/b', 'a')]],
    ['a link that climbs but stays inside', [file('T/x/a'), symlink('T/y/b', '../x/a')]],
    ['a hard link inside', [file('T/a'), hardlink('T/b', 'T/a')]],
    ['a link to a link', [file('T/a'), symlink('T/b', 'a'), symlink('T/c', 'b')]],
  ] as [string, ArchiveEntry[]][])('accepts %s', (_name, entries) => {
    expect(findUnsafeEntry(entries)).toBeUndefined();
  });

  it.each([
    ['a .. path', [file('T/a'), file('../evil.txt')], '../evil.txt', "'..'"],
    ['a .. in the middle', [file('T/../../evil.txt')], 'T/../../evil.txt', "'..'"],
    ['an absolute path', [file('/tmp/evil.txt')], '/tmp/evil.txt', 'absolute path'],
    ['a drive-letter path', [file('C:/evil.txt')], 'C:/evil.txt', 'absolute path'],
    ['a backslash ..', [file('T\\..\\..\\evil.txt')], 'T\\..\\..\\evil.txt', "'..'"],
    ['a symlink climbing out', [symlink('T/link', '../../outside')], 'T/link', 'outside'],
    ['a symlink to an absolute path', [symlink('T/link', '/etc')], 'T/link', 'absolute path /etc'],
    ['a hard link outside', [hardlink('T/link', '../outside')], 'T/link', 'hard link'],
    ['a hard link to an absolute path', [hardlink('T/link', '/etc/passwd')], 'T/link', 'hard link'],
    ['a file under a symlink', [symlink('T/dir', 'sub'), file('T/dir/a')], 'T/dir/a', 'under the symbolic link T/dir'],
    ['a hard link to a symlink', [symlink('T/s', 'a'), hardlink('T/h', 'T/s')], 'T/h', 'symbolic link T/s'],
    // Read lexically, x points to T; followed by the system, y is T/a, so y/../../.. is one level above the root.
    ['a symlink chain that escapes', [symlink('T/a/b/y', '..'), symlink('T/a/b/x', 'y/../../..'), file('T/f')], 'T/a/b/x', 'passes through the link T/a/b/y'],
    ['a device file', [{ path: 'T/dev', type: 'CharacterDevice', size: 0 }], 'T/dev', 'CharacterDevice'],
  ] as [string, ArchiveEntry[], string, string][])('refuses %s', (_name, entries, entryPath, reason) => {
    const unsafe = findUnsafeEntry(entries);
    expect(unsafe?.entry.path).toBe(entryPath);
    expect(unsafe?.reason).toContain(reason);
  });
});

describe('extractArchive', () => {
  it('extracts a safe archive built by hand, links included', async () => {
    const archive = path.join(work, 'ok.tar');
    await fs.writeFile(
      archive,
      buildTar([
        { path: 'T/', type: 'Directory' },
        { path: 'T/a.txt', body: 'alpha' },
        { path: 'T/b.txt', type: 'SymbolicLink', linkpath: 'a.txt' },
      ]),
    );
    const destination = path.join(work, 'out');
    const progress: number[] = [];
    const entries = await extractArchive(archive, destination, { onProgress: (done) => progress.push(done) });
    expect(entries.map((entry) => entry.path)).toEqual(['T/', 'T/a.txt', 'T/b.txt']);
    expect(await fs.readFile(path.join(destination, 'T/a.txt'), 'utf8')).toBe('alpha');
    expect(await fs.readlink(path.join(destination, 'T/b.txt'))).toBe('a.txt');
    expect(progress).toEqual([1, 2, 3]);
  });

  it.each([
    ['a ../ path', [{ path: 'T/ok.txt', body: 'fine' }, { path: '../evil.txt', body: 'evil' }], '../evil.txt'],
    ['an absolute path', [{ path: 'T/ok.txt', body: 'fine' }, { path: 'ABSOLUTE', body: 'evil' }], 'ABSOLUTE'],
    [
      'a symlink to outside then a file through it',
      [
        { path: 'T/ok.txt', body: 'fine' },
        { path: 'T/escape', type: 'SymbolicLink', linkpath: '../..' },
        { path: 'T/escape/evil.txt', body: 'evil' },
      ],
      'T/escape',
    ],
    ['a hard link to outside', [{ path: 'T/ok.txt', body: 'fine' }, { path: 'T/hard', type: 'Link', linkpath: '../outside.txt' }], 'T/hard'],
  ] as [string, TarEntrySpec[], string][])('refuses %s before writing anything', async (_name, specs, refused) => {
    // Absolute paths point into this test's folder so that a failure could not touch anything else.
    const absolute = path.join(work, 'absolute-evil.txt');
    const resolved = specs.map((spec) => (spec.path === 'ABSOLUTE' ? { ...spec, path: absolute } : spec));
    const expectedEntry = refused === 'ABSOLUTE' ? absolute : refused;
    const archive = path.join(work, 'evil.tar');
    await fs.writeFile(archive, buildTar(resolved));
    await fs.writeFile(path.join(work, 'outside.txt'), 'outside');
    // The destination is two levels down so that '../' and '../..' still land inside `work`, where we can look.
    const destination = path.join(work, 'a', 'out');
    const error = await extractArchive(archive, destination).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'unsafe-entry', entry: expectedEntry });
    expect((error as FetchError).message).toContain('nothing was written');
    expect((await fs.readdir(work)).sort()).toEqual(['evil.tar', 'outside.txt']);
    expect(await fs.readFile(path.join(work, 'outside.txt'), 'utf8')).toBe('outside');
  });

  it('refuses a file that is not a tar archive', async () => {
    const archive = path.join(work, 'not.tar');
    await fs.writeFile(archive, Buffer.alloc(4096, 7));
    const error = await listArchive(archive).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'archive', path: archive });
  });
});
