import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ArgumentError } from '../errors.js';
import { loadCase, openDataset } from '../layouts/dataset.js';
import { readNifti } from '../nifti/read.js';
import { DECATHLON_TASKS, fetchDecathlonTask } from './decathlon.js';
import { FetchError } from './errors.js';
import { buildTar, makeTinyDecathlonTar, md5Of, startTestServer, type TestServer } from './fixtures.js';

let fixtureDir: string;
let tarBytes: Buffer;
let work: string;
let server: TestServer | undefined;

beforeAll(async () => {
  fixtureDir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-decathlon-fixture-'));
  tarBytes = await makeTinyDecathlonTar(fixtureDir);
});

afterAll(async () => {
  await fs.rm(fixtureDir, { recursive: true, force: true });
});

beforeEach(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-decathlon-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await fs.rm(work, { recursive: true, force: true });
});

describe('fetchDecathlonTask', () => {
  it('knows Task01 with the MONAI mirror, MD5 and size', () => {
    expect(DECATHLON_TASKS.Task01_BrainTumour).toEqual({
      task: 'Task01_BrainTumour',
      url: 'https://msd-for-monai.s3-us-west-2.amazonaws.com/Task01_BrainTumour.tar',
      md5: '240a19d752f0d9e9101544901065d872',
      bytes: 7_608_266_240,
    });
  });

  it('downloads, extracts and opens a tiny Task01 whose voxels read back unchanged', async () => {
    server = await startTestServer({ '/x.tar': { kind: 'file', body: tarBytes } });
    const dir = path.join(work, 'data');
    const phases = new Set<string>();
    const result = await fetchDecathlonTask({
      dir,
      url: server.url('/x.tar'),
      md5: md5Of(tarBytes),
      onProgress: (event) => phases.add(event.phase),
    });
    expect(result.datasetDir).toBe(path.join(dir, 'Task01_BrainTumour'));
    expect(result).toMatchObject({ downloaded: true, archive: undefined, md5: md5Of(tarBytes), resumedFrom: 0 });
    expect([...phases].sort()).toEqual(['download', 'extract']);
    // Only the dataset is left: the tar, the partial file and the staging folder are gone.
    expect(await fs.readdir(dir)).toEqual(['Task01_BrainTumour']);
    const dataset = await openDataset(path.join(dir, 'Task01_BrainTumour'));
    expect(dataset.layout).toBe('msd');
    expect(dataset.cases.map((c) => [c.id, c.label !== undefined])).toEqual([
      ['BRATS_001', true],
      ['BRATS_485', false],
    ]);
    const source = await readNifti(path.join(fixtureDir, 'tar-source/Task01_BrainTumour/imagesTr/BRATS_001.nii.gz'));
    const extracted = await readNifti(path.join(dir, 'Task01_BrainTumour/imagesTr/BRATS_001.nii.gz'));
    expect(extracted.shape).toEqual([8, 8, 4, 4]);
    expect(Array.from(extracted.data)).toEqual(Array.from(source.data));
    const loaded = await loadCase(dataset.cases[0]!);
    expect(loaded.labels?.shape).toEqual([8, 8, 4]);
    expect(Array.from(loaded.labels!.data.subarray(0, 6))).toEqual([0, 1, 2, 3, 0, 1]);
  });

  it('keeps the tar with keepArchive, and a second call finds the dataset in place without a request', async () => {
    server = await startTestServer({ '/x.tar': { kind: 'file', body: tarBytes } });
    const dir = path.join(work, 'data');
    const first = await fetchDecathlonTask({ dir, url: server.url('/x.tar'), md5: md5Of(tarBytes), keepArchive: true });
    expect(first.archive).toBe(path.join(dir, 'Task01_BrainTumour.tar'));
    expect(md5Of(await fs.readFile(first.archive!))).toBe(md5Of(tarBytes));
    const notices: string[] = [];
    const second = await fetchDecathlonTask({ dir, url: server.url('/x.tar'), md5: md5Of(tarBytes), onNotice: (line) => notices.push(line) });
    expect(second.downloaded).toBe(false);
    expect(second.dataset.cases).toHaveLength(2);
    expect(server.requests).toHaveLength(1);
    expect(notices[0]).toContain('already in place');
  });

  it('refuses an archive with a ../ entry: nothing written outside, no dataset folder, no staging left', async () => {
    const evil = buildTar([
      { path: 'Task01_BrainTumour/dataset.json', body: '{}' },
      { path: '../evil.txt', body: 'evil' },
    ]);
    server = await startTestServer({ '/x.tar': { kind: 'file', body: evil } });
    const dir = path.join(work, 'data');
    const error = await fetchDecathlonTask({ dir, url: server.url('/x.tar'), md5: md5Of(evil) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'unsafe-entry', entry: '../evil.txt' });
    expect(await fs.readdir(work)).toEqual(['data']);
    // The verified tar stays for inspection; no dataset, no staging folder.
    expect(await fs.readdir(dir)).toEqual(['Task01_BrainTumour.tar']);
  });

  it('refuses an archive without Task01_BrainTumour/dataset.json and cleans the staging folder', async () => {
    const wrong = buildTar([{ path: 'Task02_Heart/dataset.json', body: '{}' }]);
    server = await startTestServer({ '/x.tar': { kind: 'file', body: wrong } });
    const dir = path.join(work, 'data');
    const error = await fetchDecathlonTask({ dir, url: server.url('/x.tar'), md5: md5Of(wrong) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'archive' });
    expect((error as FetchError).message).toContain('Task02_Heart');
    expect(await fs.readdir(dir)).toEqual(['Task01_BrainTumour.tar']);
  });

  it('refuses an existing dataset folder that openDataset cannot read', async () => {
    const dir = path.join(work, 'data');
    await fs.mkdir(path.join(dir, 'Task01_BrainTumour'), { recursive: true });
    const error = await fetchDecathlonTask({ dir, url: 'http://127.0.0.1:9/never.tar' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FetchError);
    expect(error).toMatchObject({ failure: 'exists', path: path.join(dir, 'Task01_BrainTumour') });
  });

  it('rejects an unknown task, listing the known ones', async () => {
    const error = await fetchDecathlonTask({ dir: work, task: 'Task02_Heart' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as ArgumentError).message).toContain('known tasks: Task01_BrainTumour');
  });
});
