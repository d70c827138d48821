import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referencePython, runPythonJson } from '@brats/vitest-config/fixtures';
import { BRATS2017_LABELS, BRATS2023_LABELS, MSD_LABELS, convertLabels, deriveCaseSeed, generatePhantom, phantomAffine } from '@brats/io';
import { runCaptured } from '../../test/run-captured.js';

const python = referencePython(['nibabel', 'numpy']);

/** nibabel's view of every .nii.gz under a folder: shape, dtype, affine, distinct values of uint8 maps. */
const READ_FOLDER = `
import json, os, sys
import nibabel as nib, numpy as np
root = sys.argv[1]
out = {}
for folder, _, names in os.walk(root):
    for name in names:
        if name.endswith('.nii.gz'):
            image = nib.load(os.path.join(folder, name))
            data = np.asanyarray(image.dataobj)
            entry = {'shape': list(data.shape), 'dtype': str(data.dtype), 'affine': image.affine.tolist()}
            if data.dtype == np.uint8:
                entry['values'] = sorted(int(v) for v in np.unique(data))
                entry['counts'] = [int((data == v).sum()) for v in range(5)]
            out[os.path.relpath(os.path.join(folder, name), root).replace(os.sep, '/')] = entry
print(json.dumps(out))
`;

interface NibabelEntry {
  shape: number[];
  dtype: string;
  affine: number[][];
  values?: number[];
  counts?: number[];
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-synth-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const SIZE = [48, 48, 32] as const;
const SEED = 3;
const AFFINE = phantomAffine(SIZE, [1, 1, 1]).map((row) => [...row]);

/** Label counts 0..4 of case `index` as the layout stores them. */
function expectedCounts(index: number, layout: 'msd' | 'brats2018' | 'brats2023'): number[] {
  const labels = generatePhantom({ seed: deriveCaseSeed(SEED, index), size: SIZE }).labels.data;
  const mapping = layout === 'msd' ? MSD_LABELS : layout === 'brats2023' ? BRATS2023_LABELS : BRATS2017_LABELS;
  const converted = convertLabels(labels, BRATS2017_LABELS, mapping);
  const counts = [0, 0, 0, 0, 0];
  for (const value of converted) counts[value]!++;
  return counts;
}

describe('brats synth', () => {
  it.each([
    ['msd', ['imagesTr/PHANTOM_001.nii.gz', 'imagesTr/PHANTOM_002.nii.gz'], ['labelsTr/PHANTOM_001.nii.gz', 'labelsTr/PHANTOM_002.nii.gz'], [0, 1, 2, 3]],
    [
      'brats2018',
      ['Phantom_001/Phantom_001_flair.nii.gz', 'Phantom_001/Phantom_001_t1.nii.gz', 'Phantom_001/Phantom_001_t1ce.nii.gz', 'Phantom_002/Phantom_002_t2.nii.gz'],
      ['Phantom_001/Phantom_001_seg.nii.gz', 'Phantom_002/Phantom_002_seg.nii.gz'],
      [0, 1, 2, 4],
    ],
    [
      'brats2023',
      ['BraTS-PHA-00001-000/BraTS-PHA-00001-000-t2f.nii.gz', 'BraTS-PHA-00002-000/BraTS-PHA-00002-000-t1c.nii.gz'],
      ['BraTS-PHA-00001-000/BraTS-PHA-00001-000-seg.nii.gz', 'BraTS-PHA-00002-000/BraTS-PHA-00002-000-seg.nii.gz'],
      [0, 1, 2, 3],
    ],
  ] as const)('%s: exits 0, says where the data went, and nibabel reads what was written', async (layout, images, labels, values) => {
    const out = path.join(dir, layout);
    const { code, stdout, stderr } = await runCaptured([
      'synth', '--out', out, '--layout', layout, '--cases', '2', '--size', SIZE.join(','), '--seed', String(SEED),
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain(`wrote 2 phantom cases (${layout}, 48x48x32 voxels, seed ${SEED}, with labels) to ${out}`);
    expect(stderr).toContain('synth: 2/2 cases');
    if (python === undefined) return; // the nibabel half needs the Debian python (nibabel, numpy)
    const files = runPythonJson<Record<string, NibabelEntry>>(python, READ_FOLDER, [out]);
    expect(Object.keys(files)).toHaveLength(layout === 'msd' ? 4 : 10);
    for (const image of images) {
      const entry = files[image]!;
      expect(entry.shape).toEqual(layout === 'msd' ? [48, 48, 32, 4] : [48, 48, 32]);
      expect(entry.dtype).toBe(layout === 'msd' ? 'float32' : 'int16');
      expect(entry.affine).toEqual(AFFINE);
    }
    for (const [index, label] of labels.entries()) {
      const entry = files[label]!;
      expect(entry.shape).toEqual([48, 48, 32]);
      expect(entry.dtype).toBe('uint8');
      expect(entry.affine).toEqual(AFFINE);
      expect(entry.values).toEqual(values);
      expect(entry.counts).toEqual(expectedCounts(index, layout));
    }
  });

  it('writes a raw-looking head with --skull, which inspect warns of as not skull-stripped', async () => {
    // The default grid (240 x 240 x 155 mm, 8.9 L): with its skull and background noise every FLAIR voxel is non-zero.
    const out = path.join(dir, 'skull');
    const synth = await runCaptured(['synth', '--out', out, '--layout', 'brats2018', '--cases', '1', '--skull']);
    expect(synth.code).toBe(0);
    const { code, stdout } = await runCaptured(['inspect', out, '--json']);
    expect(code).toBe(0);
    const flair = path.join(out, 'Phantom_001', 'Phantom_001_flair.nii.gz');
    expect(JSON.parse(stdout).warnings).toEqual([
      `case Phantom_001: ${flair}: FLAIR is non-zero over 8.9 L, more than any skull-stripped brain (BraTS brains are 1.2 to 1.8 L, on a background of zeros): ` +
        'the scan may still have its skull, or a background that is not 0. Models learn skull-stripped brains: strip the skull first (e.g. with HD-BET or SynthStrip), or expect wrong label maps',
    ]);
  });

  it('writes an unlabelled set with --no-labels', async () => {
    const out = path.join(dir, 'unlabelled');
    const { code, stdout } = await runCaptured(['synth', '--out', out, '--layout', 'brats2023', '--cases', '1', '--size', '32x32x24', '--no-labels']);
    expect(code).toBe(0);
    expect(stdout).toContain('without labels');
    expect((await fs.readdir(path.join(out, 'BraTS-PHA-00001-000'))).sort()).toEqual([
      'BraTS-PHA-00001-000-t1c.nii.gz', 'BraTS-PHA-00001-000-t1n.nii.gz', 'BraTS-PHA-00001-000-t2f.nii.gz', 'BraTS-PHA-00001-000-t2w.nii.gz',
    ]);
  });

  it.each([
    [['--size', '48,48'], "error: --size: expected three integers X,Y,Z (e.g. 240,240,155), got '48,48'"],
    [['--size', '48,48,8'], "error: --size must be an integer in [16, 1024], got '8'"],
    [['--size', '48,4a,32'], "error: --size must be an integer in [16, 1024], got '4a'"],
    [['--cases', '0'], "error: --cases must be an integer in [1, 100000], got '0'"],
    [['--seed', '-2'], "error: --seed must be an integer in [0, 9007199254740991], got '-2'"],
    [['--layout', 'nnunet'], "error: --layout: 'nnunet' is unknown; known: msd, brats2018, brats2023, brats2017"],
  ])('exits 1 with one line for %j and writes nothing', async (argv, line) => {
    const out = path.join(dir, 'rejected');
    const { code, stderr } = await runCaptured(['synth', '--out', out, ...argv]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([line]);
    await expect(fs.stat(out)).rejects.toThrow();
  });

  it('exits 1 without --out', async () => {
    const { code, stderr } = await runCaptured(['synth', '--cases', '1']);
    expect(code).toBe(1);
    expect(stderr).toContain("required option '--out <dir>' not specified");
  });
});
