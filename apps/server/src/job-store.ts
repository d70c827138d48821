/**
 * Job records on disk: one folder per job under `<dataDir>/jobs/<id>/` holding `job.json`, the uploaded
 * `inputs/`, the predicted `mask.nii.gz` and, for a 4D upload, the extracted `scans/`. Records are written
 * atomically so a crash never leaves a half-written one, and they are read back at start-up.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, type RegionName } from '@brats/io';
import { MODALITY_ROLES, type ModalityRole } from '@brats/ncs2-runtime';

/** The sequences a user uploads, in canonical order (FLAIR, T1w, T1gd, T2w): the runtime's modality roles. */
export const SCAN_ROLES = MODALITY_ROLES;
/** One sequence of a case. */
export type ScanRole = ModalityRole;

/** Where a job is in its life. */
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** One value of the mask and what it shows. */
export interface MaskLabel {
  value: number;
  /** The innermost region the value belongs to (WT ⊃ TC ⊃ ET). */
  region: RegionName;
  meaning: string;
}

/** Seconds spent in each step of a job. */
export interface JobTimings {
  queuedSeconds: number;
  loadSeconds: number;
  inferenceSeconds: number;
  totalSeconds: number;
}

/** The stored state of one segmentation job (the body of `GET /v1/segmentations/:id`). */
export interface JobRecord {
  id: string;
  status: JobStatus;
  /** `4d`: one 4D NIfTI (frames FLAIR, T1w, T1gd, T2w); `roles`: four 3D files. */
  inputKind: '4d' | 'roles';
  /** File names under `inputs/`: `scan` for a 4D upload, else one per role. */
  inputFiles: Record<string, string>;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  expiresAt?: string;
  engine?: string;
  timings?: JobTimings;
  regions?: RegionName[];
  /** Tumour volume per region in millilitres. */
  volumesMl?: Partial<Record<RegionName, number>>;
  /** Scan grid `[i, j, k]` in voxels. */
  shape?: [number, number, number];
  labels?: MaskLabel[];
  /** Label convention of the mask: `wt` (0/1), `brats2017` (1/2/4), `brats2023` or `msd` (1/2/3). */
  labelConvention?: string;
  /** One line per choice the segmentation made (preprocessing, flips, largest component, threshold, labels). */
  reasons?: string[];
  /** The reasons to show beside the result: a scan resampled to the model's spacing, a tumour segmented beyond the model's window. */
  notices?: string[];
  /** What the user must know about the input (constant images, extra frames), one line each. */
  warnings?: string[];
  error?: { code: string; message: string };
  /** The job's id in the shared queue (`brats serve --queue`); absent when this server runs its jobs itself. */
  queueJobId?: string;
}

const RECORD_FILE = 'job.json';
const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Parses the `job.json` of folder `id`.
 * @throws {SyntaxError} for text that is not JSON; {@link Error} for JSON that is not this job's record.
 */
function readRecord(id: string, text: string): JobRecord {
  const record = JSON.parse(text) as Partial<JobRecord> | null;
  if (typeof record !== 'object' || record === null || record.id !== id || !STATUSES.includes(record.status as JobStatus) || typeof record.createdAt !== 'string') {
    throw new Error(`not the record of job ${id} (it needs id ${id}, a status and createdAt)`);
  }
  return record as JobRecord;
}

/** True for a well-formed job id (a lower-case UUID), the only names that ever become paths. */
export function isJobId(id: string): boolean {
  return ID_PATTERN.test(id);
}

const STATUSES: readonly JobStatus[] = ['queued', 'running', 'succeeded', 'failed'];

/** What {@link JobStore.open} tells its caller about job folders it could not use. */
export interface JobStoreOpenOptions {
  /**
   * Called for each job folder removed because its record is missing or unreadable, with the job id, why, and
   * the error; the job service logs it.
   */
  onDiscard?: (id: string, reason: string, error: unknown) => void;
  /**
   * The data folder is shared with other servers (`brats serve --queue`): a staging folder or a folder without a
   * record may be another server's upload in progress, so only those untouched for an hour are removed.
   */
  shared?: boolean;
}

/** How long a shared data folder's staging or record-less folder may sit before a starting server removes it. */
const SHARED_LEFTOVER_MS = 3600_000;

async function olderThan(directory: string, ms: number): Promise<boolean> {
  const stat = await fs.stat(directory).catch(() => undefined);
  return stat !== undefined && Date.now() - stat.mtimeMs > ms;
}

/** Job records in memory, mirrored to `<dataDir>/jobs`. */
export class JobStore {
  readonly root: string;
  readonly #records = new Map<string, JobRecord>();

  constructor(dataDir: string) {
    this.root = path.join(dataDir, 'jobs');
  }

  /** Folder of job `id` (ids are generated UUIDs, never user input). */
  directory(id: string): string {
    return path.join(this.root, id);
  }

  /** Where the staging folder of upload `id` is (created by {@link createStaging}). */
  stagingPath(id: string): string {
    return path.join(this.root, `.staging-${id}`);
  }

  /** A fresh staging folder for an upload that is not yet a job. */
  async createStaging(id: string): Promise<string> {
    const staging = this.stagingPath(id);
    await fs.mkdir(path.join(staging, 'inputs'), { recursive: true });
    return staging;
  }

  /**
   * Reads every stored job, deletes staging folders of interrupted uploads and job folders whose record is
   * missing or unreadable (each reported to `onDiscard`), and returns the jobs that were queued or running when
   * the server stopped (now queued again), oldest first.
   */
  async open(options: JobStoreOpenOptions = {}): Promise<JobRecord[]> {
    await fs.mkdir(this.root, { recursive: true });
    const pending: JobRecord[] = [];
    for (const name of await fs.readdir(this.root)) {
      const directory = path.join(this.root, name);
      if (name.startsWith('.staging-') || !isJobId(name)) {
        if (options.shared !== true || (await olderThan(directory, SHARED_LEFTOVER_MS))) await fs.rm(directory, { recursive: true, force: true });
        continue;
      }
      let record: JobRecord;
      try {
        record = readRecord(name, await fs.readFile(path.join(directory, RECORD_FILE), 'utf8'));
      } catch (error) {
        // Without a readable record there is nothing to serve: an upload that never became a job (no record), or
        // a record damaged on disk. Either way the folder goes, and the caller hears which and why.
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        // In a shared folder, a job folder without its record yet may be another server's upload in progress.
        if (options.shared === true && missing && !(await olderThan(directory, SHARED_LEFTOVER_MS))) continue;
        await fs.rm(directory, { recursive: true, force: true });
        options.onDiscard?.(name, missing ? `no ${RECORD_FILE}: an upload interrupted before it became a job` : `${RECORD_FILE} is unreadable`, error);
        continue;
      }
      if (record.status === 'queued' || record.status === 'running') {
        const { startedAt: _startedAt, ...rest } = record;
        record = { ...rest, status: 'queued' };
        await this.save(record);
        pending.push(record);
      } else {
        this.#records.set(record.id, record);
      }
    }
    return pending.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** The record of job `id`, or undefined. */
  get(id: string): JobRecord | undefined {
    return this.#records.get(id);
  }

  /**
   * The record of job `id` as stored on disk now (another server sharing the data folder may have written it), kept
   * in memory from then on; undefined when there is none or it cannot be read.
   */
  async load(id: string): Promise<JobRecord | undefined> {
    if (!isJobId(id)) return undefined;
    try {
      const record = readRecord(id, await fs.readFile(path.join(this.directory(id), RECORD_FILE), 'utf8'));
      this.#records.set(id, record);
      return record;
    } catch {
      return undefined;
    }
  }

  /** Forgets job `id` in memory only (another server sharing the data folder removed it). */
  forget(id: string): void {
    this.#records.delete(id);
  }

  /** Reads the records other servers sharing the data folder have written since this one started. */
  async rescan(): Promise<void> {
    const names = await fs.readdir(this.root).catch(() => [] as string[]);
    for (const name of names) if (isJobId(name) && !this.#records.has(name)) await this.load(name);
  }

  /** Every record. */
  list(): JobRecord[] {
    return [...this.#records.values()];
  }

  /** Stores `record` in memory and on disk (atomically). */
  async save(record: JobRecord): Promise<void> {
    this.#records.set(record.id, record);
    await writeFileAtomic(path.join(this.directory(record.id), RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
  }

  /** Removes job `id` and its files; when the files cannot be removed it throws and keeps the record, to retry. */
  async remove(id: string): Promise<void> {
    // Out of the map first, so nothing serves or runs the job while its files go.
    const record = this.#records.get(id);
    this.#records.delete(id);
    try {
      await fs.rm(this.directory(id), { recursive: true, force: true });
    } catch (error) {
      if (record !== undefined) this.#records.set(id, record);
      throw error;
    }
  }
}
