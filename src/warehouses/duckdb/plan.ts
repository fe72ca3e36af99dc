import type { DuckDBConnection } from '@duckdb/node-api';
import {
  groupByHeader,
  planGroups,
  type SourceGroup,
  type TableColumn,
} from '../../schema/columns';
import { schemaChanges } from '../../schema/schema-changes';
import type { LoadJob } from '../warehouse';
import type { SourceHead } from '../../schema/columns';
import { PARTITION_COLUMN, tableColumns, toBigQuery, type Column } from './catalog';
import { duckColumn, sniffTypes, type Reads } from './csv';
import { Rejection, uriOf } from './errors';
import { sourceHead } from './header';
import { LINEAGE_DUCK_COLUMNS } from './lineage';
import type { Target } from './sql';

/** How a load writes to its table, decided before it writes anything. */
export interface WritePlan {
  /** Sources that share a header, each with the columns read from them, named as the table's. */
  groups: { indexes: number[]; columns: Column[] }[];
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
  const groups = groupByHeader(await sourceHeads(job, reads));
  const plan = planGroups(groups, job, before, target.id);
  if (plan !== 'fromFile' && 'rejected' in plan) {
    const uris = plan.indexes.map((i) => uriOf(job, i)).join(', ');
    throw new Rejection(groups.length > 1 ? `${plan.rejected} (${uris})` : plan.rejected);
  }
  const replace = existing !== undefined;
  if (plan === 'fromFile') {
    // BigQuery-style autodetect: names from the header row, types sniffed by DuckDB.
    const header = (groups[0] as SourceGroup).head.header;
    const types = await sniffTypes(c, job, reads, header.length);
    const columns = header.map((name, i) => ({
      name,
      type: types[i] ?? 'VARCHAR',
      required: false,
    }));
    // The lineage columns follow the file's.
    const created = job.lineage ? [...columns, ...LINEAGE_DUCK_COLUMNS] : columns;
    const changes = before ? schemaChanges(before, created.map(toBigQuery)) : [];
    const all = { indexes: job.sources.map((_, i) => i), columns };
    return {
      groups: [all],
      create: { replace, columns: created },
      add: [],
      relax: [],
      date,
      changes,
    };
  }
  const after = new Map(plan.table.map((column) => [column.name, column]));
  const read = plan.groups.map(({ indexes, into }) => ({
    indexes,
    columns: into.map((name) => duckColumn(after.get(name) as TableColumn)),
  }));
  const changes = before ? schemaChanges(before, plan.table) : [];
  if (!before || job.write === 'replace') {
    const created = plan.table.map(duckColumn);
    return {
      groups: read,
      create: { replace, columns: created },
      add: [],
      relax: [],
      date,
      changes,
    };
  }
  return {
    groups: read,
    empty: job.write === 'truncate',
    add: plan.added.map(duckColumn),
    relax: plan.relaxed,
    date,
    changes,
  };
}

/** Each source's head; a coalesced job's members were grouped by header already. */
async function sourceHeads(job: LoadJob, reads: Reads): Promise<SourceHead[]> {
  if (job.heads) return job.heads;
  const first = job.head ?? (await sourceHead(job, reads, 0));
  const heads = [first];
  for (let i = 1; i < job.sources.length; i++) {
    heads.push(job.claimed ? first : await sourceHead(job, reads, i));
  }
  return heads;
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
