import type { DuckDBConnection } from '@duckdb/node-api';
import type { LoadJob } from '../warehouse';
import { PARTITION_COLUMN, tableColumns, type Column } from './catalog';
import { schemaColumns, sniffTypes } from './csv';
import { Rejection, uriOf } from './errors';
import { firstRecord, headerNames } from './header';
import type { Target } from './sql';

/** How a load writes to its table, decided before it writes anything. */
export interface WritePlan {
  /** The columns read from the files, in file order. */
  columns: Column[];
  /** The table columns they go to, in the same order. */
  into: string[];
  /** Create (or, for truncate, replace) the table with `columns` first. */
  create?: { replace: boolean };
  /** YYYY-MM-DD of a partition write. */
  date?: string;
}

export async function planWrite(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  paths: string[],
): Promise<WritePlan> {
  const date = job.write === 'partition' ? partitionDate(job.destination.partition) : undefined;
  const existing = await tableColumns(c, target);
  if (!existing && job.createDisposition === 'CREATE_NEVER') {
    throw new Rejection(`table ${target.id} does not exist and createDisposition is CREATE_NEVER`);
  }
  if (!existing || job.write === 'truncate') {
    // A truncating load replaces the table's schema too, as WRITE_TRUNCATE does in BigQuery.
    const columns =
      job.schema === 'auto' ? await detectColumns(c, job, paths) : schemaColumns(job.schema);
    const into = columns.map((column) => column.name);
    return { columns, into, create: { replace: existing !== undefined }, date };
  }
  if (date !== undefined && !existing.some((column) => column.name === PARTITION_COLUMN)) {
    throw new Rejection(
      `table ${target.id} is not partitioned: it has no ${PARTITION_COLUMN} column`,
    );
  }
  const data = existing.filter((column) => column.name !== PARTITION_COLUMN);
  const columns = await fitExisting(job, paths, target, data);
  return { columns, into: data.map((column) => column.name), date };
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

/** The columns to read a file with for an existing table: the table's, checked against the file's header. */
async function fitExisting(
  job: LoadJob,
  paths: string[],
  target: Target,
  table: Column[],
): Promise<Column[]> {
  if (job.schema !== 'auto') {
    const columns = schemaColumns(job.schema);
    checkNames(
      columns.map((column) => column.name),
      table,
      `the schema does not match table ${target.id}`,
    );
    return columns;
  }
  if (job.csv.skipLeadingRows > 0) {
    const header = await headerNames(job, paths, 0);
    checkNames(header, table, `the header of ${uriOf(job, 0)} does not match table ${target.id}`);
  }
  return table;
}

function checkNames(names: string[], table: Column[], problem: string): void {
  const want = table.map((column) => column.name);
  if (names.length !== want.length) {
    throw new Rejection(
      `${problem}: ${names.length} columns, the table has ${want.length} (${want.join(', ')})`,
    );
  }
  const index = names.findIndex((name, i) => name.toLowerCase() !== want[i]?.toLowerCase());
  if (index >= 0) {
    throw new Rejection(
      `${problem}: column ${index + 1} is "${names[index]}", the table has "${want[index]}"`,
    );
  }
}

/** BigQuery-style autodetect: names from the header row (or string_field_N), types sniffed by DuckDB. */
async function detectColumns(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
): Promise<Column[]> {
  const names =
    job.csv.skipLeadingRows > 0
      ? await headerNames(job, paths, 0)
      : (await firstRecord(job, paths, 0)).map((_, i) => `string_field_${i}`);
  const types = await sniffTypes(c, job, paths, names.length);
  return names.map((name, i) => ({ name, type: types[i] ?? 'VARCHAR', required: false }));
}
