import type { DuckDBConnection } from '@duckdb/node-api';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { StoredObject } from '../../stores/store';
import type { LoadResult, TableInfo, Warehouse } from '../warehouse';
import { listTables } from './catalog';
import { insertRejection } from './ledger';
import { loadJob } from './load';
import { closeSession, createSerialDb, openSession } from './session';

export { FileBusyError } from './session';

export interface DuckDbWarehouseOptions {
  file: string;
  /** The local file holding an object's bytes. */
  objectPath: (object: StoredObject) => string;
  /** The file is closed after this long without work, so that other processes can open it. */
  idleMs?: number;
  /** How long to wait while another process holds the file before giving up with a TransientError. */
  lockWaitMs?: number;
  /**
   * While another process waits for the file, it is let go for `gapMs` between two jobs once it has
   * been held this long.
   */
  holdMs?: number;
  gapMs?: number;
}

const DEFAULT_IDLE_MS = 250;
const DEFAULT_LOCK_WAIT_MS = 5000;
const DEFAULT_HOLD_MS = 1000;
const DEFAULT_GAP_MS = 100;
const COMPLETED_CACHE_SIZE = 10_000;

/**
 * BigQuery stand-in on an embedded DuckDB file: dataset = schema, table = table. Loads run one at a
 * time through a queue; the file is open only while work is queued, and let go for a moment during
 * sustained work when another process waits for it, so that `gcs-bq-ingest tables` can read it.
 */
export function createDuckDbWarehouse(options: DuckDbWarehouseOptions): Warehouse {
  if (options.file === '') throw new Error('DuckDB warehouse: file must not be empty');
  // Ledger rows are never removed and job ids are deterministic: while this process holds the file,
  // a job seen completed stays completed.
  const completed = new Map<string, number>();
  const db = createSerialDb(path.resolve(options.file), {
    idleMs: options.idleMs ?? DEFAULT_IDLE_MS,
    lockWaitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    holdMs: options.holdMs ?? DEFAULT_HOLD_MS,
    gapMs: options.gapMs ?? DEFAULT_GAP_MS,
    onRelease: () => completed.clear(),
  });
  const remember = (result: LoadResult): LoadResult => {
    if (result.outcome === 'loaded' || result.outcome === 'duplicate') {
      completed.set(result.jobId, result.rows ?? 0);
      if (completed.size > COMPLETED_CACHE_SIZE)
        completed.delete(completed.keys().next().value as string);
    }
    return result;
  };
  return {
    async load(job) {
      const rows = completed.get(job.jobId);
      if (rows !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows };
      return remember(await db.run((c, stop) => loadJob(c, job, options.objectPath, stop)));
    },
    completedRows: (jobId) => completed.get(jobId),
    recordRejection: (job, reason) => db.run((c) => insertRejection(c, job, reason)),
    tables: () => db.run(listTables),
    close: () => db.close(),
    abort: (reason) => db.abort(reason),
  };
}

/**
 * The tables of a DuckDB warehouse file, opened read-only. Waits up to `lockWaitMs` while another
 * process holds it, then fails with a FileBusyError naming that process.
 */
export function readDuckDbTables(
  file: string,
  options: { lockWaitMs?: number } = {},
): Promise<TableInfo[]> {
  return readDuckDbFile(file, listTables, [], options);
}

/**
 * `read` on the warehouse file opened read-only, waiting while another process holds it, or `none`
 * when there is no file yet (nothing is created).
 */
export async function readDuckDbFile<T>(
  file: string,
  read: (c: DuckDBConnection) => Promise<T>,
  none: T,
  options: { lockWaitMs?: number } = {},
): Promise<T> {
  if (!(await exists(file))) return none;
  const session = await openSession(file, options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS, true);
  try {
    return await read(session.connection);
  } finally {
    closeSession(session);
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
