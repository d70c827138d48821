import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ArgumentError,
  DatasetError,
  ModelBundleError,
  NiftiFormatError,
  openDataset,
  readNifti,
  writePhantomDataset,
  type CaseRef,
} from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError, EngineUnavailableError, UnknownEngineError } from '../errors.js';
import { segmentCase } from '../segment/index.js';
import { brightFlairEngine, testManifest } from '../../test/segment-fixtures.js';
import {
  CohortEngineCache,
  JobAbortedError,
  classifyCohortError,
  cohortJobFingerprint,
  cohortJobId,
  completionRecordPath,
  createCohortJobs,
  decodeCohortResult,
  encodeCohortResult,
  parseCohortJob,
  runCohortInProcess,
  runCohortJob,
  type CohortJob,
  type ModelOpener,
} from './index.js';

const CROP: [number, number, number] = [16, 16, 8];

const MANIFEST = testManifest(CROP);

let dir: string;
let refs: CaseRef[];
const calls = { runs: 0, disposed: 0, opened: 0 };
const opener: ModelOpener = async () => {
  calls.opened++;
  return { manifest: MANIFEST, engine: brightFlairEngine(calls, (input, batch) => expect((input.length / 4) % batch).toBe(0)), reason: 'the test engine' };
};

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cohort-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'brats2018', cases: 4, size: [24, 24, 16], seed: 5 });
  refs = [...(await openDataset(path.join(dir, 'phantoms'))).cases];
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function jobsFor(out: string, extra: Partial<Parameters<typeof createCohortJobs>[1]> = {}): CohortJob[] {
  return createCohortJobs(refs, { bundle: path.join(dir, 'bundle'), out: path.join(dir, out), engine: 'fake', ...extra });
}

describe('cohort jobs', () => {
  it('describe each case once, with absolute paths and predict-style outputs', () => {
    const [job] = createCohortJobs([{ ...refs[0]!, images: refs[0]!.images.map((image) => path.relative(process.cwd(), image)) }], {
      bundle: 'bundle',
      out: 'predictions',
      probabilities: true,
      figures: true,
      tta: false,
    });
    expect(job!.case.images.every((image) => path.isAbsolute(image))).toBe(true);
    expect(job!.bundle).toBe(path.resolve('bundle'));
    expect(job!.engine).toBe('auto');
    expect(job!.tta).toBe(false);
    expect(job!.largestComponent).toBeUndefined();
    expect(job!.outputs).toEqual({
      labels: path.resolve('predictions', `${refs[0]!.id}.nii.gz`),
      probabilities: path.resolve('predictions'),
      figures: path.resolve('predictions', 'figures'),
    });
    expect(() => createCohortJobs([refs[0]!, refs[0]!], { bundle: 'b', out: 'o' })).toThrow(ArgumentError);
  });

  it('name a job by its case and output path only', () => {
    const [a] = jobsFor('out-a');
    const [sameOutput] = jobsFor('out-a', { tta: true, engine: 'onnxruntime', bundle: path.join(dir, 'other-bundle') });
    const [otherOutput] = jobsFor('out-b');
    expect(cohortJobId(a!)).toMatch(/^Phantom_001-[0-9a-f]{16}$/);
    expect(cohortJobId(sameOutput!)).toBe(cohortJobId(a!));
    expect(cohortJobId(otherOutput!)).not.toBe(cohortJobId(a!));
    // The fingerprint covers the whole description: another model or setting is other work.
    expect(cohortJobFingerprint(sameOutput!)).not.toBe(cohortJobFingerprint(a!));
    expect(cohortJobFingerprint(JSON.parse(JSON.stringify(a)) as CohortJob)).toBe(cohortJobFingerprint(a!));
    expect(cohortJobId({ ...a!, case: { ...a!.case, id: 'a b:c/d' } })).toMatch(/^a_b_c_d-[0-9a-f]{16}$/);
  });

  it.each([
    ['job', null],
    ['case.id', { case: { layout: 'brats2017', images: ['/x'] } }],
    ['case.images', { case: { id: 'a', layout: 'brats2017', images: [] } }],
    ['bundle', { case: { id: 'a', layout: 'brats2017', images: ['/x'] }, engine: 'auto', outputs: { labels: '/o/a.nii.gz' } }],
    ['outputs.labels', { case: { id: 'a', layout: 'brats2017', images: ['/x'] }, bundle: '/b', engine: 'auto', outputs: { labels: 'relative.nii.gz' } }],
    ['tta', { case: { id: 'a', layout: 'brats2017', images: ['/x'] }, bundle: '/b', engine: 'auto', tta: 'yes', outputs: { labels: '/o/a.nii.gz' } }],
  ])('parseCohortJob names the bad field %s', (field, value) => {
    expect(() => parseCohortJob(value)).toThrow(ArgumentError);
    expect(() => parseCohortJob(value)).toThrow(`'${field}'`);
  });

  it('parseCohortJob accepts a job read back from JSON', () => {
    const [job] = jobsFor('out-a', { probabilities: true });
    expect(parseCohortJob(JSON.parse(JSON.stringify(job)))).toEqual(job);
  });
});

describe('classifyCohortError', () => {
  it.each([
    ['input', new DatasetError('/x.nii.gz', 'truncated', 'case')],
    ['input', new NiftiFormatError('/x.nii.gz', 'bad magic')],
    ['input', new ArgumentError('segmentCase', 'manifest', 'does not fit')],
    ['environment', new ModelBundleError('/bundle', 'has no brats-model.json')],
    ['environment', new EngineUnavailableError('openvino', 'not installed', 'install it')],
    ['environment', new EngineError('onnxruntime', 'native failure')],
    ['environment', new UnknownEngineError('nope', ['auto'])],
    ['aborted', new JobAbortedError('job', 'shutting down')],
    ['unexpected', Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })],
    ['unexpected', 'a string'],
  ])('%s: %s', (kind, error) => {
    expect(classifyCohortError(error)).toBe(kind);
  });
});

describe('runCohortJob and the in-process runner', () => {
  it('write what segmentCase computes, open the model once and report each case', async () => {
    const engines = new CohortEngineCache(opener);
    const before = calls.opened;
    const ended: string[] = [];
    const jobs = jobsFor('in-process', { probabilities: true });
    const outcomes = await runCohortInProcess(jobs, { engines, concurrency: 2, onOutcome: (outcome, done, total) => ended.push(`${outcome.status} ${done}/${total}`) });
    expect(calls.opened - before).toBe(1);
    expect(ended).toEqual(['completed 1/4', 'completed 2/4', 'completed 3/4', 'completed 4/4']);
    expect(outcomes.map((outcome) => outcome.job.case.id)).toEqual(refs.map((ref) => ref.id));
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome.status !== 'completed') throw new Error(`case ${refs[index]!.id} failed`);
      const direct = await segmentCase(refs[index]!, MANIFEST, brightFlairEngine({ runs: 0, disposed: 0 }));
      const written = await readNifti(path.join(dir, 'in-process', `${refs[index]!.id}.nii.gz`));
      expect(written.dtype).toBe('uint8');
      expect(Array.from(written.data)).toEqual(Array.from(direct.labels.data));
      // A known answer: the phantom's bright oedema is found, so the mask is not empty, and it is scored.
      expect(direct.labels.data.reduce((sum, value) => sum + value, 0)).toBeGreaterThan(0);
      expect(outcome.result.evaluation?.regions.WT?.dice).toBeGreaterThan(0);
      expect(outcome.result.files).toEqual([path.join(dir, 'in-process', `${refs[index]!.id}.nii.gz`), path.join(dir, 'in-process', `${refs[index]!.id}_prob_WT.nii.gz`)]);
      expect(outcome.result.reused).toBe(false);
      expect(outcome.result.engine).toEqual({ name: 'fake', device: 'CPU', reason: 'the test engine' });
    }
    await engines.dispose();
    expect(engines.size).toBe(0);
  });

  it('fail a case with bad input alone and go on with the others', async () => {
    const broken = path.join(dir, 'broken');
    await fs.cp(path.join(dir, 'phantoms'), broken, { recursive: true });
    const brokenRefs = [...(await openDataset(broken)).cases];
    await fs.writeFile(brokenRefs[1]!.images[1]!, 'not a nifti');
    const jobs = createCohortJobs(brokenRefs, { bundle: path.join(dir, 'bundle'), out: path.join(dir, 'out-broken') });
    const outcomes = await runCohortInProcess(jobs, { engines: new CohortEngineCache(opener) });
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['completed', 'failed', 'completed', 'completed']);
    const failed = outcomes[1]!;
    if (failed.status !== 'failed') throw new Error('expected a failure');
    expect(failed.error).toBeInstanceOf(DatasetError);
    expect(failed.kind).toBe('input');
    await expect(fs.access(path.join(dir, 'out-broken', `${brokenRefs[1]!.id}.nii.gz`))).rejects.toThrow();
  });

  it('free the engines with releaseEngines once no job needs them, while the last one still writes, and not without', async () => {
    // The last case is broken: a job that fails before it segments counts as done with the engine too.
    const broken = path.join(dir, 'broken-last');
    await fs.cp(path.join(dir, 'phantoms'), broken, { recursive: true });
    const brokenRefs = [...(await openDataset(broken)).cases];
    await fs.writeFile(brokenRefs[3]!.images[0]!, 'not a nifti');
    for (const [releaseEngines, jobs] of [
      [true, jobsFor('out-release')],
      [false, jobsFor('out-keep')],
      [true, createCohortJobs(brokenRefs, { bundle: path.join(dir, 'bundle'), out: path.join(dir, 'out-release-broken') })],
    ] as const) {
      const events: string[] = [];
      const counts = { runs: 0, disposed: 0 };
      const logged: ModelOpener = async () => {
        const engine = brightFlairEngine(counts);
        return {
          manifest: MANIFEST,
          reason: 'the test engine',
          engine: {
            ...engine,
            run: (input: Float32Array, batch: number) => (events.push('run'), engine.run(input, batch)),
            // Slow to free: the caller's own dispose must wait for it.
            dispose: async () => {
              events.push('dispose');
              await new Promise((resolve) => setTimeout(resolve, 30));
              await engine.dispose();
            },
          },
        };
      };
      const engines = new CohortEngineCache(logged);
      const outcomes = await runCohortInProcess(jobs, { engines, concurrency: 2, releaseEngines, onOutcome: (outcome) => events.push(outcome.status) });
      expect(outcomes.filter((outcome) => outcome.status === 'completed').length).toBeGreaterThanOrEqual(3);
      if (!releaseEngines) {
        expect(counts.disposed).toBe(0);
        await engines.dispose();
      } else {
        // After the last engine run and before the last case ended (it still wrote its label map).
        expect(events.indexOf('dispose'), events.join(' ')).toBeGreaterThan(events.lastIndexOf('run'));
        expect(events.indexOf('dispose'), events.join(' ')).toBeLessThan(events.length - 1);
        // The caller's own dispose waits for that one and frees nothing twice.
        await engines.dispose();
      }
      expect(counts.disposed).toBe(1);
    }
  });

  it('stop at an unexpected error and throw it', async () => {
    let opened = 0;
    const failing: ModelOpener = async () => {
      opened++;
      throw new TypeError('the machine caught fire');
    };
    await expect(runCohortInProcess(jobsFor('out-fire'), { engines: new CohortEngineCache(failing) })).rejects.toThrow(TypeError);
    // A failed open is not cached: each job tried again until the first error stopped the run.
    expect(opened).toBe(1);
  });

  it('return the completion record of an earlier run of the same job instead of writing again', async () => {
    const [job] = jobsFor('records');
    const engines = new CohortEngineCache(opener);
    const first = await runCohortJob(job!, { engines, completionRecords: true });
    const record = completionRecordPath(job!.outputs.labels, cohortJobId(job!));
    expect(JSON.parse(await fs.readFile(record, 'utf8'))).toMatchObject({ jobId: cohortJobId(job!), fingerprint: cohortJobFingerprint(job!) });
    const written = await fs.stat(job!.outputs.labels);
    const runsBefore = calls.runs;
    const again = await runCohortJob(job!, { engines, completionRecords: true });
    expect(again.reused).toBe(true);
    expect({ ...again, reused: false }).toEqual(first);
    expect(calls.runs).toBe(runsBefore);
    expect((await fs.stat(job!.outputs.labels)).mtimeMs).toBe(written.mtimeMs);
    // Another description for the same output (here: flips on) is other work: it runs and writes.
    const flipped = await runCohortJob({ ...job!, tta: true }, { engines, completionRecords: true });
    expect(flipped.reused).toBe(false);
    expect(calls.runs).toBeGreaterThan(runsBefore);
    // A record whose outputs are gone is not trusted either.
    await fs.rm(job!.outputs.labels);
    expect((await runCohortJob({ ...job!, tta: true }, { engines, completionRecords: true })).reused).toBe(false);
  });

  it('read and preprocess the case while the model opens, when the cache can read the manifest ahead', async () => {
    const [job] = jobsFor('ahead');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const events: string[] = [];
    const gated: ModelOpener = async (request) => {
      await gate;
      events.push('engine open');
      return opener(request);
    };
    // The manifest read ahead tells when its preprocessing settings are used: that is the case being preprocessed.
    const watched = { ...MANIFEST };
    Object.defineProperty(watched, 'preprocessing', {
      get: () => {
        if (!events.includes('preprocessing')) events.push('preprocessing');
        return MANIFEST.preprocessing;
      },
    });
    const engines = new CohortEngineCache(gated, async () => watched);
    const reference = await runCohortJob({ ...job!, outputs: { labels: path.join(dir, 'ahead', 'reference.nii.gz') } }, { engines: new CohortEngineCache(opener) });
    const running = runCohortJob(job!, { engines });
    // The job goes as far as it can without the engine: its case is read and preprocessed, then it waits.
    let preprocessedBeforeOpen = false;
    for (let turn = 0; turn < 200 && !preprocessedBeforeOpen; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      preprocessedBeforeOpen = events.includes('preprocessing');
    }
    expect(preprocessedBeforeOpen).toBe(true);
    expect(events).toEqual(['preprocessing']);
    release();
    const result = await running;
    expect(events).toEqual(['preprocessing', 'engine open']);
    // The same label map as the job that waited for its model first.
    expect(Array.from((await readNifti(job!.outputs.labels)).data)).toEqual(Array.from((await readNifti(path.join(dir, 'ahead', 'reference.nii.gz'))).data));
    expect(result.volumesMl).toEqual(reference.volumesMl);
    await engines.dispose();
  });

  it('fail a job whose model cannot open with the model\'s error, even when its case cannot be read either', async () => {
    const broken = path.join(dir, 'broken-both');
    await fs.cp(path.join(dir, 'phantoms'), broken, { recursive: true });
    const brokenRefs = [...(await openDataset(broken)).cases];
    await fs.writeFile(brokenRefs[0]!.images[0]!, 'not a nifti');
    const [job] = createCohortJobs(brokenRefs.slice(0, 1), { bundle: path.join(dir, 'bundle'), out: path.join(dir, 'out-broken-both') });
    const failing: ModelOpener = async (request) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new ModelBundleError(request.bundle, 'has no brats-model.json');
    };
    await expect(runCohortJob(job!, { engines: new CohortEngineCache(failing, async () => MANIFEST) })).rejects.toThrow(ModelBundleError);
    // With the model there, the same case fails with the case's error.
    await expect(runCohortJob(job!, { engines: new CohortEngineCache(opener, async () => MANIFEST) })).rejects.toThrow(DatasetError);
  });

  it('stop an aborted job before it writes anything', async () => {
    const [job] = jobsFor('aborted');
    const controller = new AbortController();
    controller.abort(new Error('the worker is shutting down'));
    await expect(runCohortJob(job!, { engines: new CohortEngineCache(opener), signal: controller.signal })).rejects.toThrow(JobAbortedError);
    await expect(fs.access(job!.outputs.labels)).rejects.toThrow();
  });

  it('keep non-finite metrics through JSON', () => {
    const result = {
      jobId: 'j',
      caseId: 'c',
      evaluation: { convention: 'monai', regions: { WT: { dice: Number.NaN, hd95: Number.POSITIVE_INFINITY, assd: 1.5, referenceEmpty: true } } },
    } as unknown as Parameters<typeof encodeCohortResult>[0];
    const decoded = decodeCohortResult(JSON.parse(JSON.stringify(encodeCohortResult(result))));
    expect(decoded.evaluation!.regions.WT!.dice).toBeNaN();
    expect(decoded.evaluation!.regions.WT!.hd95).toBe(Number.POSITIVE_INFINITY);
    expect(decoded.evaluation!.regions.WT!.assd).toBe(1.5);
    expect(decoded.evaluation!.regions.WT!.referenceEmpty).toBe(true);
  });

  it('read a result recorded before results carried notices as one with none, and keep the notices of a newer one', () => {
    const older = { jobId: 'j', caseId: 'c', reasons: ['tta off (the default)'] };
    expect(decodeCohortResult(JSON.parse(JSON.stringify(older))).notices).toEqual([]);
    const newer = { ...older, notices: ['predicted tumour reached the i-low face(s)'] } as unknown as Parameters<typeof encodeCohortResult>[0];
    expect(decodeCohortResult(JSON.parse(JSON.stringify(encodeCohortResult(newer)))).notices).toEqual(['predicted tumour reached the i-low face(s)']);
  });
});
