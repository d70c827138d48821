/**
 * Test fixtures of the segmentation path shared by the runtime's tests and the queue's: a manifest for a small
 * crop, and a fake engine with a known answer.
 */
import { resolvePreprocessing, type BundleFiles, type ModelManifest } from '@brats/io';
import type { InferenceEngine } from '../src/engine.js';

/** Options of {@link testManifest}. */
export interface TestManifestOptions {
  /** 1 (whole tumour) or 3 (WT, TC, ET); default 1. */
  outputChannels?: 1 | 3;
  /** The model's spacing in mm; absent: none recorded (1 mm assumed). */
  spacing?: readonly [number, number, number];
  /** Default `{ tfjs: 'model.json' }`. */
  files?: BundleFiles;
}

/** A manifest of an untrained two-filter U-Net taking [crop i, crop j, 4] slices. */
export function testManifest(crop: readonly [number, number, number], options: TestManifestOptions = {}): ModelManifest {
  const outputChannels = options.outputChannels ?? 1;
  const manifest: ModelManifest = {
    format: 'brats-model',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00Z',
    model: { architecture: 'unet2d', inputShape: [crop[0], crop[1], 4], filters: 2, depth: 1, upsampling: 'bilinear', batchNorm: false, dropout: 0, outputChannels, parameters: 0 },
    channels: ['FLAIR', 'T1w', 'T1gd', 'T2w'],
    preprocessing: resolvePreprocessing({ crop: [crop[0], crop[1], crop[2]], target: outputChannels === 1 ? 'wt' : 'regions' }),
    regions: outputChannels === 1 ? ['WT'] : ['WT', 'TC', 'ET'],
    threshold: 0.5,
    inputLayout: 'NHWC',
    files: options.files ?? { tfjs: 'model.json' },
  };
  if (options.spacing !== undefined) manifest.spacing = options.spacing;
  return manifest;
}

/** Counts of a {@link brightFlairEngine}'s calls. */
export interface EngineCalls {
  runs: number;
  disposed: number;
}

/**
 * A fake engine with a known answer: probability 0.9 where normalised FLAIR is above 1 (bright oedema), else 0.1.
 * `check` sees each call's input and batch (e.g. to assert the input holds whole slices).
 */
export function brightFlairEngine(calls: EngineCalls = { runs: 0, disposed: 0 }, check?: (input: Float32Array, batch: number) => void): InferenceEngine {
  return {
    name: 'fake',
    device: 'CPU',
    version: 'fake 1',
    layout: undefined,
    async load() {
      throw new Error('not used');
    },
    async run(input, batch) {
      calls.runs++;
      check?.(input, batch);
      const pixels = input.length / 4;
      const out = new Float32Array(pixels);
      for (let p = 0; p < pixels; p++) out[p] = input[p * 4]! > 1 ? 0.9 : 0.1;
      return out;
    },
    async perfCounters() {
      return undefined;
    },
    async dispose() {
      calls.disposed++;
    },
  };
}
