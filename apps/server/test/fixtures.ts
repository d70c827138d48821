/** Test fixtures: a tiny untrained model bundle, a hand-made regions model, phantom scans on disk and multipart bodies. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writePhantomDataset } from '@brats/io';
import { registerEngine, type InferenceEngine } from '@brats/ncs2-runtime';
import { tfjsEngineFactory, writePreparedBundle } from '@brats/unet/tf';

/** Phantom grid of the tests, and the crop of their bundles. */
export const PHANTOM_SIZE: [number, number, number] = [48, 48, 32];
export const BUNDLE_CROP: [number, number, number] = [32, 32, 16];

/**
 * An untrained but real U-Net bundle: predictions are arbitrary, the service around them is what is tested.
 * With `everywhere`, the output layer is set to a zero kernel and a bias of +8, so every voxel in the crop window
 * is tumour (probability 0.9997): a known, non-empty mask for the viewer test.
 */
export async function writeTinyBundle(bundle: string, outputChannels: 1 | 3, crop: [number, number, number] = BUNDLE_CROP, everywhere = false): Promise<void> {
  await writePreparedBundle(bundle, {
    crop,
    filters: 2,
    depth: 1,
    dropout: 0,
    outputChannels,
    ...(everywhere
      ? {
          prepare: (model) => {
            const output = model.layers[model.layers.length - 1]!;
            const [kernel, bias] = output.getWeights();
            output.setWeights([kernel!.mul(0), bias!.mul(0).add(8)]);
          },
        }
      : {}),
  });
}

/** Phantom files: one 4D Decathlon image and the four files of a BraTS 2018 case. */
export interface PhantomFiles {
  scan4d: string;
  roles: { flair: string; t1w: string; t1gd: string; t2w: string };
}

/** Writes one msd and one BraTS 2018 phantom case under `dir`. */
export async function writePhantomFiles(dir: string, size: [number, number, number] = PHANTOM_SIZE, seed = 3): Promise<PhantomFiles> {
  await writePhantomDataset(path.join(dir, 'msd'), { layout: 'msd', cases: 1, size, seed });
  await writePhantomDataset(path.join(dir, 'brats'), { layout: 'brats2018', cases: 1, size, seed });
  const caseDir = path.join(dir, 'brats', 'Phantom_001');
  const file = (suffix: string): string => path.join(caseDir, `Phantom_001_${suffix}.nii.gz`);
  return {
    scan4d: path.join(dir, 'msd', 'imagesTr', 'PHANTOM_001.nii.gz'),
    roles: { flair: file('flair'), t1w: file('t1'), t1gd: file('t1ce'), t2w: file('t2') },
  };
}

/** One file part of a multipart body. */
export interface FilePart {
  field: string;
  filename: string;
  bytes: Uint8Array;
}

/** A multipart/form-data body (encoded by the platform's FormData) for `app.inject` or fetch. */
export async function multipartBody(parts: readonly (FilePart | { field: string; value: string })[]): Promise<{ payload: Buffer; headers: Record<string, string> }> {
  const form = new FormData();
  for (const part of parts) {
    if ('value' in part) form.append(part.field, part.value);
    else form.append(part.field, new Blob([new Uint8Array(part.bytes)]), part.filename);
  }
  const response = new Response(form);
  return { payload: Buffer.from(await response.arrayBuffer()), headers: { 'content-type': response.headers.get('content-type')! } };
}

/** Reads the files of a case as upload parts. */
export async function uploadParts(files: PhantomFiles, kind: '4d' | 'roles'): Promise<FilePart[]> {
  if (kind === '4d') return [{ field: 'scan', filename: path.basename(files.scan4d), bytes: await fs.readFile(files.scan4d) }];
  return Promise.all(Object.entries(files.roles).map(async ([field, file]) => ({ field, filename: path.basename(file), bytes: await fs.readFile(file) })));
}

/** A gate that holds every engine call until opened. */
export interface EngineGate {
  open(): void;
  close(): void;
}

/**
 * Registers the engine `name`: the tfjs engine, but each call waits for the returned gate to open, so a test
 * can hold jobs in the running state (queue full, delete while running, restart with queued jobs).
 */
export function registerGatedEngine(name: string): EngineGate {
  let release: (() => void) | undefined;
  let gate: Promise<void> = new Promise((resolve) => (release = resolve));
  registerEngine(name, {
    async create(options) {
      const inner: InferenceEngine = await tfjsEngineFactory.create(options);
      return {
        name,
        get device() {
          return inner.device;
        },
        get version() {
          return inner.version;
        },
        get layout() {
          return inner.layout;
        },
        load: (bundle: string) => inner.load(bundle),
        async run(input: Float32Array, batch: number) {
          await gate;
          return inner.run(input, batch);
        },
        perfCounters: () => inner.perfCounters(),
        dispose: () => inner.dispose(),
      };
    },
    probe: () => tfjsEngineFactory.probe(),
  }, -1);
  return {
    open: () => release?.(),
    close: () => {
      gate = new Promise((resolve) => (release = resolve));
    },
  };
}

// The runtime's regions model with a known answer, and its nested-box case.
export { NESTED_BOX_VOXELS, writeNestedBoxCase, writeRegionsPointwiseBundle } from '../../../packages/ncs2-runtime/test/regions-fixture.js';
