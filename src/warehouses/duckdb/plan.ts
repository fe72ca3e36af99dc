import type { DuckDBConnection } from '@duckdb/node-api';
import { planLoad, schemaChanges, type TableColumn } from '../../columns';
import { headerShape } from '../../jobs';
import type { LoadJob } from '../warehouse';
import { PARTITION_COLUMN, tableColumns, toBigQuery, type Column } from './catalog';
import { duckColumn, sniffTypes, type Reads } from './csv';
import { Rejection, uriOf } from './errors';
import { sourceHead } from './header';
import type { Target } from './sql';

/** How a load writes to its table, decided before it writes anything. */
export interface WritePlan {
  /** The columns read from the files, in file order, named as the table columns they go to. */
  columns: Column[];
  /** Create (or, for `replace`, replace) the table with `columns` first. */
  create?: { replace: boolean; columns: Column[] };
  /** Delete the table's rows first, keeping its schema (`truncate`). */
  empty?: boolean;
  /** Columns to add, and columns to make NULLABLE, before the rows go in. */
  add: Column[];
  relax: string[];
  /** YYYY-MM-DD of a partition write. */
  date?: string;
  /** What the load changes in the table's schema. */
  changes: string[];
}

export async function planWrite(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  reads: Reads,
): Promise<WritePlan> {
  const date = job.write === 'partition' ? partitionDate(job.destination.partition) : undefined;
  const existing = await tableColumns(c, target);
  if (!existing && job.createDisposition === 'CREATE_NEVER') {
    throw new Rejection(`table ${target.id} does not exist and createDisposition is CREATE_NEVER`);
  }
  if (
    existing &&
    date !== undefined &&
    !existing.some((column) => column.name === PARTITION_COLUMN)
  ) {
    throw new Rejection(
      `table ${target.id} is not partitioned: it has no ${PARTITION_COLUMN} column`,
    );
  }
  const before = existing?.filter((column) => column.name !== PARTITION_COLUMN).map(toBigQuery);
  const head = await sameHeader(job, reads);
  const plan = planLoad(head, job, before, target.id);
  if (plan !== 'fromFile' && 'rejected' in plan) throw new Rejection(plan.rejected);
  const replace = existing !== undefined;
  if (plan === 'fromFile') {
    // BigQuery-style autodetect: names from the header row, types sniffed by DuckDB.
    const types = await sniffTypes(c, job, reads, head.header.length);
    const columns = head.header.map((name, i) => ({
      name,
      type: types[i] ?? 'VARCHAR',
      required: false,
    }));
    const changes = before ? schemaChanges(before, columns.map(toBigQuery)) : [];
    return { columns, create: { replace, columns }, add: [], relax: [], date, changes };
  }
  const after = new Map(plan.table.map((column) => [column.name, column]));
  const columns = plan.into.map((name) => duckColumn(after.get(name) as TableColumn));
  if (!before || job.write === 'replace') {
    const created = plan.table.map(duckColumn);
    const changes = before ? schemaChanges(before, plan.table) : [];
    return { columns, create: { replace, columns: created }, add: [], relax: [], date, changes };
  }
  return {
    columns,
    empty: job.write === 'truncate',
    add: plan.added.map(duckColumn),
    relax: plan.relaxed,
    date,
    changes: schemaChanges(before, plan.table),
  };
}

/**
 * The first source's head; every other source must have the same header to share its job. A
 * coalesced job's members were grouped by header already.
 */
async function sameHeader(job: LoadJob, reads: Reads) {
  const first = job.head ?? (await sourceHead(job, reads, 0));
  for (let i = 1; i < (job.claimed ? 0 : job.sources.length); i++) {
    const other = await sourceHead(job, reads, i);
    if (headerShape(other) !== headerShape(first)) {
      throw new Rejection(
        `the header of ${uriOf(job, i)} (${other.header.join(',')}) differs from that of ${uriOf(job, 0)} (${first.header.join(',')}) in the same job`,
      );
    }
  }
  return first;
}

/** YYYYMMDD -> YYYY-MM-DD, checked to be a real day. */
function partitionDate(partition: string | undefined): string {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(partition ?? '');
  const iso = match ? `${match[1]}-${match[2]}-${match[3]}` : '';
  if (!match || Number.isNaN(Date.parse(iso)) || new Date(iso).toISOString().slice(0, 10) !== iso) {
    throw new Rejection(`partition "${partition ?? ''}" is not a date in YYYYMMDD form`);
  }
  return iso;
}
