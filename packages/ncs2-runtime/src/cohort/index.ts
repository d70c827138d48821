export { createCohortJobs, cohortJobId, cohortJobFingerprint, parseCohortJob, type CohortJob, type CohortJobOutputs, type CohortSettings } from './job.js';
export { CohortEngineCache, openModel, type ModelOpener, type ModelRequest, type OpenedModel } from './engines.js';
export { JobAbortedError, classifyCohortError, type CohortErrorKind } from './errors.js';
export { writeCaseFigures } from './figures.js';
export { completionRecordPath, decodeCohortResult, encodeCohortResult, runCohortJob, type CohortJobContext, type CohortJobResult } from './run-job.js';
export { runCohortInProcess, type CohortOutcome, type InProcessOptions } from './in-process.js';
