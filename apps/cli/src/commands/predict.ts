import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { ENGINE_CHOICES } from '../engine-choice.js';
import { parseChoice, parseInteger } from '../parse.js';
import { runPrediction, runQueuedPrediction, type PredictRunOptions, type PredictRunResult } from '../predict-run.js';
import { UsageError } from '../errors.js';
import { MODEL_OPTION_HELP, resolveModelArgument } from '../default-model.js';

interface PredictFlags {
  model?: string;
  out: string;
  engine: string;
  device?: string;
  tta?: boolean;
  largestComponent?: boolean;
  extendWindow: boolean;
  probabilities?: boolean;
  replaceNonFinite?: boolean;
  figures?: boolean;
  queue?: string;
  queueName?: string;
  wait?: boolean;
  attempts?: string;
  precision: string;
  jobs: string;
}

function describeCommand(command: Command, name: 'predict' | 'infer', context: CliContext, defaultEngine: string): void {
  command
    .argument('<input...>', 'dataset or case folders, 4D NIfTI files, or flair= t1w= t1gd= t2w= files')
    .option('--model <bundle>', MODEL_OPTION_HELP)
    .requiredOption('--out <dir>', 'folder for the label maps (and figures, report)')
    .option('--engine <name>', `engine: ${ENGINE_CHOICES.join(', ')}`, defaultEngine)
    .option('--device <name>', 'device for the runtime engines (CPU, GPU, NPU, AUTO)')
    .option('--precision <p>', 'fp32, or int8: the bundle\'s INT8 model (brats export --precision int8; onnxruntime, onnxruntime-web, openvino), which says what it costs', 'fp32')
    .option('--jobs <n>', 'cases in flight at once in this process: one decodes or writes while another is in the engine', '1')
    .option('--tta', 'average predictions over flipped slices (default: what the bundle chose on validation)')
    .option('--no-tta', 'predict the slices as they are only')
    .option('--largest-component', 'keep only the largest whole-tumour component (default: what the bundle chose on validation)')
    .option('--no-largest-component', 'keep every predicted component')
    .option('--no-extend-window', "segment the model's window alone (the seed's 144-voxel centre crop), not the scan beyond it where the predicted tumour reaches its edge")
    .option('--probabilities', 'also write float32 probability maps per region')
    .option('--replace-non-finite', 'set NaN or infinite image voxels to 0 (each case says how many) instead of refusing the case')
    .option('--figures', 'write the seed figures, overlay montages and report.html')
    .option('--queue <url>', 'submit one job per case to the BullMQ queue in Redis at redis://HOST:PORT[/DB] for brats worker processes on any machine')
    .option('--queue-name <name>', 'queue name (default brats-cohort)')
    .option('--wait', 'with --queue: follow every case to its end with one progress bar, then write predictions.json and the report')
    .option('--attempts <n>', 'with --queue: tries per case for failures that may pass (bad input fails at once)', '3')
    .action(async (inputs: string[], flags: PredictFlags) => {
      if (flags.queue === undefined && (flags.wait === true || flags.queueName !== undefined)) throw new UsageError(`${flags.wait === true ? '--wait' : '--queue-name'} needs --queue`);
      if (flags.queue !== undefined && flags.jobs !== '1') throw new UsageError('--jobs is for cases run in this process; with --queue, each brats worker sets its own --concurrency');
      const model = await resolveModelArgument(flags.model);
      const options: PredictRunOptions = {
        model,
        inputs,
        out: flags.out,
        engine: parseChoice('--engine', flags.engine, ENGINE_CHOICES),
        ...(flags.device === undefined ? {} : { device: flags.device }),
        tta: flags.tta,
        largestComponent: flags.largestComponent,
        ...(flags.extendWindow === false ? { extendWindow: false } : {}),
        probabilities: flags.probabilities === true,
        replaceNonFinite: flags.replaceNonFinite === true,
        figures: flags.figures === true,
        title: `brats ${name}`,
        runtimeOnly: name === 'infer',
        jobs: parseInteger('--jobs', flags.jobs, 1, 64),
        ...(parseChoice('--precision', flags.precision, ['fp32', 'int8'] as const) === 'int8' ? { int8: true } : {}),
      };
      let result: PredictRunResult;
      if (flags.queue === undefined) {
        result = await runPrediction(context, options);
      } else {
        const queued = await runQueuedPrediction(context, options, {
          url: flags.queue,
          wait: flags.wait === true,
          attempts: parseInteger('--attempts', flags.attempts ?? '3', 1, 100),
          ...(flags.queueName === undefined ? {} : { name: flags.queueName }),
        });
        if (queued === undefined) return;
        result = queued;
      }
      for (const entry of result.cases) {
        const volumes = Object.entries(entry.volumesMl).map(([region, ml]) => `${region} ${ml.toFixed(1)} mL`).join(', ');
        const dice = entry.evaluation === undefined ? '' : `  Dice ${Object.entries(entry.evaluation.regions).map(([r, v]) => `${r} ${v.dice.toFixed(4)}`).join(', ')}`;
        printLine(context, `${entry.id}: ${volumes}${dice}`);
        // A scan resampled to the model's spacing, and a tumour segmented beyond the model's window: the user hears it per case.
        for (const notice of entry.notices ?? []) printLine(context, `${entry.id}: ${notice}`);
        for (const warning of entry.warnings ?? []) context.stderr.write(`warning: case ${entry.id}: ${warning}\n`);
      }
      printLine(context, `${result.cases.length} label map(s) written to ${flags.out}`);
      if (result.reportPath !== undefined) printLine(context, `report: ${result.reportPath}`);
      if (result.failures.length > 0) {
        context.stderr.write(`${result.failures.length} case(s) failed:\n${result.failures.map((line) => `  - ${line}`).join('\n')}\n`);
        context.exitCode = 2;
      }
    });
}

/** `brats predict --model BUNDLE INPUT... --out DIR`: whole-scan segmentation with any engine. */
export function registerPredictCommand(program: Command, context: CliContext): void {
  describeCommand(program.command('predict').description('segment scans with a model bundle: label maps on the scan grid, optional figures and report'), 'predict', context, 'auto');
}

/** `brats infer`: `brats predict` with a runtime engine (OpenVINO when installed, else ONNX Runtime). */
export function registerInferCommand(program: Command, context: CliContext): void {
  describeCommand(program.command('infer').description('brats predict on an edge runtime engine (OpenVINO, else ONNX Runtime)'), 'infer', context, 'auto');
}
