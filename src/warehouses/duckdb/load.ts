import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import { TransientError, errorMessage } from '../../core/errors';
import type { StoredObject } from '../../stores/store';
import type { BadRecords, ClaimedLoadResult, LoadJob, LoadResult } from '../warehouse';
import { PARTITION_COLUMN, alterTable, createTable, type Column } from './catalog';
import { DROP_REJECTS, badRows, combine, firstRefused, refusedRows } from './bad-rows';
import {
  checkedExpression,
  locateRefused,
  readCsvOptions,
  rowProblem,
  selectExpression,
  type Locate,
} from './csv';
import { Rejection, asWarehouseError, rejectionReason } from './errors';
import { claimedFor, insertLoad, insertRejection, ledgerRows } from './ledger';
import { planWrite, type WritePlan } from './plan';
import { rowsPerSource } from './source-rows';
import { openSources, type Sources } from './sources';
import type { Stop } from './session';
import { literal, quote, targetOf, type Target } from './sql';

/**
 * Loads a job in one transaction with its ledger row, or records why its data cannot load. A job id
 * already in the ledger is a duplicate. A source that changed while it was read is `replaced`, and a
 * load stopped through `stop` fails with a TransientError; neither writes or records anything.
 */
export async function loadJob(
  c: DuckDBConnection,
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
  stop: Stop,
): Promise<ClaimedLoadResult> {
  const { signal } = stop;
  const target = targetOf(job);
  const done = await ledgerRows(c, job.jobId);
  if (done !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: done };
  if (Date.now() > job.deadline) {
    throw new TransientError(`job ${job.jobId} waited past its deadline for the DuckDB warehouse`);
  }
  const sources = await openSources(job, objectPath, target, signal).catch((error: unknown) => {
    throwIfAborted(signal, error);
    throw error;
  });
  let inTransaction = false;
  try {
    // Planning only reads, outside the transaction: a failed sniff would abort a transaction.
    const plan = await planWrite(c, job, target, sources);
    if (job.csv.maxBadRecords > 0) await c.run(DROP_REJECTS);
    throwIfAborted(signal);
    await c.run('BEGIN TRANSACTION');
    inTransaction = true;
    const { rows, bad, sourceRows } = await writeRows(c, job, target, sources, plan);
    const replaced = await sources.changed();
    if (replaced !== undefined) throw new Replaced(replaced);
    const broken = await sources.brokenGzip();
    if (broken !== undefined) throw new Rejection(broken);
    if (job.claimed && (await claimedFor(c, job)) !== job.sources.length) throw new ClaimMoved();
    if (job.trial) {
      inTransaction = false;
      await c.run('ROLLBACK');
      return { outcome: 'loaded', jobId: job.jobId, rows };
    }
    await insertLoad(c, job, rows);
    throwIfAborted(signal);
    await stop.shielded(() => c.run('COMMIT'));
    const loaded: LoadResult = { outcome: 'loaded', jobId: job.jobId, rows };
    if (plan.changes.length > 0) loaded.schemaChanges = plan.changes;
    if (sourceRows) loaded.sourceRows = sourceRows;
    return bad.count > 0 ? { ...loaded, badRecords: bad } : loaded;
  } catch (error) {
    // A failed COMMIT has already ended the transaction, so ROLLBACK may fail too.
    if (inTransaction) await c.run('ROLLBACK').catch(() => undefined);
    throwIfAborted(signal, error);
    if (error instanceof ClaimMoved) {
      const reason = 'a member was claimed for another job meanwhile; nothing was written';
      return { outcome: 'failed', jobId: job.jobId, reason, quota: false };
    }
    // DuckDB's message about a source that changed, or a gzip cut short, would blame the wrong thing.
    const replaced = error instanceof Replaced ? error.message : await sources.changed();
    if (replaced !== undefined) return { outcome: 'replaced', jobId: job.jobId, reason: replaced };
    const reason =
      (await sources.brokenGzip()) ??
      (error instanceof Refused ? await error.locate() : undefined) ??
      rejectionReason(error, job, sources.paths);
    if (reason === undefined) throw asWarehouseError(error, job, target);
    // A coalesced job's failure is recorded per rejected member, by the caller.
    if (!job.claimed && !job.trial) await insertRejection(c, job, reason);
    return { outcome: 'rejected', jobId: job.jobId, reason };
  } finally {
    await sources.close();
  }
}

/**
 * A value BigQuery would refuse stopped the insert. Where it is can only be asked once the failed
 * transaction has been rolled back.
 */
class Refused extends Error {
  constructor(
    message: string,
    readonly locate: () => Promise<string | undefined>,
  ) {
    super(message);
  }
}

/** The error `selectExpression` raises for a value BigQuery would refuse. */
function isRefusal(error: unknown): boolean {
  return /^Invalid Input Error: could not parse "/.test(errorMessage(error));
}

/** A member's claim names another job now: this one must not commit. */
class ClaimMoved extends Error {}

/** A source changed while it was read. */
class Replaced extends Error {}

/** Stops a load that `abort` interrupted (DuckDB's error, when it was interrupted, is the cause). */
function throwIfAborted(signal: AbortSignal, cause?: unknown): void {
  if (signal.aborted) throw new TransientError(errorMessage(signal.reason), { cause });
}

/**
 * Under maxBadRecords BigQuery skips and counts malformed rows and rows with a value it refuses.
 * Counting them before the insert spares it for a file over the limit (rejected here), and spares
 * the insert the filter when no value is refused. `refused` counts per group.
 */
async function countBad(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  locates: Locate[],
): Promise<{ bad: BadRecords; refused: number[] }> {
  const refused: BadRecords[] = [];
  for (const locate of locates) refused.push(await refusedRows(c, job, paths, locate));
  const bad = combine([await badRows(c, job, paths), ...refused]);
  if (bad.count > job.csv.maxBadRecords) {
    throw new Rejection(
      `too many bad rows: ${bad.count}, more than maxBadRecords ${job.csv.maxBadRecords}; first: ${bad.first}`,
    );
  }
  return { bad, refused: refused.map((r) => r.count) };
}

async function writeRows(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  sources: Sources,
  plan: WritePlan,
): Promise<{ rows: number; bad: BadRecords; sourceRows?: number[] }> {
  const { date } = plan;
  if (plan.create) {
    await createTable(c, target, plan.create.columns, date !== undefined, plan.create.replace);
  } else {
    // DuckDB refuses to alter a table this transaction already deleted from: alter first.
    await alterTable(c, target, plan.add, plan.relax);
    if (plan.empty) await c.run(`DELETE FROM ${target.sql}`);
  }
  const partition: string[] = [];
  if (date !== undefined) {
    await c.run(`DELETE FROM ${target.sql} WHERE ${quote(PARTITION_COLUMN)} = CAST($1 AS DATE)`, [
      date,
    ]);
    partition.push(`CAST(${literal(date)} AS DATE)`);
  }
  const reads = groupReads(job, sources, plan);
  const lenient = job.csv.maxBadRecords > 0;
  const { bad, refused } = lenient
    ? await countBad(
        c,
        job,
        sources.paths,
        reads.map((read) => read.locate),
      )
    : { bad: { count: 0, first: '' }, refused: [] };
  let rows = 0;
  for (const [i, { columns, locate }] of reads.entries()) {
    const into = columns.map((column) => quote(column.name));
    if (date !== undefined) into.push(quote(PARTITION_COLUMN));
    const insert = (values: (column: Column) => string) =>
      `INSERT INTO ${target.sql} (${into.join(', ')}) SELECT ${[...columns.map(values), ...partition].join(', ')}`;
    const options = readCsvOptions(job, columns, locate.compression, lenient ? 'skip' : 'fail');
    // Rows with a refused value are left out, and the others need no second check.
    const sql =
      (refused[i] ?? 0) > 0
        ? `${insert(checkedExpression)} FROM read_csv($1, ${options}) WHERE ${rowProblem(columns)} IS NULL`
        : `${insert(selectExpression)} FROM read_csv($1, ${options})`;
    try {
      rows += (await c.run(sql, [listValue(locate.group)])).rowsChanged;
    } catch (error) {
      if (!isRefusal(error)) throw error;
      throw new Refused(errorMessage(error), () => firstRefused(c, job, sources.paths, locate));
    }
  }
  // A header-only file loads no rows, as on BigQuery, which empties what a truncating write replaces.
  if (rows === 0 && bad.count > 0)
    throw new Rejection(`no data rows: all ${bad.count} rows are bad`);
  if (job.sources.length === 1) return { rows, bad };
  return { rows, bad, sourceRows: await rowsPerSource(c, job, sources, plan.groups, rows) };
}

/**
 * One read per header group and compression (the descriptor paths carry no extension to infer it
 * from), each with the columns its sources are read with.
 */
function groupReads(
  job: LoadJob,
  { paths, compressions }: Sources,
  plan: WritePlan,
): { columns: Column[]; locate: Locate }[] {
  return plan.groups.flatMap(({ indexes, columns }) =>
    (['none', 'gzip'] as const)
      .map((compression) => {
        const group = indexes
          .filter((i) => compressions[i] === compression)
          .map((i) => paths[i] as string);
        return { columns, locate: locateRefused(job, columns, compression, group) };
      })
      .filter(({ locate }) => locate.group.length > 0),
  );
}
