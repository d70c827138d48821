/**
 * The catalogue of `brats` sub-commands. Each command's code (and what it imports: TensorFlow.js, HDF5, the
 * server) loads only when that command runs, so `brats --help` and the inference commands start fast; the
 * names, arguments and one-line summaries here are what `brats --help` lists without loading any of them.
 */
import { prestartOrtThread } from '@brats/ncs2-runtime/ort-prestart';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';

/** A `brats` sub-command: adds itself to the program. */
export type CommandRegistration = (program: Command, context: CliContext) => void;

/** One sub-command: its name, its positional arguments as help shows them, its summary, and how to load it. */
export interface CommandEntry {
  readonly name: string;
  readonly args: string;
  readonly summary: string;
  readonly load: () => Promise<CommandRegistration>;
  /** Work the command starts before its code loads (that takes a tenth of a second on one core), given its arguments. */
  readonly start?: (argv: readonly string[]) => void;
}

/**
 * The engine option of a segmentation command's arguments (`--engine NAME` or `--engine=NAME`); 'auto' when absent.
 * Only a hint for {@link startNativeEngine}: commander parses the arguments for real.
 */
function engineArgument(argv: readonly string[]): string {
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--engine') return argv[index + 1] ?? 'auto';
    if (argument.startsWith('--engine=')) return argument.slice('--engine='.length);
  }
  return 'auto';
}

/** Whether a segmentation command's arguments will likely run the native ONNX Runtime engine: engine `auto` or `onnxruntime`, no help asked. */
export function nativeEngineLikely(argv: readonly string[]): boolean {
  if (argv.some((argument) => argument === '--help' || argument === '-h' || argument === 'help')) return false;
  const engine = engineArgument(argv);
  return engine === 'auto' || engine === 'onnxruntime';
}

/**
 * Starts the native ONNX Runtime engine's worker thread when a segmentation will likely run on it: it loads
 * onnxruntime-node on the other core while the command's code loads here, and the engine opened later adopts it.
 * Wasted (OpenVINO chosen by `auto`, bad arguments), it costs that core a moment and keeps no process alive.
 */
function startNativeEngine(argv: readonly string[]): void {
  if (nativeEngineLikely(argv)) prestartOrtThread();
}

/** Every sub-command, in the order `brats --help` lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'demo',
    args: '',
    summary: 'run the whole pipeline on synthetic phantoms (synth, convert, train, predict, evaluate, report)',
    load: async () => (await import('./demo.js')).registerDemoCommand,
  },
  {
    name: 'fetch',
    args: '',
    summary: 'download a Medical Segmentation Decathlon task (default Task01_BrainTumour, 7.6 GB), verify its MD5, extract it',
    load: async () => (await import('./fetch.js')).registerFetchCommand,
  },
  {
    name: 'synth',
    args: '',
    summary: 'write synthetic glioma phantoms (FLAIR, T1w, T1gd, T2w, labels) in a dataset layout, so every step runs without a download',
    load: async () => (await import('./synth.js')).registerSynthCommand,
  },
  {
    name: 'inspect',
    args: '<path>',
    summary: 'summarise a NIfTI file (header, dtype, shape, spacing, affine, values, labels), a dataset folder or an HDF5 slice store',
    load: async () => (await import('./inspect.js')).registerInspectCommand,
  },
  {
    name: 'convert',
    args: '<dataset>',
    summary: 'convert a dataset folder (Decathlon Task01, BraTS 2017-2021, BraTS 2023+) into an HDF5 slice store for training',
    load: async () => (await import('./convert.js')).registerConvertCommand,
  },
  {
    name: 'train',
    args: '',
    summary: 'train the 2D U-Net on an HDF5 slice store and write a model bundle (resumable with --resume)',
    load: async () => (await import('./train.js')).registerTrainCommand,
  },
  {
    name: 'pipeline',
    args: '<dataset>',
    summary: 'raw labelled scans to a scored model in one resumable command: convert, train, export, tune, evaluate, report',
    load: async () => (await import('./pipeline.js')).registerPipelineCommand,
  },
  {
    name: 'predict',
    args: '<input...>',
    summary: 'segment scans with a model bundle: label maps on the scan grid, optional figures and report',
    load: async () => (await import('./predict.js')).registerPredictCommand,
    start: startNativeEngine,
  },
  {
    name: 'evaluate',
    args: '',
    summary: 'score predicted label maps against a reference dataset (Dice, IoU, HD95, ASSD, volumes per region)',
    load: async () => (await import('./evaluate.js')).registerEvaluateCommand,
  },
  {
    name: 'tune',
    args: '<bundle>',
    summary: "choose the bundle's post-processing (flips, largest component) on its validation cases and record it in the manifest",
    load: async () => (await import('./tune.js')).registerTuneCommand,
  },
  {
    name: 'export',
    args: '<bundle>',
    summary: 'export a model bundle for the edge: model.onnx, and OpenVINO IR FP32 (+ FP16 with --fp16)',
    load: async () => (await import('./export.js')).registerExportCommand,
  },
  {
    name: 'infer',
    args: '<input...>',
    summary: 'brats predict on an edge runtime engine (OpenVINO, else ONNX Runtime)',
    load: async () => (await import('./predict.js')).registerInferCommand,
    start: startNativeEngine,
  },
  {
    name: 'engines',
    args: '',
    summary: 'list the inference engines (OpenVINO, ONNX Runtime): installed or not, versions, devices',
    load: async () => (await import('./engines.js')).registerEnginesCommand,
  },
  {
    name: 'bench',
    args: '',
    summary: "time a model bundle on an inference engine: latency per batch, slices/s, a 144-slice scan (the seed's --stats)",
    load: async () => (await import('./bench.js')).registerBenchCommand,
  },
  {
    name: 'serve',
    args: '',
    summary: 'serve the segmentation API and the browser viewer (upload scans, get tumour masks)',
    load: async () => (await import('./serve.js')).registerServeCommand,
  },
  {
    name: 'viewer',
    args: '',
    summary: 'write the viewer as a static site that segments in the browser (ONNX Runtime Web): no server, the scans never leave the machine',
    load: async () => (await import('./viewer.js')).registerViewerCommand,
  },
  {
    name: 'worker',
    args: '',
    summary: 'run cohort jobs from a BullMQ queue in Redis (brats predict --queue), on any machine that shares the input and output paths',
    load: async () => (await import('./worker.js')).registerWorkerCommand,
  },
  {
    name: 'queue',
    args: '<status|retry-failed|clear>',
    summary: 'a cohort queue: jobs done, running, waiting and failed (with reasons); re-queue the failed; remove every job',
    load: async () => (await import('./queue.js')).registerQueueCommand,
  },
];

/**
 * The command an argument list runs: the first argument that is not an option, or the one after `help`.
 * Undefined when there is none or it names no command (commander then prints the listing or the error).
 */
export function findCommand(argv: readonly string[]): CommandEntry | undefined {
  const words = argv.filter((argument) => !argument.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return COMMANDS.find((entry) => entry.name === name);
}
