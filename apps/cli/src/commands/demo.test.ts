import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../test/run-captured.js';

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-demo-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('brats demo', () => {
  it('runs synth, convert, train, predict, evaluate and writes metrics.json and a report with its figures', async () => {
    const out = path.join(dir, 'demo');
    // A reduced recipe (smaller grid, fewer steps) so the whole pipeline runs in about a minute.
    const { code, stdout } = await runCaptured(['demo', '--out', out, '--cases', '6', '--epochs', '2', '--steps-per-epoch', '8', '--size', '64,64,40']);
    expect(code).toBe(0);
    for (const step of ['1/5 synthesise 6 phantom cases', '2/5 convert to HDF5 slices (crop 48x48x32', '3/5 train a U-Net', '4/5 export model/model.onnx, predict the', '5/5 evaluate and report']) {
      expect(stdout).toContain(step);
    }
    // Training says how many threads it uses (two where the gradient worker can run beside the main thread).
    expect(stdout).toMatch(/^ {4}threads: [12] \(.+\)$/m);
    // The exported model runs on ONNX Runtime (or OpenVINO where installed), the edge engines.
    expect(stdout).toMatch(/^engine: (onnxruntime|openvino) on /m);
    expect(stdout).toMatch(/^held-out test WT Dice: \d\.\d{4} \(mean over [1-9]\d* case\(s\)\)/m);
    const metrics = JSON.parse(await fs.readFile(path.join(out, 'metrics.json'), 'utf8'));
    expect(metrics.cases.length).toBeGreaterThanOrEqual(1);
    expect(typeof metrics.cases[0].WT.dice).toBe('number');
    expect(metrics.summary.WT.dice.count).toBe(metrics.cases.length);
    // The phantoms are 2 mm: the model records it, and predicts them as they are, not resampled to 1 mm.
    expect(JSON.parse(await fs.readFile(path.join(out, 'model', 'brats-model.json'), 'utf8')).spacing).toEqual([2, 2, 2]);
    const predictions = JSON.parse(await fs.readFile(path.join(out, 'predictions', 'predictions.json'), 'utf8')) as { cases: { reasons: string[] }[] };
    for (const entry of predictions.cases) expect(entry.reasons).toContain("spacing 2 x 2 x 2 mm: the model's own (recorded in the bundle)");
    const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    const sources = [...html.matchAll(/<img src="([^"]+)"/g)].map((match) => match[1]!);
    expect(sources).toContain('model/training-curves.png');
    expect(sources.some((src) => src.endsWith('-overlay.png'))).toBe(true);
    for (const source of sources) expect(existsSync(path.join(out, source)), source).toBe(true);
  });
});
