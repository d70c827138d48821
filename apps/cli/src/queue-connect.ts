/**
 * The CLI's way into @brats/queue (bullmq, ioredis): imported only by the queue commands and `--queue`, so no
 * other command loads them. A bad address is a usage error; an unreachable Redis is one line and exit code 2.
 */
import { CohortQueue, QueueUrlError, describePersistence, parseRedisUrl, type RedisInfo, type RedisTarget } from '@brats/queue';
import { printLine, type CliContext } from './context.js';
import { UsageError } from './errors.js';

/**
 * The parsed `--queue` address.
 * @throws {UsageError} for an address that is not redis://HOST[:PORT][/DB].
 */
export function queueTarget(url: string): RedisTarget {
  try {
    return parseRedisUrl(url);
  } catch (error) {
    if (error instanceof QueueUrlError) throw new UsageError(`--queue: ${error.message}`);
    throw error;
  }
}

/** Prints which Redis the command uses, what a restart of it would lose, and a warning when it may evict jobs. */
export function printRedis(context: CliContext, target: RedisTarget, info: RedisInfo, queueName: string): void {
  printLine(context, `queue: ${queueName} on ${target.display} (Redis ${info.version}; ${describePersistence(info)})`);
  if (info.maxmemoryPolicy !== 'noeviction' && info.maxmemoryPolicy !== 'unknown') {
    context.stderr.write(`warning: Redis maxmemory-policy is ${info.maxmemoryPolicy}; set it to noeviction, or Redis may drop queued jobs when memory is short\n`);
  }
}

/**
 * Opens the cohort queue at `url` and prints where it is.
 * @throws {UsageError} for a bad address; {@link RedisUnavailableError} when Redis does not answer within 3 s.
 */
export async function openCohortQueue(context: CliContext, url: string, name?: string): Promise<CohortQueue> {
  queueTarget(url);
  const queue = await CohortQueue.open(url, name === undefined ? {} : { name });
  printRedis(context, queue.target, queue.info, queue.name);
  return queue;
}
