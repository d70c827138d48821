/**
 * The hostile-input corpus (hostile-corpus.ts) through `brats inspect`, `predict`, `convert` and `evaluate`: for
 * every kind and command, the outcome the corpus states — a clear one-line error with its exit code, a warning, or
 * the clean case's own result — and never "exit 0 with a wrong answer".
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { createVolume, openSliceStore, readNifti, writeNifti, writePhantomDataset } from '@brats/io';
import { writeUntrainedBundle } from '@brats/unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { file, hostileKinds, type HostileKind, type Outcome } from './hostile-corpus.js';
import { runCaptured } from './run-captured.js';

const ID = 'Phantom_001';
const COMMANDS = ['inspect', 'predict', 'convert', 'evaluate'] as const;
type Command = (typeof COMMANDS)[number];

let dir: string;
let bundle: string;
interface Result {
  code: number;
  stdout: string;
  stderr: string;
  labels?: Uint8Array;
  shape?: readonly number[];
  affine?: number[][];
  warnings?: string[];
  store?: string;
  scores?: unknown;
}
const clean: Partial<Record<Command, Result>> = {};

/** A fresh copy of the clean dataset (one case) for `name`. */
async function freshDataset(name: string): Promise<{ dataset: string; caseDir: string }> {
  const dataset = path.join(dir, 'cases', name.replace(/\W+/g, '-'));
  await fs.cp(path.join(dir, 'clean'), dataset, { recursive: true });
  return { dataset, caseDir: path.join(dataset, ID) };
}

async function storeDigest(store: string): Promise<string> {
  const reader = await openSliceStore(store);
  try {
    const parts: string[] = [];
    for (const split of reader.splits) {
      const info = reader.info(split);
      if (info.slices === 0) continue;
      const batch = reader.readRange(split, 0, info.slices);
      parts.push(`${split}:${info.slices}:${Buffer.from(batch.images.buffer, batch.images.byteOffset, batch.images.byteLength).toString('base64')}:${Buffer.from(batch.masks).toString('base64')}`);
    }
    return parts.join('|');
  } finally {
    reader.close();
  }
}

/** Runs one command on a (damaged) dataset; `predDir` holds what evaluate scores. */
async function run(command: Command, kind: HostileKind | undefined, dataset: string, caseDir: string, predDir: string): Promise<Result> {
  const tag = kind === undefined ? 'clean' : kind.name.replace(/\W+/g, '-');
  const out = path.join(dir, 'out', tag, command);
  switch (command) {
    case 'inspect': {
      const target = kind === undefined || kind.target === 'case' ? dataset : kind.target === 'seg' ? file(caseDir, ID, 'seg') : file(caseDir, ID, kind.target === 'prediction' ? 'flair' : kind.target);
      return runCaptured(['inspect', target]);
    }
    case 'predict': {
      const result: Result = await runCaptured(['predict', caseDir, '--model', bundle, '--out', out, '--engine', 'tfjs', '--no-tta', '--no-largest-component']);
      if (result.code === 0) {
        const labels = await readNifti(path.join(out, `${ID}.nii.gz`));
        result.labels = Uint8Array.from(labels.data, Number);
        result.shape = labels.shape;
        result.affine = labels.affine.map((row) => [...row]);
        const summary = JSON.parse(await fs.readFile(path.join(out, 'predictions.json'), 'utf8')) as { cases: { warnings?: string[] }[] };
        result.warnings = summary.cases.flatMap((entry) => entry.warnings ?? []);
      }
      return result;
    }
    case 'convert': {
      const store = path.join(out, 'store.h5');
      await fs.mkdir(out, { recursive: true });
      const result: Result = await runCaptured(['convert', dataset, '--out', store, '--crop', '32,32,16', '--split', '1,0,0', '--workers', '0']);
      if (result.code === 0) result.store = await storeDigest(store);
      return result;
    }
    case 'evaluate': {
      const target = path.join(out, 'scores.json');
      await fs.mkdir(out, { recursive: true });
      const result: Result = await runCaptured(['evaluate', '--pred', predDir, '--ref', dataset, '--out', target]);
      if (result.code === 0) result.scores = (JSON.parse(await fs.readFile(target, 'utf8')) as { cases: unknown }).cases;
      return result;
    }
  }
}

/**
 * A prediction folder holding a perfect prediction: the case's own reference for kinds that move the whole case
 * (flips, spacing), else the clean one; then damaged for prediction kinds.
 */
async function predictionFolder(kind: HostileKind | undefined, caseDir: string): Promise<string> {
  const predDir = path.join(dir, 'predictions', kind === undefined ? 'clean' : kind.name.replace(/\W+/g, '-'));
  await fs.mkdir(predDir, { recursive: true });
  const target = path.join(predDir, `${ID}.nii.gz`);
  const own = file(caseDir, ID, 'seg');
  const usesOwn = kind?.target === 'case' && (await fs.stat(own).then((stat) => stat.isFile(), () => false));
  const seg = await readNifti(usesOwn ? own : path.join(dir, 'clean', ID, `${ID}_seg.nii.gz`));
  await writeNifti(target, seg);
  if (kind?.target !== 'prediction') return predDir;
  switch (kind.name) {
    case 'a prediction on another grid':
      await writeNifti(target, createVolume('uint8', new Uint8Array(40 * 40 * 18), [40, 40, 18], { affine: seg.affine }));
      break;
    case 'a prediction cut short':
      await fs.writeFile(target, gzipSync((await fs.readFile(target)).subarray(0, 100)));
      break;
    case 'no prediction for the case':
      await fs.rm(target);
      break;
    case 'a prediction with label 9': {
      const data = Uint8Array.from(seg.data, Number);
      data[3] = 9;
      await writeNifti(target, createVolume('uint8', data, seg.shape, { affine: seg.affine }));
      break;
    }
    case 'a prediction that is a symbolic link to /dev/zero':
      await fs.rm(target);
      await fs.symlink('/dev/zero', target);
      break;
    default:
      throw new Error(`no prediction damage for ${kind.name}`);
  }
  return predDir;
}

function describeOutcome(outcome: Outcome): string {
  if (typeof outcome === 'string') return outcome;
  if ('exit' in outcome) return `exit ${outcome.exit} ${outcome.stderr}`;
  if ('warn' in outcome) return `warning ${outcome.warn}`;
  if ('turned' in outcome) return "the clean case's label map, turned as the scan was";
  return `stdout ${outcome.stdout}`;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'brats-hostile-'));
  await writePhantomDataset(path.join(dir, 'clean'), { layout: 'brats2018', cases: 1, size: [40, 40, 20], seed: 2 });
  bundle = path.join(dir, 'bundle');
  await writeUntrainedBundle(bundle, { crop: [32, 32, 16], filters: 2, depth: 1, dropout: 0 });
  const predDir = await predictionFolder(undefined, path.join(dir, 'clean', ID));
  for (const command of COMMANDS) clean[command] = await run(command, undefined, path.join(dir, 'clean'), path.join(dir, 'clean', ID), predDir);
}, 120_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const kinds = hostileKinds();

describe('the hostile-input corpus', () => {
  it('has as many kinds as the CLI README says, with unique names', async () => {
    const readme = await fs.readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme.replace(/\s+/g, ' ')).toContain(`checks for ${kinds.length} kinds generated from one phantom case`);
    expect(new Set(kinds.map((kind) => kind.name)).size).toBe(kinds.length);
  });

  it('runs clean through every command first: exit 0, no warning, no error', () => {
    for (const command of COMMANDS) {
      expect([command, clean[command]!.code]).toEqual([command, 0]);
      expect(clean[command]!.stderr).not.toMatch(/warning|error/i);
    }
  });

  it.each(kinds.map((kind) => [kind.name, kind] as const))('%s', async (_name, kind) => {
    const { dataset, caseDir } = await freshDataset(kind.name);
    await kind.apply(caseDir, ID);
    const predDir = await predictionFolder(kind, caseDir);
    const failures: string[] = [];
    for (const command of COMMANDS) {
      const outcome = kind[command];
      if (outcome === 'unread' && (command === 'inspect' || kind.target === 'prediction')) continue;
      const result = await run(command, kind, dataset, caseDir, predDir);
      const got = `${command}: exit ${result.code}; stderr ${JSON.stringify(result.stderr.slice(0, 400))}; stdout ${JSON.stringify(result.stdout.slice(0, 200))}`;
      const fail = (why: string): void => void failures.push(`${command} (expected ${describeOutcome(outcome)}): ${why}\n    got ${got}`);
      if (typeof outcome === 'object' && 'exit' in outcome) {
        if (result.code !== outcome.exit) fail('exit code');
        else if (!outcome.stderr.test(result.stderr)) fail('error message');
        else if (/\n\s+at /.test(result.stderr)) fail('a stack trace');
        continue;
      }
      if (result.code !== 0) {
        fail('exit code');
        continue;
      }
      if (typeof outcome === 'object' && 'warn' in outcome) {
        if (!outcome.warn.test(result.stderr)) fail('warning on stderr');
        if (command === 'predict' && !(result.warnings ?? []).some((warning) => outcome.warn.test(warning))) fail('warning in predictions.json');
        continue;
      }
      if (typeof outcome === 'object' && 'stdout' in outcome) {
        if (!outcome.stdout.test(result.stdout)) fail('stdout');
        continue;
      }
      if (typeof outcome === 'object' && 'turned' in outcome) {
        const scan = await readNifti(file(caseDir, ID, 'flair'));
        if (JSON.stringify(result.shape) !== JSON.stringify(scan.shape)) fail(`label map of shape ${JSON.stringify(result.shape)} on a scan of ${JSON.stringify(scan.shape)}`);
        if (JSON.stringify(result.affine) !== JSON.stringify(scan.affine)) fail("label map's affine is not the scan's");
        const expected = outcome.turned(await readNifti(path.join(dir, 'out', 'clean', 'predict', `${ID}.nii.gz`)));
        if (!expected.data.some((value) => value > 0)) fail('the clean label map is empty: nothing to compare');
        if (Buffer.compare(Buffer.from(result.labels!), Buffer.from(Uint8Array.from(expected.data, Number))) !== 0) fail("label map is not the clean case's, turned as the scan was");
        if (!/orientation [A-Z]{3} \(.*\) turned to the model's LPS/.test(result.stdout)) fail('no orientation notice on stdout');
        continue;
      }
      // 'same' or 'unread': the clean case's result.
      const reference = clean[command]!;
      if (command === 'predict') {
        if (Buffer.compare(Buffer.from(result.labels!), Buffer.from(reference.labels!)) !== 0) fail('label map differs from the clean case');
      } else if (command === 'convert') {
        if (result.store !== reference.store) fail('slice store differs from the clean case');
      } else if (command === 'evaluate') {
        if (JSON.stringify(result.scores) !== JSON.stringify(reference.scores)) fail(`scores differ: ${JSON.stringify(result.scores).slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);
});
