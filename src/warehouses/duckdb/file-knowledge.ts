import { statSync } from 'node:fs';
import { gsUri, type StoredObject } from '../../stores/store';
import type { TableColumn } from '../../schema/columns';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type LoadResult,
} from '../warehouse';
import { bigQueryColumns } from './catalog';
import type { SerialDb } from './session';
import { targetOf } from './sql';

const COMPLETED_CACHE_SIZE = 10_000;

/** What the warehouse has learned of its file, to spare it turns on the file. */
export interface FileKnowledge {
  /** Rows of each job seen completed. */
  completed: Map<string, number>;
  /** The claim on an object (`claimKey`) whose job is completed. */
  loadedClaims: Map<string, { jobId: string; at: number }>;
  /** Forgets everything when the file at the path is another one than when it was learned. */
  checkFile(): void;
  /** Learns of a completed job (and, for an append, the claims of its sources); returns `result`. */
  remember(result: LoadResult, job?: LoadJob): LoadResult;
  /** Forgets the columns of the job's table where the load may have changed them; returns `result`. */
  afterLoad<T extends ClaimedLoadResult>(job: LoadJob, result: T): T;
  /** The table's columns, read once and kept; `fresh` reads them again. */
  tableColumns(destination: Destination, fresh?: boolean): Promise<TableColumn[] | undefined>;
}

export function claimKey(object: StoredObject, destination: string): string {
  return `${gsUri(object)}#${object.generation}>${destination}`;
}

/** Which file is at `file` now: its device and inode, or 'none'. */
function fileIdentity(file: string): string {
  const stat = statSync(file, { throwIfNoEntry: false });
  return stat ? `${stat.dev}:${stat.ino}` : 'none';
}

export function createFileKnowledge(file: string, db: SerialDb): FileKnowledge {
  // Ledger rows are never removed and job ids are deterministic: a job seen completed stays completed.
  const completed = new Map<string, number>();
  let knownFile: string | undefined;
  // The claims of the objects those jobs loaded: a redelivery of one needs no turn on the file.
  const loadedClaims = new Map<string, { jobId: string; at: number }>();
  // Columns per table for head checks; a load may change them, so it drops its table's entry.
  const columns = new Map<string, Promise<TableColumn[] | undefined>>();
  // Ledger rows are never removed from a file: what was learned of it holds until the file itself is
  // another one (deleted and created again), which every use of what was learned checks first.
  const checkFile = (): void => {
    const identity = fileIdentity(file);
    if (identity === knownFile) return;
    knownFile = identity;
    completed.clear();
    loadedClaims.clear();
    columns.clear();
  };
  const remember = (result: LoadResult, job?: LoadJob): LoadResult => {
    if (result.outcome === 'loaded' || result.outcome === 'duplicate') {
      completed.set(result.jobId, result.rows ?? 0);
      if (completed.size > COMPLETED_CACHE_SIZE)
        completed.delete(completed.keys().next().value as string);
      if (job?.write === 'append') rememberClaims(loadedClaims, job, result.jobId);
    }
    return result;
  };
  const tableColumns = (destination: Destination, fresh = false) => {
    const key = tableId(destination);
    checkFile();
    if (fresh || !columns.has(key)) {
      const read = db.run((c) => bigQueryColumns(c, targetOf({ destination })));
      columns.set(key, read);
      read.catch(() => columns.delete(key));
    }
    return columns.get(key) as Promise<TableColumn[] | undefined>;
  };
  // A load changes a table's columns when it creates the table or reports schema changes.
  const afterLoad = <T extends ClaimedLoadResult>(job: LoadJob, result: T): T => {
    const key = tableId(job.destination);
    const cached = columns.get(key);
    if (result.outcome === 'loaded' && result.schemaChanges?.length) columns.delete(key);
    else
      void cached?.then((known) => {
        if (!known && columns.get(key) === cached) columns.delete(key);
      });
    return result;
  };
  return { completed, loadedClaims, checkFile, remember, afterLoad, tableColumns };
}

function rememberClaims(
  loadedClaims: FileKnowledge['loadedClaims'],
  job: LoadJob,
  jobId: string,
): void {
  const destination = tableId(job.destination);
  const claim = { jobId, at: Date.now() };
  for (const source of job.sources) loadedClaims.set(claimKey(source, destination), claim);
  while (loadedClaims.size > COMPLETED_CACHE_SIZE)
    loadedClaims.delete(loadedClaims.keys().next().value as string);
}
