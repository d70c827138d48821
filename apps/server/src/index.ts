export { createServer, startServer, type BratsServer, type SharedParts } from './server.js';
export { buildApp, type AppParts } from './app.js';
export { resolveServerOptions, defaultConcurrency, type ServerOptions } from './options.js';
export { ApiError, QueueFullError } from './errors.js';
export { JobStore, SCAN_ROLES, isJobId, type JobRecord, type JobStatus, type JobTimings, type MaskLabel, type ScanRole } from './job-store.js';
export { JobService, type JobServiceOptions, type SharedJobOutcome, type SharedJobQueue } from './jobs.js';
export { createServerMetrics, type ServerMetrics } from './metrics.js';
export { describeJob, segmentJob, segmentationResultOf, MASK_FILE, type JobDescriptionOptions, type LoadedModel, type SegmentOptions, type SegmentationResult } from './segment.js';
export { stageUpload, SCAN_FIELD, type StagedUpload } from './upload.js';
