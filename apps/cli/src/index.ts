import { Command, CommanderError } from 'commander';
import { COMMANDS, findCommand } from './commands/index.js';
import type { CliContext } from './context.js';
import { EXIT, describeError } from './errors.js';

export type { CliContext } from './context.js';
export { EXIT, UsageError } from './errors.js';

/** Options of {@link runCli}: streams default to the process's. */
export interface RunCliOptions {
  stdout?: NodeJS.WritableStream & CliContext['stdout'];
  stderr?: NodeJS.WritableStream & CliContext['stderr'];
  isTTY?: boolean;
}

/**
 * Runs the `brats` command line and resolves to its exit code (0 ok, 1 usage error, 2 bad input data,
 * 3 internal error). Never throws for a user error: it prints one line to stderr.
 * @param argv the arguments after the program name, e.g. `['inspect', 'scan.nii.gz']`.
 */
export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const verbose = argv.includes('--verbose');
  const context: CliContext = {
    stdout,
    stderr,
    isTTY: options.isTTY ?? (Boolean((stderr as NodeJS.WriteStream).isTTY) && process.env.CI === undefined),
    verbose,
    exitCode: EXIT.ok,
  };
  const program = new Command('brats')
    .description('Brain-tumour segmentation from raw MRI to the edge: the Intel NCS2 BraTS recipe in TypeScript.')
    .option('--verbose', 'print details (stack traces) on errors')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => stdout.write(text),
      writeErr: (text) => stderr.write(text),
    })
    .showHelpAfterError('(run with --help for usage)');
  try {
    const entry = findCommand(argv);
    if (entry !== undefined) {
      entry.start?.(argv);
      (await entry.load())(program, context);
    } else {
      // The listing only: names, arguments and summaries from the catalogue, no command's code loaded.
      for (const { name, summary } of COMMANDS) program.command(name).description(summary);
      const terms = new Map(COMMANDS.map(({ name, args }) => [name, `${name} [options]${args === '' ? '' : ` ${args}`}`]));
      program.configureHelp({ subcommandTerm: (command) => terms.get(command.name()) ?? command.name() });
    }
    program.commands.forEach((command) => command.exitOverride());
    await program.parseAsync([...argv], { from: 'user' });
    return context.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const { exitCode, line } = describeError(error);
    stderr.write(`${line}\n`);
    if (verbose && error instanceof Error && error.stack !== undefined) stderr.write(`${error.stack}\n`);
    return exitCode;
  }
}
