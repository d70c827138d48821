// A regions model's label maps in the input's convention, read back by an independent reader (nibabel): the
// runtime's hand-made regions model segments a case of nested boxes into exactly known oedema, core and
// enhancing voxels, and `brats infer` writes them as BraTS 2017-2021 (1/2/4) or BraTS 2023+ (1/2/3) labels
// according to the names of the four files.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NESTED_BOX_VOXELS, writeNestedBoxCase, writeRegionsPointwiseBundle } from '../../../../packages/ncs2-runtime/test/regions-fixture.js';
import { runCaptured } from '../../test/run-captured.js';

const python = referencePython(['nibabel', 'numpy']);
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-regions-'));
  await writeRegionsPointwiseBundle(path.join(dir, 'bundle'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const READ_LABELS = `
import json, sys
import nibabel as nib, numpy as np
image = nib.load(sys.argv[1])
data = np.asanyarray(image.dataobj)
values, counts = np.unique(data, return_counts=True)
print(json.dumps({"dtype": str(data.dtype), "shape": list(data.shape), "counts": {str(int(v)): int(c) for v, c in zip(values, counts)}}))
`;

describe.skipIf(!python)(`a regions model's labels in the input's convention${python ? '' : ' (skipped: python3 with nibabel is needed: apt-get install python3-nibabel)'}`, () => {
  it.each([
    ['brats2017', { core: 1, oedema: 2, enhancing: 4 }, 'labels BraTS 2017-2021 1 core / 2 oedema / 4 enhancing'],
    ['brats2023', { core: 1, oedema: 2, enhancing: 3 }, 'labels BraTS 2023+'],
  ] as const)('%s names: nibabel reads the nested regions with their labels', async (naming, values, convention) => {
    const files = await writeNestedBoxCase(path.join(dir, naming), naming);
    const out = path.join(dir, `out-${naming}`);
    const run = await runCaptured(['infer', `flair=${files.flair}`, `t1w=${files.t1w}`, `t1gd=${files.t1gd}`, `t2w=${files.t2w}`, '--model', path.join(dir, 'bundle'), '--engine', 'onnxruntime', '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const id = naming === 'brats2017' ? 'Boxes_001' : 'Boxes-001';
    const labels = runPythonJson<{ dtype: string; shape: number[]; counts: Record<string, number> }>(python!, READ_LABELS, [path.join(out, `${id}.nii.gz`)]);
    expect(labels.dtype).toBe('uint8');
    expect(labels.shape).toEqual([48, 48, 32]);
    // Nesting: enhancing inside core inside the whole tumour, each region exactly its box.
    expect(labels.counts).toEqual({
      '0': 48 * 48 * 32 - NESTED_BOX_VOXELS.WT,
      [String(values.oedema)]: NESTED_BOX_VOXELS.WT - NESTED_BOX_VOXELS.TC,
      [String(values.core)]: NESTED_BOX_VOXELS.TC - NESTED_BOX_VOXELS.ET,
      [String(values.enhancing)]: NESTED_BOX_VOXELS.ET,
    });
    const predictions = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8')) as { labels: string; regions: string[]; cases: { reasons: string[] }[] };
    expect(predictions.labels).toBe(naming);
    expect(predictions.regions).toEqual(['WT', 'TC', 'ET']);
    expect(predictions.cases[0]!.reasons.at(-1)).toContain(convention);
  });
});
