// `brats export --precision int8` and `--precision int8` at inference: the shipped whole-tumour model, given a split
// of phantoms (two to calibrate, two to check), is quantised to a QDQ graph that an independent reader (Python's
// onnx) sees as int8 weights behind DequantizeLinear; its recorded validation Dice is what its label maps score;
// `brats infer --precision int8` runs it and says what it costs. With the real cases, the shipped model's INT8
// variant stays within 0.005 of its FP32 validation Dice.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, readNifti, writePhantomDataset } from '@brats/io';
import { NO_SHARED_DATA, referencePython, repositoryRoot, runPythonJson, sharedDataDir } from '@brats/vitest-config/fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INT8_DICE_TOLERANCE } from '../quantize.js';
import { runCaptured } from '../../test/run-captured.js';
import { wholeTumourDice } from '../../test/whole-tumour-dice.js';

const SHIPPED = path.join(repositoryRoot, 'models', 'brats2018-wt-unet');
const data = sharedDataDir();
const python = referencePython(['onnx', 'numpy']);
let dir: string;
let bundle: string;
let phantoms: string;

/** A copy of the shipped bundle (manifest and model.onnx) whose split names the phantoms. */
async function copyBundle(target: string, split: { train: string[]; validation: string[] }): Promise<void> {
  await fs.mkdir(target, { recursive: true });
  await fs.copyFile(path.join(SHIPPED, 'model.onnx'), path.join(target, 'model.onnx'));
  const manifest = JSON.parse(await fs.readFile(path.join(SHIPPED, 'brats-model.json'), 'utf8'));
  manifest.training.split = { ...manifest.training.split, ...split, testing: [] };
  // FP32 only: the shipped bundle's own INT8 model is not copied, nor its record.
  delete manifest.files.tfjs;
  delete manifest.files.onnxInt8;
  delete manifest.quantization;
  await fs.writeFile(path.join(target, 'brats-model.json'), JSON.stringify(manifest, null, 2));
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-int8-'));
  phantoms = path.join(dir, 'phantoms');
  await writePhantomDataset(phantoms, { layout: 'msd', cases: 4, size: [176, 176, 120], seed: 11 });
  bundle = path.join(dir, 'bundle');
  await copyBundle(bundle, { train: ['PHANTOM_001', 'PHANTOM_002'], validation: ['PHANTOM_003', 'PHANTOM_004'] });
}, 120_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const READ_QDQ = `
import json, sys
import onnx
from onnx import numpy_helper
model = onnx.load(sys.argv[1])
inits = {t.name: t for t in model.graph.initializer}
ops = [n.op_type for n in model.graph.node]
convs = [n for n in model.graph.node if n.op_type == "Conv"]
producers = {o: n for n in model.graph.node for o in n.output}
weights = []
for conv in convs:
    dq = producers[conv.input[1]]
    w = numpy_helper.to_array(inits[dq.input[0]])
    weights.append({"op": dq.op_type, "dtype": str(w.dtype), "max": int(abs(w).max()), "input": producers[conv.input[0]].op_type})
onnx.checker.check_model(model)
print(json.dumps({"ops": {op: ops.count(op) for op in set(ops)}, "weights": weights, "floatWeights": [n for n, t in inits.items() if t.data_type == 1 and len(t.dims) == 4]}))
`;

describe('INT8: brats export --precision int8, then --precision int8 at inference', () => {
  it('refuses what it cannot do with one line: no --data, a bundle without the INT8 model', async () => {
    const noData = await runCaptured(['export', bundle, '--precision', 'int8']);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toContain('--precision int8 needs --data DATASET');
    const original = path.join(dir, 'original');
    await copyBundle(original, { train: ['PHANTOM_001'], validation: ['PHANTOM_003'] });
    const missing = await runCaptured(['infer', '--model', original, path.join(phantoms, 'imagesTr', 'PHANTOM_003.nii.gz'), '--out', path.join(dir, 'none'), '--precision', 'int8']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`has no INT8 model (files.onnxInt8 in brats-model.json); make it with \`brats export ${original} --precision int8 --data DATASET\``);
    // A manifest that lists an INT8 model its folder lost names the file and how to write it again.
    const lost = path.join(dir, 'lost');
    await copyBundle(lost, { train: ['PHANTOM_001'], validation: ['PHANTOM_003'] });
    const lostManifest = JSON.parse(await fs.readFile(path.join(lost, 'brats-model.json'), 'utf8'));
    await fs.writeFile(path.join(lost, 'brats-model.json'), JSON.stringify({ ...lostManifest, files: { ...lostManifest.files, onnxInt8: 'model-int8.onnx' } }));
    const gone = await runCaptured(['infer', '--model', lost, path.join(phantoms, 'imagesTr', 'PHANTOM_003.nii.gz'), '--out', path.join(dir, 'none'), '--precision', 'int8']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain(`brats-model.json lists the INT8 model model-int8.onnx, which is missing; write it again with \`brats export ${lost} --precision int8 --data DATASET\``);
    const tfjs = await runCaptured(['predict', '--model', original, path.join(phantoms, 'imagesTr', 'PHANTOM_003.nii.gz'), '--out', path.join(dir, 'none'), '--precision', 'int8', '--engine', 'tfjs']);
    expect(tfjs.code).toBe(1);
    expect(tfjs.stderr).toContain('the tfjs engine runs the FP32 weights only');
  });

  it('writes model-int8.onnx calibrated on the training cases, and records its validation Dice and speed', async () => {
    const exported = await runCaptured(['export', bundle, '--precision', 'int8', '--data', phantoms, '--calibration-cases', '2']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^calibrated 27 activations on \d+ slices of 2 training cases; 19 convolutions quantised$/m);
    const manifest = await readModelManifest(bundle);
    expect(manifest.files.onnxInt8).toBe('model-int8.onnx');
    const record = manifest.quantization!;
    expect(record.calibration.cases).toEqual(['PHANTOM_001', 'PHANTOM_002']);
    expect(record.validation.cases).toEqual(['PHANTOM_003', 'PHANTOM_004']);
    expect(Math.abs(record.validation.int8.WT! - record.validation.fp32.WT!)).toBeLessThanOrEqual(INT8_DICE_TOLERANCE);
    expect(record.speed.int8SecondsPerSlice).toBeGreaterThan(0);
    expect(exported.stdout).toContain(`INT8: ${path.join(bundle, 'model-int8.onnx')} (validation Dice WT ${record.validation.int8.WT!.toFixed(4)} vs ${record.validation.fp32.WT!.toFixed(4)} FP32 (2 cases)`);

    if (python !== undefined) {
      // Read by Python's onnx: a valid graph, every convolution's weights int8 within ±63 behind DequantizeLinear, its
      // input from a DequantizeLinear (a QDQ pair), and no float kernel left.
      const read = runPythonJson<{ ops: Record<string, number>; weights: Array<{ op: string; dtype: string; max: number; input: string }>; floatWeights: string[] }>(python, READ_QDQ, [path.join(bundle, 'model-int8.onnx')]);
      expect(read.weights).toHaveLength(19);
      for (const weight of read.weights) expect(weight).toEqual({ op: 'DequantizeLinear', dtype: 'int8', max: 63, input: 'DequantizeLinear' });
      expect(read.floatWeights).toEqual([]);
      expect(read.ops.QuantizeLinear).toBe(27);
    }

    // The recorded INT8 Dice is what the INT8 label maps score against the references.
    const out = path.join(dir, 'int8');
    const inferred = await runCaptured(['infer', '--model', bundle, ...['PHANTOM_003', 'PHANTOM_004'].map((id) => path.join(phantoms, 'imagesTr', `${id}.nii.gz`)), '--out', out, '--precision', 'int8']);
    expect(inferred.code, inferred.stderr).toBe(0);
    expect(inferred.stdout).toMatch(/^precision: INT8 \(model-int8\.onnx\): validation Dice WT \d\.\d{4} vs \d\.\d{4} FP32 \(2 cases\); \d+\.\d\d ms per slice vs \d+\.\d\d ms FP32 \(\d+\.\d\dx, onnxruntime-node /m);
    let sum = 0;
    for (const id of ['PHANTOM_003', 'PHANTOM_004']) {
      const predicted = (await readNifti(path.join(out, `${id}.nii.gz`))).data;
      const reference = (await readNifti(path.join(phantoms, 'labelsTr', `${id}.nii.gz`))).data;
      sum += wholeTumourDice(predicted, reference);
    }
    expect(sum / 2).toBeCloseTo(record.validation.int8.WT!, 6);
  }, 600_000);

  it.skipIf(!data)(
    `keeps the shipped model's validation WT Dice within 0.005 on the real cases (${data ? 'present' : NO_SHARED_DATA})`,
    async () => {
      const real = path.join(dir, 'real');
      const shipped = await readModelManifest(SHIPPED);
      await copyBundle(real, { train: [...shipped.training!.split.train], validation: [...shipped.training!.split.validation] });
      const exported = await runCaptured(['export', real, '--precision', 'int8', '--data', data!]);
      expect(exported.code, exported.stderr).toBe(0);
      const record = (await readModelManifest(real)).quantization!;
      // The FP32 figure is the one the bundle records for its post-processing choice: the same cases, settings and model.
      const chosen = shipped.inference!.selection!.candidates.find((candidate) => candidate.tta === shipped.inference!.tta && candidate.largestComponent === shipped.inference!.largestComponent)!;
      expect(Math.abs(record.validation.fp32.WT! - chosen.mean)).toBeLessThan(2e-4);
      expect(record.validation.fp32.WT! - record.validation.int8.WT!).toBeLessThanOrEqual(INT8_DICE_TOLERANCE);
    },
    600_000,
  );
});
