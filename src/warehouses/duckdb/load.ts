import { constants, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { listValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { TransientError } from '../../errors';
import type { StoredObject } from '../../stores/store';
import type { LoadJob, LoadResult } from '../warehouse';
import { PARTITION_COLUMN, createTable } from './catalog';
import { DROP_REJECTS, badRows, compressionOf, readCsvOptions, selectExpression } from './csv';
import { Rejection, asWarehouseError, rejectionReason } from './errors';
import { insertLoad, insertRejection, ledgerRows } from './ledger';
import { planWrite, type WritePlan } from './plan';
import { quote, targetOf, type Target } from './sql';

/**
 * Loads a job in one transaction with its ledger row, or records why its data cannot load. A job id
 * already in the ledger is a duplicate.
 */
export async function loadJob(
  c: DuckDBConnection,
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
): Promise<LoadResult> {
  const target = targetOf(job);
  const done = await ledgerRows(c, job.jobId);
  if (done !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: done };
  if (Date.now() > job.deadline) {
    throw new TransientError(`job ${job.jobId} waited past its deadline for the DuckDB warehouse`);
  }
  const { paths, close } = await openSources(job, objectPath, target);
  let inTransaction = false;
  try {
    // Planning only reads, outside the transaction: a failed sniff would abort a transaction.
    const plan = await planWrite(c, job, target, paths);
    if (job.csv.maxBadRecords > 0) await c.run(DROP_REJECTS);
    await c.run('BEGIN TRANSACTION');
    inTransaction = true;
    const rows = await writeRows(c, job, target, paths, plan);
    await insertLoad(c, job, rows);
    await c.run('COMMIT');
    return { outcome: 'loaded', jobId: job.jobId, rows };
  } catch (error) {
    // A failed COMMIT has already ended the transaction, so ROLLBACK may fail too.
    if (inTransaction) await c.run('ROLLBACK').catch(() => undefined);
    const reason = rejectionReason(error, job, paths);
    if (reason === undefined) throw asWarehouseError(error, job, target);
    await insertRejection(c, job, reason);
    return { outcome: 'rejected', jobId: job.jobId, reason };
  } finally {
    await close();
  }
}

interface OpenSources {
  /** What DuckDB reads, one per source. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * Opens every source without following a symlink and hands DuckDB `/dev/fd/N` for it: DuckDB expands
 * `*`, `?` and `[` in file names as globs, and would follow a file swapped for a link meanwhile.
 */
async function openSources(
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
  target: Target,
): Promise<OpenSources> {
  const handles: FileHandle[] = [];
  const close = async () => {
    await Promise.all(handles.map((handle) => handle.close()));
  };
  try {
    for (const source of job.sources) {
      handles.push(await fs.open(objectPath(source), constants.O_RDONLY | constants.O_NOFOLLOW));
    }
  } catch (error) {
    await close();
    throw asWarehouseError(error, job, target);
  }
  if (process.platform === 'win32') return { paths: job.sources.map(objectPath), close };
  return { paths: handles.map((handle) => `/dev/fd/${handle.fd}`), close };
}

async function writeRows(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  paths: string[],
  plan: WritePlan,
): Promise<number> {
  const { columns, date } = plan;
  if (plan.create) await createTable(c, target, columns, date !== undefined, plan.create.replace);
  const into = [...plan.into];
  const select = columns.map(selectExpression);
  const params: DuckDBValue[] = [listValue([])];
  if (date !== undefined) {
    await c.run(`DELETE FROM ${target.sql} WHERE ${quote(PARTITION_COLUMN)} = CAST($1 AS DATE)`, [
      date,
    ]);
    into.push(PARTITION_COLUMN);
    select.push('CAST($2 AS DATE)');
    params.push(date);
  }
  let rows = 0;
  // One statement per compression: the descriptor paths carry no extension to infer it from.
  for (const compression of ['none', 'gzip'] as const) {
    const group = paths.filter((_, i) => compressionOf(job.sources[i]) === compression);
    if (group.length === 0) continue;
    params[0] = listValue(group);
    const sql =
      `INSERT INTO ${target.sql} (${into.map(quote).join(', ')}) ` +
      `SELECT ${select.join(', ')} FROM read_csv($1, ${readCsvOptions(job, columns, compression)})`;
    rows += (await c.run(sql, params)).rowsChanged;
  }
  const bad = job.csv.maxBadRecords > 0 ? await badRows(c, job, paths) : { count: 0, first: '' };
  if (bad.count > job.csv.maxBadRecords) {
    throw new Rejection(
      `too many bad rows: ${bad.count}, more than maxBadRecords ${job.csv.maxBadRecords}; first: ${bad.first}`,
    );
  }
  if (rows === 0)
    throw new Rejection(
      bad.count > 0 ? `no data rows: all ${bad.count} rows are bad` : 'no data rows',
    );
  return rows;
}
