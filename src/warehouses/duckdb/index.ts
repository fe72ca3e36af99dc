import type { DuckDBConnection } from '@duckdb/node-api';
import { promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { gsUri, type StoredObject } from '../../stores/store';
import type { ClaimStore, SwapResult } from '../../stores/claims';
import type { WarehouseInspector } from '../inspector';
import type { TableColumn } from '../../schema/columns';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type LoadResult,
  type TableInfo,
  type Warehouse,
} from '../warehouse';
import { bigQueryColumns, listTables } from './catalog';
import { batched } from './batched';
import { readLedgerHistory } from './history';
import { describeTables, previewTable } from './inspect';
import { insertRejection, jobRecords, readClaims, swapClaims } from './ledger';
import { loadJob } from './load';
import { closeSession, createSerialDb, openSession } from './session';
import { targetOf } from './sql';

export { FileBusyError } from './session';

/** Which file is at `file` now: its device and inode, or 'none'. */
function fileIdentity(file: string): string {
  const stat = statSync(file, { throwIfNoEntry: false });
  return stat ? `${stat.dev}:${stat.ino}` : 'none';
}

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
const COMPLETED_CACHE_SIZE = 10_000;
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
  // Ledger rows are never removed and job ids are deterministic: a job seen completed stays completed.
  const completed = new Map<string, number>();
  let knownFile: string | undefined;
  // The claims of the objects those jobs loaded: a redelivery of one needs no turn on the file.
  const loadedClaims = new Map<string, { jobId: string; at: number }>();
  const claimKey = (object: StoredObject, destination: string) =>
    `${gsUri(object)}#${object.generation}>${destination}`;
  // Columns per table for head checks; a load may change them, so it drops its table's entry.
  const columns = new Map<string, Promise<TableColumn[] | undefined>>();
  const file = path.resolve(options.file);
  const db = createSerialDb(file, {
    idleMs: options.idleMs ?? DEFAULT_IDLE_MS,
    lockWaitMs: options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    holdMs: options.holdMs ?? DEFAULT_HOLD_MS,
    gapMs: options.gapMs ?? DEFAULT_GAP_MS,
    onOpen: () => knowsFile(),
  });
  // Ledger rows are never removed from a file: what was learned of it holds until the file itself is
  // another one (deleted and created again), which every use of what was learned checks first.
  const knowsFile = (): void => {
    const identity = fileIdentity(file);
    if (identity === knownFile) return;
    knownFile = identity;
    completed.clear();
    loadedClaims.clear();
    columns.clear();
  };
  // Lookups that wait while a load holds the file are answered together when it is done.
  const readClaim = batched(db.run, readClaims);
  const lookUpJob = batched(db.run, jobRecords);
  const remember = (result: LoadResult, job?: LoadJob): LoadResult => {
    if (result.outcome === 'loaded' || result.outcome === 'duplicate') {
      completed.set(result.jobId, result.rows ?? 0);
      if (completed.size > COMPLETED_CACHE_SIZE)
        completed.delete(completed.keys().next().value as string);
      if (job?.write === 'append') {
        const destination = tableId(job.destination);
        const claim = { jobId: result.jobId, at: Date.now() };
        for (const source of job.sources) loadedClaims.set(claimKey(source, destination), claim);
        while (loadedClaims.size > COMPLETED_CACHE_SIZE)
          loadedClaims.delete(loadedClaims.keys().next().value as string);
      }
    }
    return result;
  };
  const readColumns = (destination: Destination, fresh = false) => {
    const key = tableId(destination);
    knowsFile();
    if (fresh || !columns.has(key)) {
      const read = db.run((c) => bigQueryColumns(c, targetOf({ destination })));
      columns.set(key, read);
      read.catch(() => columns.delete(key));
    }
    return columns.get(key) as Promise<TableColumn[] | undefined>;
  };
  // A load changes a table's columns when it creates the table or reports schema changes.
  const loaded = <T extends ClaimedLoadResult>(job: LoadJob, result: T): T => {
    const key = tableId(job.destination);
    const cached = columns.get(key);
    if (result.outcome === 'loaded' && result.schemaChanges?.length) columns.delete(key);
    else
      void cached?.then((known) => {
        if (!known && columns.get(key) === cached) columns.delete(key);
      });
    return result;
  };
  return {
    jobsPerDay: Infinity,
    pinsGenerations: true,
    tableColumns: readColumns,
    async load(job) {
      knowsFile();
      const rows = completed.get(job.jobId);
      if (rows !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows };
      const result = loaded(
        job,
        await db.run((c, stop) => loadJob(c, job, options.objectPath, stop)),
      );
      if (result.outcome === 'failed') throw new Error(`unexpected result of job ${job.jobId}`);
      return remember(result, job);
    },
    async loadClaimed(job) {
      const result = loaded(
        job,
        await db.run((c, stop) => loadJob(c, { ...job, claimed: true }, options.objectPath, stop)),
      );
      return result.outcome === 'failed' ? result : remember(result, job);
    },
    async followJob(jobId) {
      knowsFile();
      const rows = completed.get(jobId);
      if (rows !== undefined) return { result: { outcome: 'loaded', jobId, rows }, uris: [] };
      const record = await lookUpJob(jobId);
      if (!record) return undefined;
      if (record.outcome === 'loaded') {
        completed.set(jobId, record.rows);
        return { result: { outcome: 'loaded', jobId, rows: record.rows }, uris: record.uris };
      }
      const [first = 'rejected'] = record.reasons.values();
      return {
        result: { outcome: 'rejected', jobId, reason: first },
        uris: record.uris,
        reasons: Object.fromEntries(record.reasons),
      };
    },
    claims: {
      graceMs: options.claimGraceMs ?? DEFAULT_CLAIM_GRACE_MS,
      recordsEveryLoad: true,
      async read(object, destination) {
        knowsFile();
        const known = loadedClaims.get(claimKey(object, destination));
        if (known) return { claim: { ...known, destination }, version: known.jobId };
        const claim = await readClaim({ object, destination });
        if (claim && completed.has(claim.jobId))
          loadedClaims.set(claimKey(object, destination), claim);
        return claim ? { claim: { ...claim, destination }, version: claim.jobId } : { version: '' };
      },
      swap: (swaps) =>
        db.run(async (c) => {
          await c.run('BEGIN TRANSACTION');
          try {
            const won = await swapClaims(
              c,
              swaps.map((s) => ({ object: s.object, claim: s.claim, expected: s.version })),
            );
            await c.run('COMMIT');
            return swaps.map(({ claim }, i): SwapResult =>
              won[i] ? { kind: 'won', state: { claim, version: claim.jobId } } : { kind: 'lost' },
            );
          } catch (error) {
            await c.run('ROLLBACK').catch(() => undefined);
            throw error;
          }
        }),
    },
    completedRows: (jobId) => {
      knowsFile();
      return completed.get(jobId);
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
