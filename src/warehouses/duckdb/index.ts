import type { DuckDBConnection } from '@duckdb/node-api';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ClaimStore } from '../../stores/claims';
import type { StoredObject } from '../../stores/store';
import type { WarehouseInspector } from '../inspector';
import type { FollowedJob, LoadJob, LoadResult, TableInfo, Warehouse } from '../warehouse';
import { listTables } from './catalog';
import { batched } from './batched';
import { ledgerClaims } from './claim-store';
import { readLedgerHistory } from './history';
import { describeTables, previewTable } from './inspect';
import { createKnown, type Known } from './known';
import { insertRejection, jobRecords, type JobRecord } from './ledger';
import { loadJob } from './load';
import { closeSession, createSerialDb, openSession } from './session';

export { FileBusyError } from './session';

export interface DuckDbWarehouseOptions {
  file: string;
  /** The local file holding an object's bytes. */
  objectPath: (object: StoredObject) => string;
  /**
   * The file is closed after this long without work, or at once when another process waits for it.
   * Opening it again costs more than the open: a load into a freshly opened file ran about a tenth
   * slower than into one held open.
   */
  idleMs?: number;
  /** How long to wait while another process holds the file before giving up with a TransientError. */
  lockWaitMs?: number;
  /**
   * While another process waits for the file, it is let go for `gapMs` between two jobs once it has
   * been held this long.
   */
  holdMs?: number;
  gapMs?: number;
  /** How long a claim without a committed job is left to its owner; default 5 s. */
  claimGraceMs?: number;
}

const DEFAULT_IDLE_MS = 2000;
const DEFAULT_LOCK_WAIT_MS = 5000;
const DEFAULT_HOLD_MS = 1000;
const DEFAULT_GAP_MS = 100;
// A job commits only while every member's claim names it, so taking over a claim is always safe
// here; the grace only spares the owner's work when it is merely slow.
const DEFAULT_CLAIM_GRACE_MS = 5000;

/**
 * BigQuery stand-in on an embedded DuckDB file: dataset = schema, table = table. Loads run one at a
 * time through a queue; the file is open only while work is queued, and let go for a moment during
 * sustained work when another process waits for it, so that `gcs-bq-ingest tables` can read it.
 */
export function createDuckDbWarehouse(
  options: DuckDbWarehouseOptions,
): Warehouse & { claims: ClaimStore; inspector: WarehouseInspector } {
  if (options.file === '') throw new Error('DuckDB warehouse: file must not be empty');
  const file = path.resolve(options.file);
  // Reads of the tables' columns take their turn on the file like any other work.
  const known: Known = createKnown(file, (work) => db.run(work));
  const db = createSerialDb(file, {
    idleMs: options.idleMs ?? DEFAULT_IDLE_MS,
    lockWaitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    holdMs: options.holdMs ?? DEFAULT_HOLD_MS,
    gapMs: options.gapMs ?? DEFAULT_GAP_MS,
    onOpen: () => known.check(),
  });
  // Lookups that wait while a load holds the file are answered together when it is done.
  const lookUpJob = batched(db.run, jobRecords);
  return {
    jobsPerDay: Infinity,
    pinsGenerations: true,
    tableColumns: (destination, fresh) => known.tableColumns(destination, fresh),
    async load(job) {
      known.check();
      const done = known.completed(job.jobId);
      if (done !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: done.rows };
      const result = known.loaded(
        job,
        await db.run((c, stop) => loadJob(c, job, options.objectPath, stop)),
      );
      if (result.outcome === 'failed') throw new Error(`unexpected result of job ${job.jobId}`);
      return known.remember(result, job);
    },
    async loadClaimed(job) {
      const claimed: LoadJob = { ...job, claimed: true };
      const result = known.loaded(
        job,
        await db.run((c, stop) => loadJob(c, claimed, options.objectPath, stop)),
      );
      return result.outcome === 'failed' ? result : known.remember(result, job);
    },
    followJob: (jobId) => followJob(known, lookUpJob, jobId),
    claims: ledgerClaims(db.run, known, options.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS),
    completedRows: (jobId) => {
      known.check();
      return known.completed(jobId)?.rows;
    },
    recordRejection: (job, reason) => db.run((c) => insertRejection(c, job, reason)),
    tables: () => db.run(listTables),
    // Reads for people take their turn in the queue, between loads.
    inspector: {
      tables: () => db.run(describeTables),
      preview: (table, limit) => db.run((c) => previewTable(c, table, limit)),
      history: (since, limit, rejectedOnly) =>
        db.run((c) => readLedgerHistory(c, since, limit, rejectedOnly)),
    },
    close: () => db.close(),
    abort: (reason) => db.abort(reason),
  };
}

/** What the ledger (or this process) knows of the job a claim names; undefined when it has none. */
async function followJob(
  known: Known,
  lookUp: (jobId: string) => Promise<JobRecord | undefined>,
  jobId: string,
): Promise<FollowedJob | undefined> {
  known.check();
  const done = known.completed(jobId);
  if (done !== undefined) return { result: { outcome: 'loaded', jobId, ...done }, uris: [] };
  const record = await lookUp(jobId);
  if (!record) return undefined;
  if (record.outcome === 'loaded') {
    const { rows, replacedRows } = record;
    known.complete(jobId, replacedRows ? { rows, replacedRows } : { rows });
    const result: LoadResult = { outcome: 'loaded', jobId, rows };
    if (replacedRows) result.replacedRows = replacedRows;
    return { result, uris: record.uris };
  }
  const [first = 'rejected'] = record.reasons.values();
  return {
    result: { outcome: 'rejected', jobId, reason: first },
    uris: record.uris,
    reasons: Object.fromEntries(record.reasons),
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
