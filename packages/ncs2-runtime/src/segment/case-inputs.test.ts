import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatasetError } from '@brats/io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseInputError } from '../errors.js';
import { caseRefFromFiles } from './case-files.js';
import { resolveCaseInputs } from './case-inputs.js';

describe('case inputs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-inputs-'));
    for (const name of ['scan4d.nii.gz', 'P1_flair.nii.gz', 'P1_t1.nii.gz', 'P1_t1ce.nii.gz', 'P1_t2.nii.gz']) await fs.writeFile(path.join(dir, name), '');
    await fs.mkdir(path.join(dir, 'empty'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('makes a Decathlon case of a 4D file and a BraTS case of four role files', async () => {
    expect(caseRefFromFiles('a', { scan: '/x/a.nii' })).toEqual({ id: 'a', layout: 'msd', images: ['/x/a.nii'], frames: [0, 1, 2, 3] });
    const at = (name: string) => path.join(dir, name);
    const refs = await resolveCaseInputs([at('scan4d.nii.gz'), `T2W=${at('P1_t2.nii.gz')}`, `flair=${at('P1_flair.nii.gz')}`, `t1w=${at('P1_t1.nii.gz')}`, `t1gd=${at('P1_t1ce.nii.gz')}`]);
    expect(refs).toEqual([
      { id: 'scan4d', layout: 'msd', images: [at('scan4d.nii.gz')], frames: [0, 1, 2, 3] },
      { id: 'P1', layout: 'brats2017', images: [at('P1_flair.nii.gz'), at('P1_t1.nii.gz'), at('P1_t1ce.nii.gz'), at('P1_t2.nii.gz')] },
    ]);
  });

  it('reads four files named as BraTS 2023+ names them as that layout (labels 1/2/3), and any others as BraTS 2017-2021', () => {
    const modern = { flair: '/d/C-00-t2f.nii.gz', t1w: '/d/C-00-t1n.nii.gz', t1gd: '/d/C-00-t1c.nii.gz', t2w: '/d/C-00-t2w.nii' };
    expect(caseRefFromFiles('C-00', modern).layout).toBe('brats2023');
    expect(caseRefFromFiles('C-00', { ...modern, t2w: '/d/C-00_t2.nii.gz' }).layout).toBe('brats2017');
    expect(caseRefFromFiles('x', { flair: 'a.nii', t1w: 'b.nii', t1gd: 'c.nii', t2w: 'd.nii' }).layout).toBe('brats2017');
  });

  it.each<[string, (at: (name: string) => string) => string[], string | ((at: (name: string) => string) => string)]>([
    ['a missing path', () => ['nowhere.nii.gz'], 'nowhere.nii.gz: no such file or folder'],
    ['a role file that does not exist', (at) => [`flair=${at('nowhere_flair.nii.gz')}`], (at) => `flair=${at('nowhere_flair.nii.gz')}: no such file`],
    ['a role given twice', (at) => [`flair=${at('P1_flair.nii.gz')}`, `FLAIR=${at('P1_t1.nii.gz')}`], 'flair=: is given twice'],
    ['missing roles', (at) => [`flair=${at('P1_flair.nii.gz')}`, `t1w=${at('P1_t1.nii.gz')}`], 'four modality files are needed; missing t1gd=, t2w='],
    ['nothing', () => [], 'no input: give a dataset folder, case folders, 4D NIfTI files or flair= t1w= t1gd= t2w= files'],
  ])('refuses %s with a CaseInputError', async (_name, inputs, message) => {
    const at = (name: string): string => path.join(dir, name);
    const error = await resolveCaseInputs(inputs(at)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CaseInputError);
    expect((error as CaseInputError).message).toBe(typeof message === 'string' ? message : message(at));
  });

  it('refuses a folder that holds no case with a DatasetError', async () => {
    await expect(resolveCaseInputs([path.join(dir, 'empty')])).rejects.toBeInstanceOf(DatasetError);
  });
});
