import type { DuckDBConnection } from '@duckdb/node-api';
import type { TableColumn } from '../../columns';
import type { CsvOptions, FieldType } from '../../config';
import type { StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import type { Column } from './catalog';
import { uriForPath } from './errors';
import { literal, quote } from './sql';

const REJECTS_TABLE = '_ingest_reject_errors';
const REJECTS_SCAN = '_ingest_reject_scans';

/** Clears what the last read with `maxBadRecords` left behind. */
export const DROP_REJECTS = `DROP TABLE IF EXISTS temp.${REJECTS_TABLE}; DROP TABLE IF EXISTS temp.${REJECTS_SCAN};`;

// DuckDB's DECIMAL is at most 38 digits wide, so BIGNUMERIC (76 digits in BigQuery) cannot fit whole.
const DUCKDB_TYPES: Record<FieldType, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  INTEGER: 'BIGINT',
  FLOAT64: 'DOUBLE',
  FLOAT: 'DOUBLE',
  NUMERIC: 'DECIMAL(38,9)',
  BIGNUMERIC: 'DECIMAL(38,18)',
  BOOL: 'BOOLEAN',
  BOOLEAN: 'BOOLEAN',
  DATE: 'DATE',
  DATETIME: 'TIMESTAMP',
  TIMESTAMP: 'TIMESTAMPTZ',
  TIME: 'TIME',
  BYTES: 'BLOB',
  JSON: 'JSON',
};

/** A BigQuery column as the DuckDB column that stands for it. */
export function duckColumn(column: TableColumn): Column {
  return {
    name: column.name,
    type: DUCKDB_TYPES[column.type as FieldType] ?? 'VARCHAR',
    required: column.mode === 'REQUIRED',
  };
}

export type Compression = 'none' | 'gzip';

export function compressionOf(source: StoredObject | undefined): Compression {
  return source?.name.endsWith('.gz') ? 'gzip' : 'none';
}

// BigQuery's autodetect scans up to the first 500 rows of one file. The sniffer's smallest sample is
// one vector, 2,048 rows (its default, ten vectors, took most of a sniff's time).
const SNIFF_ROWS = 2048;
// Twice the longest row allowed (DuckDB's max_line_size, 2 MB). The default buffer is several times
// that, and allocating it made a sniff on a freshly opened file take about 160 ms instead of 30.
const SNIFF_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Column types as DuckDB's sniffer sees them in the first rows of the first file. Dates are only
 * taken in BigQuery's YYYY-MM-DD form and timestamps only in the ISO forms DuckDB reads without a
 * format, as the strict read that follows uses no formats; anything else stays VARCHAR and the strict
 * read reports errors.
 */
export async function sniffTypes(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  count: number,
): Promise<string[]> {
  const csv = job.csv;
  const sql =
    `SELECT Columns, TimestampFormat FROM sniff_csv($1, ${dialectOptions(csv, compressionOf(job.sources[0]))}, ` +
    `null_padding=true, strict_mode=false, ignore_errors=true, dateformat='%Y-%m-%d', ` +
    `sample_size=${SNIFF_ROWS}, buffer_size=${SNIFF_BUFFER_BYTES})`;
  let row: Record<string, unknown> | undefined;
  try {
    row = (await c.runAndReadAll(sql, [paths[0] ?? ''])).getRowObjectsJS()[0];
  } catch {
    return []; // the sniffer gives up on files the strict read will reject with a precise reason
  }
  const columns = Array.isArray(row?.Columns) ? (row.Columns as unknown[]) : [];
  if (columns.length !== count) return [];
  const customTimestamps = row?.TimestampFormat !== null && row?.TimestampFormat !== undefined;
  return columns.map((column) => {
    const type = String((column as { type?: unknown } | null)?.type ?? 'VARCHAR');
    return customTimestamps && type.startsWith('TIMESTAMP') ? 'VARCHAR' : type;
  });
}

function dialectOptions(csv: CsvOptions, compression: Compression): string {
  return [
    `header=${csv.skipLeadingRows > 0}`,
    `skip=${Math.max(csv.skipLeadingRows - 1, 0)}`,
    `delim=${literal(csv.delimiter)}`,
    `quote=${literal(csv.quote)}`,
    `escape=${literal(csv.quote)}`,
    "comment=''",
    `nullstr=${literal(csv.nullMarker)}`,
    `encoding=${literal(csv.encoding === 'UTF-8' ? 'utf-8' : 'latin-1')}`,
    `compression=${literal(compression)}`,
  ].join(', ');
}

/** The options of a strict `read_csv` with these columns. */
export function readCsvOptions(job: LoadJob, columns: Column[], compression: Compression): string {
  const csv = job.csv;
  const types = columns.map((col) => `${literal(col.name)}: ${literal(readType(col.type))}`);
  const options = [
    dialectOptions(csv, compression),
    'auto_detect=false',
    'strict_mode=true',
    `null_padding=${csv.allowJaggedRows}`,
    `columns={${types.join(', ')}}`,
  ];
  if (csv.maxBadRecords > 0) {
    options.push(
      `ignore_errors=true, store_rejects=true, rejects_table='${REJECTS_TABLE}', rejects_scan='${REJECTS_SCAN}'`,
    );
  }
  return options.join(', ');
}

/** BigQuery reads BYTES from CSV as base64; every other type is read as itself. */
function readType(type: string): string {
  return type === 'BLOB' ? 'VARCHAR' : type;
}

/** The value to insert, with the checks BigQuery makes that the CSV reader does not. */
export function selectExpression(column: Column): string {
  const name = quote(column.name);
  const checks: [string, string][] = [];
  if (column.required)
    checks.push([`${name} IS NULL`, `column "${column.name}" is REQUIRED but a row has no value`]);
  if (readType(column.type) === 'VARCHAR' || column.type === 'JSON') {
    checks.push([
      `contains(${name}, chr(0))`,
      `column "${column.name}" contains a NUL character (ASCII 0)`,
    ]);
  }
  const value = column.type === 'BLOB' ? `from_base64(${name})` : name;
  if (checks.length === 0) return value;
  const cases = checks.map(([when, problem]) => `WHEN ${when} THEN error(${literal(problem)})`);
  return `CASE ${cases.join(' ')} ELSE ${value} END`;
}

/** The rows the reads with `maxBadRecords` skipped, and the first of them. */
export async function badRows(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
): Promise<{ count: number; first: string }> {
  const reader = await c.runAndReadAll(
    `SELECT (SELECT count(*) FROM (SELECT DISTINCT scan_id, file_id, line FROM temp.${REJECTS_TABLE})) AS bad,
            e.line, e.error_message, s.file_path
     FROM temp.${REJECTS_TABLE} e JOIN temp.${REJECTS_SCAN} s USING (scan_id, file_id)
     ORDER BY s.file_path, e.line LIMIT 1`,
  );
  const [count, line, message, file] = reader.getRowsJS()[0] ?? [0, 0, '', ''];
  const uri = uriForPath(job, paths, String(file));
  return { count: Number(count), first: `${String(message)} (line ${String(line)} of ${uri})` };
}
