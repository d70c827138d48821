// One cohort worker process for queue-bench.mjs: `node queue-worker.mjs REDIS_URL QUEUE_NAME [THREADS]`. Prints
// `ready` once it takes jobs; SIGTERM lets running jobs finish and exits.
import { startCohortWorker } from '@brats/queue';

const [url, name, threads] = process.argv.slice(2);
const worker = await startCohortWorker(url, { name, ...(threads === undefined ? {} : { threads: Number(threads) }) });
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker.close().then(() => process.exit(0));
});
