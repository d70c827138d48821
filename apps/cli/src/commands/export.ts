import path from 'node:path';
import { readModelManifest } from '@brats/io';
import { convertBundleToIr, type IrPrecision } from '@brats/ncs2-runtime';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseChoice, parseInteger } from '../parse.js';
import { createProgress } from '../progress.js';
import { describeQuantization, quantizeBundle } from '../quantize.js';
import { loadTrainingPackage } from '../training-package.js';

interface ExportFlags {
  format: string;
  fp16?: boolean;
  precision: string;
  data?: string;
  calibrationCases?: string;
  threads?: string;
}

/**
 * `brats export BUNDLE [--format onnx|openvino|all] [--fp16]`: adds model.onnx (and the OpenVINO IR, FP32 and
 * with --fp16 the FP16 IR the NCS2's OpenVINO 2022.3 runtime loads) to a bundle and records them in its manifest.
 * `--precision int8 --data DATASET` adds model-int8.onnx, calibrated on the bundle's training cases and checked on its
 * validation cases (see quantize.ts).
 */
export function registerExportCommand(program: Command, context: CliContext): void {
  program
    .command('export')
    .description('export a model bundle for the edge: model.onnx, and OpenVINO IR FP32 (+ FP16 with --fp16)')
    .argument('<bundle>', 'model bundle folder')
    .option('--format <name>', 'onnx, openvino or all', 'onnx')
    .option('--fp16', 'also write the FP16 IR (for GPU, NPU and the NCS2)')
    .option('--precision <p>', "fp32, or int8: also write model-int8.onnx (static QDQ quantisation, calibrated on the bundle's training cases, kept only if its validation WT Dice is within 0.005 of FP32's)", 'fp32')
    .option('--data <dataset>', 'with --precision int8: the dataset holding the bundle\'s training and validation cases')
    .option('--calibration-cases <n>', 'with --precision int8: training cases whose slices calibrate the ranges', '6')
    .option('--threads <n>', 'with --precision int8: threads of both models while their speed is measured')
    .action(async (bundle: string, flags: ExportFlags) => {
      const format = parseChoice('--format', flags.format, ['onnx', 'openvino', 'all'] as const);
      const precision = parseChoice('--precision', flags.precision, ['fp32', 'int8'] as const);
      if (precision === 'int8') {
        if (flags.data === undefined) throw new UsageError('--precision int8 needs --data DATASET: the dataset holding the bundle\'s training (calibration) and validation cases');
        if (format !== 'onnx') throw new UsageError('--precision int8 writes an ONNX model (OpenVINO loads it as it is): leave --format at onnx');
      } else if (flags.data !== undefined) {
        throw new UsageError('--data is for --precision int8');
      }
      const manifest = await readModelManifest(bundle);
      if ((format === 'openvino' || precision === 'int8') && manifest.files.onnx !== undefined) {
        // The IR (or the INT8 model) is made from the bundle's model.onnx; no TensorFlow.js needed (an edge install can do this).
        printLine(context, `ONNX: ${path.join(bundle, manifest.files.onnx)} (the bundle's, ${precision === 'int8' ? 'quantised' : 'converted'} as it is)`);
      } else {
        const { exportBundleToOnnx } = await loadTrainingPackage('export');
        const exported = await exportBundleToOnnx(bundle);
        printLine(context, `ONNX: ${exported.path} (${(exported.bytes / 1e6).toFixed(1)} MB, input NHWC [batch, ${exported.manifest.model.inputShape.join(', ')}], dynamic batch)`);
      }
      if (precision === 'int8') {
        const calibrationCases = parseInteger('--calibration-cases', flags.calibrationCases ?? '6', 1);
        const threads = flags.threads === undefined ? undefined : parseInteger('--threads', flags.threads, 1);
        let progress: ReturnType<typeof createProgress> | undefined;
        const { file, record } = await quantizeBundle(bundle, {
          data: flags.data!,
          calibrationCases,
          ...(threads === undefined ? {} : { threads }),
          onStep: (line) => printLine(context, line),
          onCase: (done, total, label) => {
            progress ??= createProgress(context, 'int8', total, 'cases');
            progress.update(done, label);
          },
        });
        progress?.finish();
        printLine(context, `INT8: ${file} (${describeQuantization(record)})`);
      }
      if (format === 'onnx') return;
      const precisions: IrPrecision[] = flags.fp16 === true ? ['FP32', 'FP16'] : ['FP32'];
      for (const ir of await convertBundleToIr(bundle, precisions)) {
        // ir.xml is relative to the bundle folder: shown under the bundle as given, like the ONNX line above.
        printLine(context, `OpenVINO IR ${ir.precision}: ${path.join(bundle, ir.xml)}`);
      }
    });
}
