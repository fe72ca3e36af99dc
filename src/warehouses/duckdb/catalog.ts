import type { DuckDBConnection } from '@duckdb/node-api';
import type { TableColumn } from '../../schema/columns';
import type { TableInfo } from '../warehouse';
import { identifier, quote, type Target } from './sql';

/** The column holding a partitioned table's partition date. */
export const PARTITION_COLUMN = '_PARTITIONDATE';

export interface Column {
  name: string;
  /** A DuckDB type. */
  type: string;
  required: boolean;
}

// Only this connection writes the file while it is open, so a table's columns change only through
// createTable; a new session (a new connection) starts with an empty cache.
const knownColumns = new WeakMap<DuckDBConnection, Map<string, Column[]>>();

/** The table's columns in order, or undefined when there is no such table. */
export async function tableColumns(
  c: DuckDBConnection,
  target: Target,
): Promise<Column[] | undefined> {
  const cache = knownColumns.get(c) ?? new Map<string, Column[]>();
  knownColumns.set(c, cache);
  const cached = cache.get(target.sql);
  if (cached) return cached;
  const columns = await readColumns(c, target);
  if (columns) cache.set(target.sql, columns);
  return columns;
}

async function readColumns(c: DuckDBConnection, target: Target): Promise<Column[] | undefined> {
  const reader = await c.runAndReadAll(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_catalog = current_database() AND table_schema = $1 AND table_name = $2
     ORDER BY ordinal_position`,
    [target.dataset, target.table],
  );
  const rows = reader.getRowsJS();
  if (rows.length === 0) return undefined;
  return rows.map(([name, type, nullable]) => ({
    name: String(name),
    type: String(type),
    required: nullable === 'NO',
  }));
}

/** The table's columns as BigQuery would describe them (the partition column aside), or undefined. */
export async function bigQueryColumns(
  c: DuckDBConnection,
  target: Target,
): Promise<TableColumn[] | undefined> {
  const columns = await readColumns(c, target);
  return columns?.filter((column) => column.name !== PARTITION_COLUMN).map(toBigQuery);
}

export function toBigQuery(column: Column): TableColumn {
  return {
    name: column.name,
    type: bigQueryType(column.type),
    mode: column.required ? 'REQUIRED' : 'NULLABLE',
  };
}

/** DuckDB's type as the BigQuery type it stands for (csv.ts maps the other way). */
export function bigQueryType(type: string): string {
  if (type.startsWith('DECIMAL')) return type === 'DECIMAL(38,18)' ? 'BIGNUMERIC' : 'NUMERIC';
  return DUCKDB_TO_BIGQUERY[type] ?? 'STRING';
}

const DUCKDB_TO_BIGQUERY: Record<string, string> = {
  VARCHAR: 'STRING',
  BIGINT: 'INT64',
  INTEGER: 'INT64',
  SMALLINT: 'INT64',
  TINYINT: 'INT64',
  HUGEINT: 'INT64',
  DOUBLE: 'FLOAT64',
  FLOAT: 'FLOAT64',
  BOOLEAN: 'BOOL',
  DATE: 'DATE',
  TIMESTAMP: 'DATETIME',
  'TIMESTAMP WITH TIME ZONE': 'TIMESTAMP',
  TIMESTAMPTZ: 'TIMESTAMP',
  TIME: 'TIME',
  BLOB: 'BYTES',
  JSON: 'JSON',
};

export async function createTable(
  c: DuckDBConnection,
  target: Target,
  columns: Column[],
  partitioned: boolean,
  replace: boolean,
): Promise<void> {
  const definitions = columns.map(
    (col) => `${quote(col.name)} ${col.type}${col.required ? ' NOT NULL' : ''}`,
  );
  if (partitioned) definitions.push(`${quote(PARTITION_COLUMN)} DATE NOT NULL`);
  knownColumns.get(c)?.delete(target.sql);
  await c.run(`CREATE SCHEMA IF NOT EXISTS ${identifier(target.dataset)}`);
  await c.run(
    `CREATE ${replace ? 'OR REPLACE ' : ''}TABLE ${target.sql} (${definitions.join(', ')})`,
  );
}

/** Adds NULLABLE columns and drops NOT NULL from others, inside the load's transaction. */
export async function alterTable(
  c: DuckDBConnection,
  target: Target,
  add: Column[],
  relax: string[],
): Promise<void> {
  if (add.length === 0 && relax.length === 0) return;
  knownColumns.get(c)?.delete(target.sql);
  for (const column of add) {
    await c.run(`ALTER TABLE ${target.sql} ADD COLUMN ${quote(column.name)} ${column.type}`);
  }
  for (const name of relax) {
    await c.run(`ALTER TABLE ${target.sql} ALTER COLUMN ${quote(name)} DROP NOT NULL`);
  }
}

/** Every table outside the ledger, with its row count. */
export async function listTables(c: DuckDBConnection): Promise<TableInfo[]> {
  const reader = await c.runAndReadAll(
    `SELECT table_schema, table_name FROM information_schema.tables
     WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' AND table_schema <> '_ingest'
     ORDER BY table_schema, table_name`,
  );
  const tables: TableInfo[] = [];
  for (const [schema, table] of reader.getRowsJS()) {
    const counted = await c.runAndReadAll(
      `SELECT count(*) FROM ${quote(String(schema))}.${quote(String(table))}`,
    );
    tables.push({
      table: `${String(schema)}.${String(table)}`,
      rows: Number(counted.getRowsJS()[0]?.[0] ?? 0),
    });
  }
  return tables;
}
