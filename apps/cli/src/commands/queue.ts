import type { Command } from 'commander';
import { printLine, type CliContext } from '../context.js';
import { UsageError } from '../errors.js';
import { parseInteger } from '../parse.js';
import { openCohortQueue } from '../queue-connect.js';

interface QueueFlags {
  queue: string;
  queueName?: string;
}

function withQueueOptions(command: Command): Command {
  return command.requiredOption('--queue <url>', 'the queue: redis://HOST:PORT[/DB]').option('--queue-name <name>', 'queue name (default brats-cohort)');
}

/**
 * `brats queue status|retry-failed|clear --queue redis://…`: what the cohort queue holds (done, active, waiting,
 * failed cases with their reasons), failed jobs back to the queue, or every job removed.
 */
export function registerQueueCommand(program: Command, context: CliContext): void {
  const queue = program.command('queue').description('look after a cohort queue: status, retry-failed, clear');

  withQueueOptions(queue.command('status').description('jobs done, running, waiting and failed, with the failed cases and why'))
    .option('--limit <n>', 'failed cases listed at most', '50')
    .option('--json', 'print JSON')
    .action(async (flags: QueueFlags & { limit: string; json?: boolean }) => {
      const limit = parseInteger('--limit', flags.limit, 0);
      const quiet: CliContext = flags.json === true ? { ...context, stdout: context.stderr } : context;
      const cohort = await openCohortQueue(quiet, flags.queue, flags.queueName);
      try {
        const counts = await cohort.counts();
        const workers = await cohort.workers();
        const failures = await cohort.failures(limit);
        if (flags.json === true) {
          printLine(context, JSON.stringify({ queue: cohort.name, redis: { url: cohort.target.display, ...cohort.info }, counts, workers, failed: failures }, null, 2));
          return;
        }
        printLine(context, `done ${counts.completed}, active ${counts.active}, waiting ${counts.waiting}, delayed ${counts.delayed} (retry pending), failed ${counts.failed}; workers ${workers}`);
        if (failures.total > 0) {
          printLine(context, `failed cases (${failures.total}${failures.cases.length < failures.total ? `, newest ${failures.cases.length} shown` : ''}):`);
          for (const failure of failures.cases) printLine(context, `  ${failure.caseId} (job ${failure.jobId}, ${failure.attempts} attempt(s)): ${failure.reason}`);
          printLine(context, `re-queue them (after fixing their inputs): brats queue retry-failed --queue ${flags.queue}`);
        }
      } finally {
        await cohort.close();
      }
    });

  withQueueOptions(queue.command('retry-failed').description('move every failed job back to the queue')).action(async (flags: QueueFlags) => {
    const cohort = await openCohortQueue(context, flags.queue, flags.queueName);
    try {
      printLine(context, `re-queued ${await cohort.retryFailed()} failed job(s)`);
    } finally {
      await cohort.close();
    }
  });

  withQueueOptions(queue.command('clear').description('remove every job (finished ones too), so the same cases can be submitted afresh'))
    .option('--force', 'also when jobs are running (their workers then fail to record them)')
    .action(async (flags: QueueFlags & { force?: boolean }) => {
      const cohort = await openCohortQueue(context, flags.queue, flags.queueName);
      try {
        const counts = await cohort.counts();
        if (counts.active > 0 && flags.force !== true) throw new UsageError(`${counts.active} job(s) are running: stop their workers first, or pass --force`);
        await cohort.clear(flags.force === true);
        printLine(context, `removed ${counts.completed + counts.active + counts.waiting + counts.delayed + counts.failed} job(s) from ${cohort.name}`);
      } finally {
        await cohort.close();
      }
    });
}
