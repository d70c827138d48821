import path from 'node:path';
import { readModelManifest } from '@brats/io';
import { convertBundleToIr, type IrPrecision } from '@brats/ncs2-runtime';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseChoice } from '../parse.js';
import { loadTrainingPackage } from '../training-package.js';

interface ExportFlags {
  format: string;
  fp16?: boolean;
  int8?: boolean;
  calibration?: string;
}

/**
 * `brats export BUNDLE [--format onnx|openvino|all] [--fp16]`: adds model.onnx (and the OpenVINO IR, FP32 and
 * with --fp16 the FP16 IR the NCS2's OpenVINO 2022.3 runtime loads) to a bundle and records them in its manifest.
 */
export function registerExportCommand(program: Command, context: CliContext): void {
  program
    .command('export')
    .description('export a model bundle for the edge: model.onnx, and OpenVINO IR FP32 (+ FP16 with --fp16)')
    .argument('<bundle>', 'model bundle folder')
    .option('--format <name>', 'onnx, openvino or all', 'onnx')
    .option('--fp16', 'also write the FP16 IR (for GPU, NPU and the NCS2)')
    .option('--int8', 'INT8 quantisation (not available in this release)')
    .option('--calibration <file>', 'calibration slices for --int8')
    .action(async (bundle: string, flags: ExportFlags) => {
      const format = parseChoice('--format', flags.format, ['onnx', 'openvino', 'all'] as const);
      if (flags.int8 === true || flags.calibration !== undefined) {
        throw new UsageError('--int8 is not available: no INT8 path has yet shown the speed-up and the Dice within 0.005 that would justify it');
      }
      const manifest = await readModelManifest(bundle);
      if (format === 'openvino' && manifest.files.onnx !== undefined) {
        // The IR is converted from the bundle's model.onnx; no TensorFlow.js needed (an edge install can do this).
        printLine(context, `ONNX: ${path.join(bundle, manifest.files.onnx)} (the bundle's, converted as it is)`);
      } else {
        const { exportBundleToOnnx } = await loadTrainingPackage('export');
        const exported = await exportBundleToOnnx(bundle);
        printLine(context, `ONNX: ${exported.path} (${(exported.bytes / 1e6).toFixed(1)} MB, input NHWC [batch, ${exported.manifest.model.inputShape.join(', ')}], dynamic batch)`);
      }
      if (format === 'onnx') return;
      const precisions: IrPrecision[] = flags.fp16 === true ? ['FP32', 'FP16'] : ['FP32'];
      for (const ir of await convertBundleToIr(bundle, precisions)) {
        // ir.xml is relative to the bundle folder: shown under the bundle as given, like the ONNX line above.
        printLine(context, `OpenVINO IR ${ir.precision}: ${path.join(bundle, ir.xml)}`);
      }
    });
}
