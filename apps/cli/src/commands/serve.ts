import { startServer } from '@brats/server';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
// Registers the TensorFlow.js engine (loaded only if a bundle without model.onnx needs it).
import '../engine-choice.js';
import { defaultModelPath } from '../default-model.js';
import { parseInteger } from '../parse.js';

interface ServeFlags {
  model?: string;
  port: string;
  host: string;
  dataDir?: string;
  engine: string;
  quiet?: boolean;
}

/**
 * `brats serve [--model BUNDLE] [--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--engine auto]`: the HTTP API
 * and viewer of @brats/server until SIGINT or SIGTERM; other settings come from BRATS_* environment variables.
 */
export function registerServeCommand(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('serve the segmentation API and the browser viewer (upload scans, get tumour masks)')
    .option('--model <bundle>', 'model bundle folder (default: the bundled pretrained model)')
    .option('--port <n>', 'TCP port (0 picks a free one)', '8080')
    .option('--host <address>', 'address to listen on (0.0.0.0 for every interface)', '127.0.0.1')
    .option('--data-dir <dir>', 'folder for uploads and results; jobs in it survive a restart (default ./brats-data or BRATS_DATA_DIR)')
    .option('--engine <name>', 'inference engine: auto, onnxruntime, openvino or tfjs', 'auto')
    .option('--quiet', 'no request log')
    .action(async (flags: ServeFlags) => {
      const port = parseInteger('--port', flags.port, 0, 65535);
      const model = flags.model ?? (await defaultModelPath());
      const server = await startServer({
        model,
        port,
        host: flags.host,
        engine: flags.engine,
        logger: flags.quiet !== true,
        ...(flags.dataDir === undefined ? {} : { dataDir: flags.dataDir }),
      });
      printLine(context, `brats server: ${server.url} (engine ${server.model.engine.name} on ${server.model.engine.device}: ${server.model.reason})`);
      printLine(context, `data: ${server.options.dataDir}; viewer: ${server.url}/; API: ${server.url}/openapi.json`);
      // Runs until the process is asked to stop; running jobs finish, queued ones run after the next start.
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      printLine(context, 'stopping: waiting for running jobs');
      await server.close();
    });
}
