import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readModelManifest, readNifti, writePhantomDataset } from '@brats/io';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-cli-export-'));
  await writePhantomDataset(path.join(dir, 'phantoms'), { layout: 'msd', cases: 1, size: [40, 40, 20], seed: 4 });
  bundle = path.join(dir, 'bundle');
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 4, depth: 2, dropout: 0, seed: 6 });
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats export', () => {
  it('adds model.onnx to the bundle; then auto picks ONNX Runtime and agrees with tfjs', async () => {
    const exported = await runCaptured(['export', bundle]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^ONNX: .*model\.onnx \(\d+\.\d MB, input NHWC \[batch, 32, 32, 4\], dynamic batch\)$/m);
    expect((await readModelManifest(bundle)).files.onnx).toBe('model.onnx');

    const input = path.join(dir, 'phantoms');
    const viaOnnx = await runCaptured(['infer', '--model', bundle, input, '--out', path.join(dir, 'onnx'), '--probabilities']);
    expect(viaOnnx.code).toBe(0);
    expect(viaOnnx.stdout).toMatch(/^engine: onnxruntime on CPU/m);
    const viaTfjs = await runCaptured(['predict', '--model', bundle, input, '--out', path.join(dir, 'tfjs'), '--probabilities', '--engine', 'tfjs']);
    expect(viaTfjs.code).toBe(0);
    const a = await readNifti(path.join(dir, 'onnx', 'PHANTOM_001_prob_WT.nii.gz'));
    const b = await readNifti(path.join(dir, 'tfjs', 'PHANTOM_001_prob_WT.nii.gz'));
    let maxDifference = 0;
    for (let v = 0; v < a.data.length; v++) maxDifference = Math.max(maxDifference, Math.abs(a.data[v]! - b.data[v]!));
    expect(maxDifference).toBeLessThan(1e-4);
    const labelsA = await readNifti(path.join(dir, 'onnx', 'PHANTOM_001.nii.gz'));
    const labelsB = await readNifti(path.join(dir, 'tfjs', 'PHANTOM_001.nii.gz'));
    let same = 0;
    for (let v = 0; v < labelsA.data.length; v++) if (labelsA.data[v] === labelsB.data[v]) same++;
    expect(same / labelsA.data.length).toBeGreaterThanOrEqual(0.999);
  });

  it('explains that OpenVINO is not installed, and refuses a precision it has no way to make', async () => {
    const openvino = await runCaptured(['export', bundle, '--format', 'openvino', '--fp16']);
    expect(openvino.code).toBe(2);
    expect(openvino.stderr).toMatch(/openvino/i);
    const int4 = await runCaptured(['export', bundle, '--precision', 'int4']);
    expect(int4.code).toBe(1);
    expect(int4.stderr).toContain("--precision must be one of fp32, int8, got 'int4'");
    const int8ForOpenvino = await runCaptured(['export', bundle, '--precision', 'int8', '--data', dir, '--format', 'openvino']);
    expect(int8ForOpenvino.code).toBe(1);
    expect(int8ForOpenvino.stderr).toContain('--precision int8 writes an ONNX model (OpenVINO loads it as it is): leave --format at onnx');
  });

  it('prints each OpenVINO IR at its path under the bundle folder (openvino-node stand-in)', async () => {
    // A minimal stand-in for openvino-node: convertBundleToIr only reads the ONNX file and saves each IR.
    const fake = path.join(dir, 'fake-openvino.mjs');
    await fs.writeFile(
      fake,
      [
        "import { writeFileSync } from 'node:fs';",
        'class Core { async readModel(file) { return { source: file }; } }',
        'export const addon = { Core, saveModelSync(model, xml, fp16) {',
        "  writeFileSync(xml.replace(/\\.xml$/, '.bin'), Buffer.from([0]));",
        "  writeFileSync(xml, `<net precision=\"${fp16 ? 'FP16' : 'FP32'}\" source=\"${model.source}\"/>`);",
        '} };',
      ].join('\n'),
    );
    const cwd = process.cwd();
    process.env.BRATS_OPENVINO_MODULE = fake;
    // The bundle as a user types it, relative to the working folder: the printed paths must open from there.
    process.chdir(dir);
    try {
      const exported = await runCaptured(['export', 'bundle', '--format', 'openvino', '--fp16']);
      expect(exported.code, exported.stderr).toBe(0);
      const lines = exported.stdout.split('\n').filter((line) => line.startsWith('OpenVINO IR'));
      expect(lines).toEqual([`OpenVINO IR FP32: ${path.join('bundle', 'openvino', 'FP32', 'model.xml')}`, `OpenVINO IR FP16: ${path.join('bundle', 'openvino', 'FP16', 'model.xml')}`]);
      for (const line of lines) {
        const printed = line.slice(line.indexOf(': ') + 2);
        expect(existsSync(printed), printed).toBe(true);
        expect(await fs.readFile(printed, 'utf8')).toContain(`precision="${line.includes('FP16') ? 'FP16' : 'FP32'}"`);
      }
    } finally {
      process.chdir(cwd);
      delete process.env.BRATS_OPENVINO_MODULE;
    }
  });
});
