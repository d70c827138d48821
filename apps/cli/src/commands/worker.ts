import path from 'node:path';
import { openModel, type ModelOpener } from '@brats/ncs2-runtime';
import { startCohortWorker, type CohortWorkerEvent } from '@brats/queue';
import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
// Registers the TensorFlow.js engine (loaded only if a bundle without model.onnx needs it).
import { ENGINE_CHOICES } from '../engine-choice.js';
import { UsageError } from '../errors.js';
import { parseChoice, parseInteger } from '../parse.js';
import { printRedis, queueTarget } from '../queue-connect.js';

interface WorkerFlags {
  queue: string;
  queueName?: string;
  concurrency: string;
  threads?: string;
  engine?: string;
  device?: string;
  lockDuration: string;
  stalledInterval: string;
  shutdownTimeout: string;
}

function seconds(value: number): string {
  return `${value.toFixed(value < 10 ? 2 : 1)} s`;
}

/** One line per thing that happened, for a person or a log collector. */
function describeEvent(event: CohortWorkerEvent): string {
  switch (event.type) {
    case 'started':
      return `started ${event.caseId} (job ${event.jobId}, attempt ${event.attempt})`;
    case 'completed': {
      const { result } = event;
      if (result.reused) return `done ${event.caseId} (job ${event.jobId}): kept the outputs an earlier attempt wrote in full: ${result.files[0]}`;
      const warnings = (result.warnings ?? []).map((warning) => `\n  warning: ${warning}`).join('');
      return `done ${event.caseId} (job ${event.jobId}) in ${seconds(result.timings.total)} on ${result.engine.name}: ${result.files[0]}${warnings}`;
    }
    case 'failed': {
      const after = event.willRetry ? 'will be retried' : event.kind === 'input' ? 'bad input, not retried' : 'no tries left';
      return `failed ${event.caseId} (job ${event.jobId}): ${event.reason} (${after})`;
    }
    case 'returned':
      return `returned ${event.caseId} (job ${event.jobId}) to the queue: this worker is stopping`;
    case 'stalled':
      return `put back job ${event.jobId}: its worker stopped renewing its lock (killed or cut off)`;
    case 'connection-lost':
      return `Redis does not answer (${event.message}); reconnecting`;
    case 'connection-restored':
      return 'Redis answers again';
    case 'error':
      return `queue error: ${event.message}`;
  }
}

/**
 * `brats worker --queue redis://HOST:PORT[/DB]`: runs cohort jobs from the queue until SIGINT or SIGTERM. The first
 * signal stops taking jobs and lets the running ones finish (those still running after --shutdown-timeout go back
 * to the queue); a second one exits at once (its jobs come back after the lock expires).
 */
export function registerWorkerCommand(program: Command, context: CliContext): void {
  program
    .command('worker')
    .description('run cohort jobs from a BullMQ queue in Redis (submitted by brats predict --queue) until stopped')
    .requiredOption('--queue <url>', 'the queue: redis://HOST:PORT[/DB]')
    .option('--queue-name <name>', 'queue name (default brats-cohort)')
    .option('--concurrency <n>', 'jobs run at once', '1')
    .option('--threads <n>', "threads per inference (default: the engine's, every core); with several workers on one machine, cores / workers")
    .option('--engine <name>', `run every job on this engine (${ENGINE_CHOICES.join(', ')}) instead of the one it names`)
    .option('--device <name>', 'with --engine: the device for a runtime engine (CPU, GPU, NPU, AUTO)')
    .option('--lock-duration <ms>', 'how long a job stays claimed without a sign of life from its worker (a killed worker holds its jobs this long)', '30000')
    .option('--stalled-interval <ms>', "how often this worker looks for jobs whose worker died, to put them back", '30000')
    .option('--shutdown-timeout <s>', 'on SIGTERM, seconds to let running jobs finish before returning them to the queue', '60')
    .action(async (flags: WorkerFlags) => {
      queueTarget(flags.queue);
      const concurrency = parseInteger('--concurrency', flags.concurrency, 1, 256);
      const threads = flags.threads === undefined ? undefined : parseInteger('--threads', flags.threads, 1, 1024);
      const lockDurationMs = parseInteger('--lock-duration', flags.lockDuration, 100);
      const stalledIntervalMs = parseInteger('--stalled-interval', flags.stalledInterval, 100);
      const shutdownSeconds = parseInteger('--shutdown-timeout', flags.shutdownTimeout, 0);
      const engine = flags.engine === undefined ? undefined : parseChoice('--engine', flags.engine, ENGINE_CHOICES);
      if (flags.device !== undefined && engine === undefined) throw new UsageError('--device needs --engine (a worker runs the engine and device each job names otherwise)');
      // Listening before anything else: a signal that came before its listener would end the process outright.
      let signals = 0;
      let stop: (signal: string) => void = () => {};
      const stopRequested = new Promise<string>((resolve) => (stop = resolve));
      const onSignal = (signal: NodeJS.Signals): void => {
        if (++signals === 1) return stop(signal);
        context.stderr.write('second signal: exiting now; the running jobs return to the queue once their locks expire\n');
        process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // Each bundle is loaded once; the line says which engine runs it and why.
        const open: ModelOpener = async (request) => {
          const model = await openModel(request);
          printLine(context, `engine: ${model.engine.name} on ${model.engine.device} for ${path.basename(request.bundle)} (${model.reason})`);
          return model;
        };
        const worker = await startCohortWorker(flags.queue, {
          concurrency,
          lockDurationMs,
          stalledIntervalMs,
          open,
          ...(threads === undefined ? {} : { threads }),
          ...(flags.queueName === undefined ? {} : { name: flags.queueName }),
          ...(engine === undefined ? {} : { engine: { name: engine, ...(flags.device === undefined ? {} : { device: flags.device }) } }),
          onEvent: (event) => {
            const line = describeEvent(event);
            if (event.type === 'failed' || event.type === 'connection-lost' || event.type === 'error') context.stderr.write(`${line}\n`);
            else printLine(context, line);
          },
        });
        printRedis(context, worker.target, worker.info, flags.queueName ?? 'brats-cohort');
        printLine(context, `worker ${worker.id} ready: ${concurrency} job(s) at a time, ${engine === undefined ? 'the engine each job names' : `engine ${engine}`}`);
        const signal = await stopRequested;
        printLine(context, `${signal}: stopping; ${worker.running} running job(s) may finish within ${shutdownSeconds} s, then go back to the queue (a second signal exits at once)`);
        await worker.close({ timeoutMs: shutdownSeconds * 1000 });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      printLine(context, 'worker stopped');
    });
}
