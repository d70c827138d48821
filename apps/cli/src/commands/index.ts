import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { registerBenchCommand } from './bench.js';
import { registerConvertCommand } from './convert.js';
import { registerEnginesCommand } from './engines.js';
import { registerDemoCommand } from './demo.js';
import { registerEvaluateCommand } from './evaluate.js';
import { registerExportCommand } from './export.js';
import { registerFetchCommand } from './fetch.js';
import { registerInspectCommand } from './inspect.js';
import { registerInferCommand, registerPredictCommand } from './predict.js';
import { registerServeCommand } from './serve.js';
import { registerSynthCommand } from './synth.js';
import { registerTrainCommand } from './train.js';

/** A `brats` sub-command: adds itself to the program. */
export type CommandRegistration = (program: Command, context: CliContext) => void;

/** Every sub-command, in the order `brats --help` lists them. */
export const COMMANDS: readonly CommandRegistration[] = [registerDemoCommand, registerFetchCommand, registerSynthCommand, registerInspectCommand, registerConvertCommand, registerTrainCommand, registerPredictCommand, registerEvaluateCommand, registerExportCommand, registerInferCommand, registerEnginesCommand, registerBenchCommand, registerServeCommand];
