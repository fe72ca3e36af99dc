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
import {
  LINEAGE_DUCK_COLUMNS,
  Superseded,
  lineageRead,
  lineageRowsPerSource,
  replaceSources,
} from './lineage';
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
    const { rows, bad, sourceRows, replacedRows } = await writeRows(c, job, target, sources, plan);
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
    await insertLoad(c, job, rows, replacedRows);
    throwIfAborted(signal);
    await stop.shielded(() => c.run('COMMIT'));
    const loaded: LoadResult = { outcome: 'loaded', jobId: job.jobId, rows };
    if (plan.changes.length > 0) loaded.schemaChanges = plan.changes;
    if (sourceRows) loaded.sourceRows = sourceRows;
    if (replacedRows) loaded.replacedRows = replacedRows;
    return bad.count > 0 ? { ...loaded, badRecords: bad } : loaded;
  } catch (error) {
    // A failed COMMIT has already ended the transaction, so ROLLBACK may fail too.
    if (inTransaction) await c.run('ROLLBACK').catch(() => undefined);
    throwIfAborted(signal, error);
    if (error instanceof Superseded) {
      return { outcome: 'superseded', jobId: job.jobId, newer: error.newer };
    }
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

/** What the rows' insert came to. */
interface Written {
  rows: number;
  bad: BadRecords;
  sourceRows?: number[];
  /** Lineage `append`: the rows each source had in the table before, deleted now. */
  replacedRows?: number[];
}

async function writeRows(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  sources: Sources,
  plan: WritePlan,
): Promise<Written> {
  const { partition, replacedRows } = await prepareTable(c, job, target, plan);
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
  for (const [i, read] of reads.entries()) {
    rows += await insertRead(c, job, target, sources.paths, read, {
      partition,
      lenient,
      refused: refused[i] ?? 0,
    });
  }
  // A header-only file loads no rows, as on BigQuery, which empties what a truncating write replaces.
  if (rows === 0 && bad.count > 0)
    throw new Rejection(`no data rows: all ${bad.count} rows are bad`);
  const written: Written = replacedRows ? { rows, bad, replacedRows } : { rows, bad };
  if (job.sources.length === 1) return written;
  const sourceRows = job.lineage
    ? await lineageRowsPerSource(c, target, job, rows)
    : await rowsPerSource(c, job, sources, plan.groups, rows);
  return { ...written, sourceRows };
}

/**
 * Makes the table what the rows need: created, or altered then emptied (`truncate`) or its partition
 * emptied (`partition`: the partition column's value, as SQL, comes back); on a lineage `append`, the
 * rows of the job's sources deleted (lineage.ts).
 */
async function prepareTable(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  plan: WritePlan,
): Promise<{ partition: string[]; replacedRows?: number[] }> {
  const { date } = plan;
  if (plan.create) {
    await createTable(c, target, plan.create.columns, date !== undefined, plan.create.replace);
  } else {
    // DuckDB refuses to alter a table this transaction already deleted from: alter first.
    await alterTable(c, target, plan.add, plan.relax);
    if (plan.empty) await c.run(`DELETE FROM ${target.sql}`);
  }
  let replacedRows: number[] | undefined;
  if (job.lineage && job.write === 'append') {
    replacedRows = plan.create ? job.sources.map(() => 0) : await replaceSources(c, target, job);
  }
  if (date === undefined) return { partition: [], replacedRows };
  await c.run(`DELETE FROM ${target.sql} WHERE ${quote(PARTITION_COLUMN)} = CAST($1 AS DATE)`, [
    date,
  ]);
  return { partition: [`CAST(${literal(date)} AS DATE)`], replacedRows };
}

/** Inserts the rows of one read, with their lineage on a lineage route; the rows inserted. */
async function insertRead(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  paths: string[],
  { columns, locate }: { columns: Column[]; locate: Locate },
  how: { partition: string[]; lenient: boolean; refused: number },
): Promise<number> {
  const lineage = job.lineage ? lineageRead(job, paths, locate.group) : undefined;
  const into = columns.map((column) => quote(column.name));
  if (lineage) into.push(...LINEAGE_DUCK_COLUMNS.map((column) => quote(column.name)));
  if (how.partition.length > 0) into.push(quote(PARTITION_COLUMN));
  const insert = (values: (column: Column) => string) =>
    `INSERT INTO ${target.sql} (${into.join(', ')}) SELECT ${[...columns.map(values), ...(lineage?.values ?? []), ...how.partition].join(', ')}`;
  const options =
    readCsvOptions(job, columns, locate.compression, how.lenient ? 'skip' : 'fail') +
    (lineage?.options ?? '');
  const from = `FROM read_csv($1, ${options})${lineage?.join ?? ''}`;
  // Rows with a refused value are left out, and the others need no second check.
  const sql =
    how.refused > 0
      ? `${insert(checkedExpression)} ${from} WHERE ${rowProblem(columns)} IS NULL`
      : `${insert(selectExpression)} ${from}`;
  try {
    return (await c.run(sql, [listValue(locate.group), ...(lineage?.params ?? [])])).rowsChanged;
  } catch (error) {
    if (!isRefusal(error)) throw error;
    throw new Refused(errorMessage(error), () => firstRefused(c, job, paths, locate));
  }
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
