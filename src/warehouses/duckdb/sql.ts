import { tableId, type LoadJob } from '../warehouse';

const IDENTIFIER = /^[A-Za-z0-9_]+$/;

/** A job's destination table. */
export interface Target {
  /** `dataset.table` as BigQuery names it, for messages. */
  id: string;
  dataset: string;
  table: string;
  /** Quoted `"dataset"."table"`. */
  sql: string;
}

export function targetOf(job: Pick<LoadJob, 'destination'>): Target {
  const { dataset, table } = job.destination;
  return {
    id: tableId(job.destination),
    dataset,
    table,
    sql: `${identifier(dataset)}.${identifier(table)}`,
  };
}

/** A dataset or table name, checked once more before it reaches SQL. */
export function identifier(name: string): string {
  if (!IDENTIFIER.test(name))
    throw new Error(`DuckDB warehouse: "${name}" is not a valid dataset or table name`);
  return `"${name}"`;
}

/** A name from data (a CSV header, an existing table) as a quoted identifier. */
export function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function literal(value: string): string {
  if (value.includes('\0')) throw new Error('DuckDB warehouse: NUL byte in a SQL string');
  return `'${value.replaceAll("'", "''")}'`;
}
