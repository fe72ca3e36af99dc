import type { DuckDBConnection } from '@duckdb/node-api';
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
