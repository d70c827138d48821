// HD95 and lesion-wise timing on full BraTS-size (240x240x155) mask pairs, against the built package (dist/). Wall time and
// process CPU time are both printed: on a shared machine the CPU time is the steadier number.
// Run: pnpm --filter @brats/metrics build && pnpm --filter @brats/metrics bench
//   (or `pnpm turbo run bench --filter @brats/metrics`, which builds first). Options: --repeat N (default 5).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist', 'index.js');
if (!existsSync(dist)) {
  console.error(`metrics-bench: ${dist} is missing; build first: pnpm --filter @brats/metrics build`);
  process.exit(1);
}
const { computeHd95, computeLesionWise, computeSurfaceMetrics, evaluateCase, regionMask, BRATS2017_LABELS, DEFAULT_LESION_WISE } = await import(dist);
const { referencePython, runPythonJson, sharedDataDir } = await import('@brats/vitest-config/fixtures');

const repeatIndex = process.argv.indexOf('--repeat');
const repeat = repeatIndex > 0 ? Number(process.argv[repeatIndex + 1]) : 5;
const shape = [240, 240, 155];
const spacing = [1, 1, 1];
const [ni, nj, nk] = shape;

function ellipsoid(center, radius) {
  const mask = new Uint8Array(ni * nj * nk);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        const x = (i - center[0]) / radius[0];
        const y = (j - center[1]) / radius[1];
        const z = (k - center[2]) / radius[2];
        if (x * x + y * y + z * z <= 1) mask[i + ni * (j + nj * k)] = 1;
      }
  return mask;
}

function shift(mask, by) {
  const out = new Uint8Array(mask.length);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        if (!mask[i + ni * (j + nj * k)]) continue;
        const a = i + by[0];
        const b = j + by[1];
        const c = k + by[2];
        if (a >= 0 && a < ni && b >= 0 && b < nj && c >= 0 && c < nk) out[a + ni * (b + nj * c)] = 1;
      }
  return out;
}

// This package depends on no NIfTI reader, so the bench reads the sample's label map itself: a little-endian
// NIfTI-1 uint8 file, the form of the shared BraTS samples.
function readLabelMap(file) {
  const bytes = gunzipSync(readFileSync(file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getInt32(0, true) !== 348 || view.getInt16(70, true) !== 2) throw new Error(`${file}: not a little-endian NIfTI-1 uint8 file`);
  const dims = [view.getInt16(42, true), view.getInt16(44, true), view.getInt16(46, true)];
  if (dims.some((n, axis) => n !== shape[axis])) throw new Error(`${file}: shape [${dims.join(', ')}], expected [${shape.join(', ')}]`);
  const offset = Math.floor(view.getFloat32(108, true));
  return new Uint8Array(bytes.buffer, bytes.byteOffset + offset, ni * nj * nk).slice();
}

function time(label, run) {
  run(); // warm-up: JIT and allocation
  const times = [];
  const cpuTimes = [];
  let value;
  for (let r = 0; r < repeat; r++) {
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    value = run();
    const cpu = process.cpuUsage(cpuStart);
    cpuTimes.push((cpu.user + cpu.system) / 1e3);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const median = (list) => list.sort((a, b) => a - b)[list.length >> 1];
  const wall = median(times);
  console.log(
    `${label}\n    wall median ${wall.toFixed(1)} ms (min ${times[0].toFixed(1)}, max ${times.at(-1).toFixed(1)}), ` +
      `CPU median ${median(cpuTimes).toFixed(1)} ms  →  ${value}`,
  );
}

const pairs = [];
pairs.push({
  name: 'tumour-size ellipsoids (r 30x25x20 vs 28x27x18, offset 3 mm)',
  prediction: ellipsoid([123, 118, 78], [28, 27, 18]),
  reference: ellipsoid([120, 120, 77], [30, 25, 20]),
});
pairs.push({
  name: 'brain-size ellipsoids (r 100x110x70, box ≈ whole volume)',
  prediction: ellipsoid([121, 118, 78], [98, 112, 69]),
  reference: ellipsoid([119, 120, 77], [100, 110, 70]),
});
const data = sharedDataDir();
let caseLabels;
if (data) {
  const caseId = 'Brats18_CBICA_AQN_1';
  caseLabels = readLabelMap(path.join(data, 'brats2018-sample', caseId, `${caseId}_seg.nii.gz`));
  const wt = regionMask(caseLabels, BRATS2017_LABELS, 'WT');
  pairs.push({ name: `real WT (${caseId}) vs itself shifted (3,-2,1)`, prediction: shift(wt, [3, -2, 1]), reference: wt });
} else {
  console.log('(real BraTS pair skipped: ../shared/data is not present)');
}

console.log(`@brats/metrics bench, ${shape.join('x')} masks, ${repeat} runs each, node ${process.version}`);
for (const pair of pairs) {
  time(`HD95      ${pair.name}`, () => computeHd95(pair.prediction, pair.reference, { shape, spacing }).toFixed(3) + ' mm');
  time(`HD95 aniso [0.9,1.1,2.5] ${pair.name}`, () =>
    computeHd95(pair.prediction, pair.reference, { shape, spacing: [0.9, 1.1, 2.5] }).toFixed(3) + ' mm',
  );
  time(`all three ${pair.name}`, () => {
    const m = computeSurfaceMetrics(pair.prediction, pair.reference, { shape, spacing });
    return `hd95 ${m.hd95.toFixed(3)} hd ${m.hausdorff.toFixed(3)} assd ${m.assd.toFixed(3)}`;
  });
}
if (caseLabels) {
  const shifted = new Uint8Array(caseLabels.length);
  for (let k = 0; k < nk; k++)
    for (let j = 0; j < nj; j++)
      for (let i = 0; i < ni; i++) {
        const a = i + 2;
        if (a < ni) shifted[a + ni * (j + nj * k)] = caseLabels[i + ni * (j + nj * k)];
      }
  time('evaluateCase WT/TC/ET, real labels vs shifted by 2 voxels', () => {
    const result = evaluateCase({
      prediction: shifted,
      predictionMapping: BRATS2017_LABELS,
      reference: caseLabels,
      referenceMapping: BRATS2017_LABELS,
      shape,
      spacing,
    });
    return `WT dice ${result.regions.WT.dice.toFixed(4)} hd95 ${result.regions.WT.hd95.toFixed(3)}`;
  });
}

// Lesion-wise scores (BraTS-GLI) of a real enhancing tumour against itself moved by a voxel with 12 stray specks, beside
// the official scorer's steps in scipy on the same pair, timed inside the Python process (its start-up left out).
if (caseLabels) {
  const et = regionMask(caseLabels, BRATS2017_LABELS, 'ET');
  const prediction = shift(et, [1, 0, 0]);
  for (let speck = 0; speck < 12; speck++) {
    const [i0, j0, k0] = [60 + ((speck * 37) % 120), 60 + ((speck * 53) % 120), 30 + ((speck * 29) % 90)];
    for (let k = k0; k < k0 + 2; k++) for (let j = j0; j < j0 + 2; j++) for (let i = i0; i < i0 + 2; i++) prediction[i + ni * (j + nj * k)] = 1;
  }
  let ours;
  time('lesion-wise ET (BraTS-GLI), real ET vs moved by a voxel + 12 specks', () => {
    ours = computeLesionWise(prediction, et, { shape, spacing });
    return `Dice ${ours.dice.toFixed(4)}, HD95 ${ours.hd95.toFixed(2)} mm, TP/FP/FN ${ours.truePositives}/${ours.falsePositives}/${ours.falseNegatives}`;
  });
  const python = referencePython(['scipy', 'numpy']);
  if (python === undefined) {
    console.log('(the scipy reference is skipped: /usr/bin/python3 with scipy and numpy is not available)');
  } else {
    const scratch = mkdtempSync(path.join(os.tmpdir(), 'brats-lesion-bench-'));
    try {
      writeFileSync(path.join(scratch, 'p.raw'), prediction);
      writeFileSync(path.join(scratch, 'r.raw'), et);
      const script = readFileSync(path.join(here, '..', 'test', 'official_lesion_wise.py'), 'utf8');
      const { dilation, minimumVolumeMm3, penaltyMm } = DEFAULT_LESION_WISE;
      const theirs = runPythonJson(python, script, [
        path.join(scratch, 'p.raw'), path.join(scratch, 'r.raw'), JSON.stringify(shape), JSON.stringify(spacing),
        String(dilation), String(minimumVolumeMm3), String(penaltyMm), String(repeat),
      ]);
      const start = process.hrtime.bigint();
      for (let r = 0; r < repeat; r++) computeLesionWise(prediction, et, { shape, spacing });
      const oursSeconds = Number(process.hrtime.bigint() - start) / 1e9 / repeat;
      console.log(
        `lesion-wise, the official scorer's steps in scipy (${theirs.secondsMedian.toFixed(3)} s, median of ${repeat}) → Dice ${theirs.dice.toFixed(4)}, ` +
          `HD95 ${theirs.hd95.toFixed(2)} mm, TP/FP/FN ${theirs.truePositives}/${theirs.falsePositives}/${theirs.falseNegatives}\n` +
          `    @brats/metrics ${oursSeconds.toFixed(3)} s mean: ${(theirs.secondsMedian / oursSeconds).toFixed(1)}x faster; ` +
          `same Dice ${Math.abs(theirs.dice - ours.dice) < 1e-12}, same counts ${theirs.falsePositives === ours.falsePositives && theirs.truePositives === ours.truePositives}`,
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
}

// Many lesions: 3000 single voxels scattered over the volume in both masks (1821 lesions once those within the
// dilation merge). Each lesion is measured in its own box, so the time grows with the lesions' size, not their count
// times the volume's.
{
  const reference = new Uint8Array(ni * nj * nk);
  let state = 7;
  for (let speck = 0; speck < 3000; speck++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    reference[Math.floor((state / 2147483648) * reference.length)] = 1;
  }
  time('lesion-wise, 3000 scattered single-voxel lesions found exactly', () => {
    const result = computeLesionWise(reference, reference, { shape, spacing });
    return `${result.lesions.length} lesions, Dice ${result.dice}`;
  });
}
