import type { DuckDBConnection, Json } from '@duckdb/node-api';
import type { TableDetail, TablePreview } from '../inspector';
import { bigQueryType, listTables } from './catalog';
import { quote } from './sql';

/** Every table outside the ledger with its row count and columns, in name order. */
export async function describeTables(c: DuckDBConnection): Promise<TableDetail[]> {
  const reader = await c.runAndReadAll(
    `SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns
     WHERE table_catalog = current_database() AND table_schema <> '_ingest'
     ORDER BY table_schema, table_name, ordinal_position`,
  );
  const columns = new Map<string, TableDetail['columns']>();
  for (const [table, name, type] of reader.getRowsJS()) {
    const list = columns.get(String(table)) ?? [];
    list.push({ name: String(name), type: String(type), bigQueryType: bigQueryType(String(type)) });
    columns.set(String(table), list);
  }
  const tables = await listTables(c);
  return tables.map((t) => ({ ...t, columns: columns.get(t.table) ?? [] }));
}

/**
 * The first `limit` rows of `table` (`dataset.table`), or undefined when no such table exists. The
 * name is looked up in the catalog before it reaches SQL.
 */
export async function previewTable(
  c: DuckDBConnection,
  table: string,
  limit: number,
): Promise<TablePreview | undefined> {
  const found = await c.runAndReadAll(
    `SELECT table_schema, table_name FROM information_schema.tables
     WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'
       AND table_schema <> '_ingest' AND table_schema || '.' || table_name = $1`,
    [table],
  );
  const [schema, name] = found.getRowsJS()[0] ?? [];
  if (schema === undefined || name === undefined) return undefined;
  const rows = await c.runAndReadAll(
    `SELECT * FROM ${quote(String(schema))}.${quote(String(name))} LIMIT ${Math.max(0, Math.floor(limit))}`,
  );
  return {
    table,
    columns: rows.columnNames(),
    rows: rows.getRowsJson().map((row) => row.map(asText)),
  };
}

function asText(value: Json): string | null {
  if (value === null) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}
