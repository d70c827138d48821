/** Prometheus metrics of one server (its own registry, so several servers in one process do not mix). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The counters, gauges and histograms a server updates. */
export interface ServerMetrics {
  registry: Registry;
  jobsSubmitted: Counter;
  jobsFinished: Counter<'status'>;
  uploadsRejected: Counter<'code'>;
  jobDuration: Histogram;
  inferenceDuration: Histogram;
  queueWaiting: Gauge;
  queueRunning: Gauge;
}

const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Creates the metrics of one server, with Node's process metrics (memory, CPU, event-loop lag) included. */
export function createServerMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    jobsSubmitted: new Counter({ name: 'brats_jobs_submitted_total', help: 'Segmentation jobs accepted (202).', registers: [registry] }),
    jobsFinished: new Counter({ name: 'brats_jobs_finished_total', help: 'Segmentation jobs finished, by status.', labelNames: ['status'], registers: [registry] }),
    uploadsRejected: new Counter({ name: 'brats_uploads_rejected_total', help: 'Uploads refused, by error code.', labelNames: ['code'], registers: [registry] }),
    jobDuration: new Histogram({ name: 'brats_job_duration_seconds', help: 'Seconds from a job starting to finishing.', buckets: DURATION_BUCKETS, registers: [registry] }),
    inferenceDuration: new Histogram({ name: 'brats_job_inference_seconds', help: 'Seconds a job spent in the engine.', buckets: DURATION_BUCKETS, registers: [registry] }),
    queueWaiting: new Gauge({ name: 'brats_queue_waiting', help: 'Jobs waiting to run.', registers: [registry] }),
    queueRunning: new Gauge({ name: 'brats_queue_running', help: 'Jobs running.', registers: [registry] }),
  };
}
