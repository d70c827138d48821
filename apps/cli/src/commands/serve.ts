import { startServer } from '@brats/server';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
// Registers the TensorFlow.js engine (loaded only if a bundle without model.onnx needs it).
import '../engine-choice.js';
import { MODEL_OPTION_HELP, resolveModelArgument } from '../default-model.js';
import { UsageError } from '../errors.js';
import { parseInteger } from '../parse.js';

interface ServeFlags {
  model?: string;
  port: string;
  host: string;
  dataDir?: string;
  engine: string;
  quiet?: boolean;
  queue?: string;
  queueName?: string;
}

/**
 * `brats serve [--model BUNDLE] [--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--engine auto] [--queue URL]`: the
 * HTTP API and viewer of @brats/server until SIGINT or SIGTERM; other settings come from BRATS_* environment
 * variables. With `--queue`, uploads become jobs of a shared BullMQ queue run by `brats worker` processes, and
 * several servers sharing `--data-dir` answer for every job.
 */
export function registerServeCommand(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('serve the segmentation API and the browser viewer (upload scans, get tumour masks)')
    .option('--model <bundle>', MODEL_OPTION_HELP)
    .option('--port <n>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <address>', 'address to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--data-dir <dir>', 'folder for uploads and results; jobs in it survive a restart (default ./brats-data or BRATS_DATA_DIR)')
    .option('--engine <name>', 'inference engine: auto, onnxruntime, onnxruntime-web, openvino or tfjs', 'auto')
    .option('--quiet', 'no request log')
    .option('--queue <url>', 'send jobs to the BullMQ queue in Redis at redis://HOST:PORT[/DB], run by brats worker processes; every server and worker must share --data-dir')
    .option('--queue-name <name>', 'queue name (default brats-cohort)')
    .action(async (flags: ServeFlags) => {
      const port = parseInteger('--port', flags.port, 0, 65535);
      if (flags.queueName !== undefined && flags.queue === undefined) throw new UsageError('--queue-name needs --queue');
      const model = await resolveModelArgument(flags.model);
      // Loaded only with --queue: no other server pulls in bullmq and ioredis.
      const queue = flags.queue === undefined ? undefined : await (await import('../queue-connect.js')).openCohortQueue(context, flags.queue, flags.queueName);
      const server = await startServer({
        model,
        port,
        host: flags.host,
        engine: flags.engine,
        logger: flags.quiet !== true,
        ...(flags.dataDir === undefined ? {} : { dataDir: flags.dataDir }),
      }, process.env, queue === undefined ? {} : { queue }).catch(async (error: unknown) => {
        await queue?.close();
        throw error;
      });
      printLine(context, `brats server: ${server.url} (engine ${server.model.engine.name} on ${server.model.engine.device}: ${server.model.reason})`);
      printLine(context, `data: ${server.options.dataDir}; viewer: ${server.url}/; API: ${server.url}/openapi.json`);
      if (flags.queue !== undefined) printLine(context, `jobs go to the queue: run brats worker --queue ${flags.queue}${flags.queueName === undefined ? '' : ` --queue-name ${flags.queueName}`} where ${server.options.dataDir} is shared`);
      // Runs until the process is asked to stop; running jobs finish, queued ones run after the next start.
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      printLine(context, 'stopping: waiting for running jobs');
      await server.close();
    });
}
