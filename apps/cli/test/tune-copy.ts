import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readModelManifest, type ModelManifest } from '@brats/io';
import { expect } from 'vitest';
import { runCaptured } from './run-captured.js';

/**
 * Runs `brats tune` on a copy of `bundle` (its manifest without `inference`, and model.onnx) in `folder`, with the data
 * folder the shipped choice names, and returns the shipped and the newly written manifests: a test that a shipped
 * bundle's post-processing is the one the command chooses, figures included.
 */
export async function tuneCopy(bundle: string, folder: string, data: string): Promise<{ shipped: ModelManifest; written: ModelManifest }> {
  const shipped = await readModelManifest(bundle);
  const record = shipped.inference!.selection!;
  expect(record.cases).toEqual(shipped.training!.split.validation);
  // Tuned on the data folder that holds both the BraTS 2018 sample and the extra cases.
  expect(path.basename(path.resolve(bundle, record.data))).toBe(path.basename(data));
  await fs.mkdir(folder, { recursive: true });
  for (const file of ['brats-model.json', 'model.onnx']) await fs.copyFile(path.join(bundle, file), path.join(folder, file));
  const { inference: _dropped, ...untuned } = JSON.parse(await fs.readFile(path.join(folder, 'brats-model.json'), 'utf8'));
  await fs.writeFile(path.join(folder, 'brats-model.json'), JSON.stringify(untuned));
  const tuned = await runCaptured(['tune', folder, '--data', data, '--engine', 'onnxruntime']);
  expect(tuned.code, tuned.stderr).toBe(0);
  const written = await readModelManifest(folder);
  expect(written.inference!.selection!.cases).toEqual(record.cases);
  return { shipped, written };
}
