/**
 * The predict pipeline as the commands run it (predict, infer, demo): inputs → cases → engine → NIfTI label
 * maps, optional probability maps, figures, per-case metrics when a reference exists, and a report.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  BratsError,
  TRAINING_CURVES_FILE,
  createVolume,
  readModelManifest,
  regionMask,
  renderOverlayMontage,
  renderSliceFigure,
  writeFileAtomic,
  writeNifti,
  writePng,
  type CanonicalCase,
  type ModelManifest,
  type RegionName,
} from '@brats/io';
import { computeDice, evaluateCase, summarizeCases, type CaseEvaluation, type EvaluationSummary } from '@brats/metrics';
import { resolveCaseInputs, resolveInference, segmentCase, type Segmentation } from '@brats/ncs2-runtime';
import { printLine, type CliContext } from './context.js';
import { openEngine, type EngineChoice } from './engine-choice.js';
import { createProgress } from './progress.js';
import { caseTable, figureBlocks, summaryTable, writeReport, type ReportCase } from './report.js';

/** Options shared by `brats predict`, `brats infer` and the demo. */
export interface PredictRunOptions {
  model: string;
  inputs: readonly string[];
  out: string;
  engine: EngineChoice;
  device?: string;
  /** Test-time flips; undefined: what the bundle chose on validation, else off. */
  tta?: boolean | undefined;
  /** Largest whole-tumour component only; undefined: what the bundle chose on validation, else off. */
  largestComponent?: boolean | undefined;
  probabilities: boolean;
  figures: boolean;
  /** Title of the report (figures only). */
  title?: string;
  /** Only the runtime engines (ONNX Runtime, OpenVINO): `brats infer`. */
  runtimeOnly?: boolean;
  /** Predict only the cases with these ids (e.g. a held-out split). */
  onlyCases?: readonly string[];
}

/** What a predict run produced. */
export interface PredictRunResult {
  cases: ReportCase[];
  evaluations: CaseEvaluation[];
  summary: EvaluationSummary | undefined;
  failures: string[];
  engine: string;
  reportPath?: string;
}

/** Slices to show: up to `count` of the largest tumour area (reference, else prediction), at least 5 apart. */
function chooseSlices(mask: Uint8Array, shape: readonly [number, number, number], count: number): number[] {
  const [nx, ny, nz] = shape;
  const areas = Array.from({ length: nz }, (_, k) => {
    let area = 0;
    for (let v = nx * ny * k; v < nx * ny * (k + 1); v++) area += mask[v]!;
    return { k, area };
  });
  const chosen: number[] = [];
  for (const { k, area } of areas.sort((a, b) => b.area - a.area)) {
    if (area === 0 || chosen.length >= count) break;
    if (chosen.every((other) => Math.abs(other - k) >= 5)) chosen.push(k);
  }
  return chosen.length > 0 ? chosen.sort((a, b) => a - b) : [Math.floor(nz / 2)];
}

/** Dice of one axial slice (the seed's per-slice figure): both empty scores 1, as in the BraTS rule. */
function sliceDiceOf(truth: Uint8Array, prediction: Uint8Array, z: number, sliceVoxels: number): number {
  const slice = (mask: Uint8Array) => mask.subarray(z * sliceVoxels, (z + 1) * sliceVoxels);
  return computeDice(slice(prediction), slice(truth), { convention: 'brats' });
}

async function writeCaseFigures(out: string, caseData: CanonicalCase, prediction: Segmentation, truthWt: Uint8Array | undefined): Promise<string[]> {
  const flair = caseData.channels[0];
  const shape = [flair.shape[0], flair.shape[1], flair.shape[2]] as const;
  const predictedWt = prediction.masks[prediction.regions.indexOf('WT')]!;
  const files: string[] = [];
  const directory = path.join(out, 'figures');
  for (const z of chooseSlices(truthWt ?? predictedWt, shape, 3)) {
    const sliceVoxels = shape[0] * shape[1];
    const figure = renderSliceFigure({
      scan: flair,
      prediction: predictedWt,
      z,
      ...(truthWt === undefined ? {} : { truth: truthWt, dice: sliceDiceOf(truthWt, predictedWt, z, sliceVoxels) }),
    });
    const file = path.join(directory, `${caseData.id}-z${String(z).padStart(3, '0')}.png`);
    await writePng(file, figure);
    files.push(file);
  }
  const overlays: Partial<Record<RegionName, Uint8Array>> = {};
  prediction.regions.forEach((region, index) => (overlays[region] = prediction.masks[index]!));
  const montage = renderOverlayMontage(flair, overlays, { title: `${caseData.id}: predicted ${prediction.regions.join(', ')}`, count: 8, columns: 4 });
  const montageFile = path.join(directory, `${caseData.id}-overlay.png`);
  await writePng(montageFile, montage);
  files.push(montageFile);
  return files;
}

/**
 * Runs the predict pipeline over `inputs`, printing progress; unreadable cases are reported and skipped.
 * @throws {UsageError} for bad inputs; the engine's errors when it cannot load.
 */
export async function runPrediction(context: CliContext, options: PredictRunOptions): Promise<PredictRunResult> {
  const manifest: ModelManifest = await readModelManifest(options.model);
  const resolved = await resolveCaseInputs(options.inputs);
  const refs = options.onlyCases === undefined ? resolved : resolved.filter((ref) => options.onlyCases!.includes(ref.id));
  const engine = await openEngine(options.model, options.engine, {
    ...(options.device === undefined ? {} : { device: options.device }),
    runtimeOnly: options.runtimeOnly === true,
  });
  printLine(context, `engine: ${engine.name} on ${engine.device} (${engine.reason})`);
  const inference = resolveInference(manifest, options);
  const why = inference.source === 'bundle' ? 'as the bundle chose on its validation cases' : inference.source === 'caller' ? 'as asked' : 'the default';
  printLine(context, `post-processing: tta ${inference.tta ? 'on' : 'off'}, largest component ${inference.largestComponent ? 'on' : 'off'} (${why})`);
  const progress = createProgress(context, 'predict', refs.length, 'cases');
  const cases: ReportCase[] = [];
  const evaluations: CaseEvaluation[] = [];
  const failures: string[] = [];
  let labelConvention: string | undefined;
  try {
    for (const [index, ref] of refs.entries()) {
      try {
        const prediction = await segmentCase(ref, manifest, engine.runner, { tta: options.tta, largestComponent: options.largestComponent });
        const caseData = prediction.case;
        labelConvention ??= prediction.labelMapping.name;
        await writeNifti(path.join(options.out, `${ref.id}.nii.gz`), prediction.labels, { dtype: 'uint8', description: `@brats prediction ${manifest.regions.join('/')}` });
        if (options.probabilities) {
          for (const [r, region] of prediction.regions.entries()) {
            const volume = createVolume('float32', prediction.probabilities[r]!, prediction.labels.shape, {
              spacing: prediction.labels.spacing,
              affine: prediction.labels.affine,
            });
            await writeNifti(path.join(options.out, `${ref.id}_prob_${region}.nii.gz`), volume);
          }
        }
        const volumesMl: Record<string, number> = { ...prediction.volumesMl };
        const entry: ReportCase = { id: ref.id, volumesMl, figures: [] };
        let truthWt: Uint8Array | undefined;
        if (caseData.labels !== undefined) {
          truthWt = regionMask(caseData.labels.data, caseData.labelMapping, 'WT');
          const [nx, ny, nz] = caseData.labels.shape;
          entry.evaluation = evaluateCase(
            {
              caseId: ref.id,
              prediction: prediction.labels.data,
              predictionMapping: prediction.labelMapping,
              reference: caseData.labels.data,
              referenceMapping: caseData.labelMapping,
              shape: [nx, ny, nz],
              spacing: caseData.labels.spacing,
            },
            { regions: manifest.regions },
          );
          evaluations.push(entry.evaluation);
        }
        if (options.figures) entry.figures = await writeCaseFigures(options.out, caseData, prediction, truthWt);
        cases.push(entry);
      } catch (error) {
        if (!(error instanceof BratsError)) throw error;
        failures.push(`case ${ref.id}: ${error.message}`);
      }
      progress.update(index + 1, ref.id);
    }
  } finally {
    await engine.runner.dispose();
  }
  progress.finish();
  const summary = evaluations.length > 0 ? summarizeCases(evaluations) : undefined;
  const result: PredictRunResult = { cases, evaluations, summary, failures, engine: `${engine.name} (${engine.device})` };
  await writeFileAtomic(
    path.join(options.out, 'predictions.json'),
    `${JSON.stringify({ model: path.resolve(options.model), engine: result.engine, regions: manifest.regions, labels: labelConvention ?? null, tta: inference.tta, largestComponent: inference.largestComponent, cases: cases.map(({ id, volumesMl, evaluation }) => ({ id, volumesMl, dice: evaluation === undefined ? null : Object.fromEntries(Object.entries(evaluation.regions).map(([r, v]) => [r, v.dice])) })), failures }, null, 2)}\n`,
  );
  if (options.figures) {
    const reportPath = path.join(options.out, 'report.html');
    // The model's training curves travel with the report, so the folder stays self-contained.
    const curves = path.join(options.model, TRAINING_CURVES_FILE);
    const curvesCopy = path.join(options.out, 'figures', TRAINING_CURVES_FILE);
    const hasCurves = await fs.copyFile(curves, curvesCopy).then(() => true, () => false);
    await writeReport(reportPath, options.title ?? 'Segmentation report', [
      { kind: 'paragraph', text: `Model ${path.resolve(options.model)} (${manifest.model.architecture}, input ${manifest.model.inputShape.join('x')}, regions ${manifest.regions.join(', ')}), engine ${result.engine}, ${cases.length} case(s).` },
      ...(hasCurves ? [{ kind: 'heading' as const, text: 'Training' }, { kind: 'figure' as const, src: path.relative(options.out, curvesCopy), caption: 'loss and validation Dice per epoch of the model' }] : []),
      ...(summary === undefined ? [] : [{ kind: 'heading' as const, text: 'Summary' }, summaryTable(summary)]),
      { kind: 'heading', text: 'Cases' },
      caseTable(cases, manifest.regions),
      ...(failures.length > 0 ? [{ kind: 'heading' as const, text: 'Failed cases' }, ...failures.map((text) => ({ kind: 'paragraph' as const, text }))] : []),
      { kind: 'heading', text: 'Figures' },
      ...figureBlocks(reportPath, cases),
    ]);
    result.reportPath = reportPath;
  }
  return result;
}
