import type { DuckDBConnection } from '@duckdb/node-api';
import type { TableColumn } from '../../schema/columns';
import type { CsvOptions, FieldType } from '../../config';
import type { StoredObject } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import type { Column } from './catalog';
import { literal, quote } from './sql';
import { convertedValue, isChecked, refusal } from './values';

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

/**
 * What DuckDB reads, one path per source, and how each is compressed. The text is UTF-8: sources.ts
 * copies the sources of an ISO-8859-1 route as UTF-8.
 */
export interface Reads {
  paths: string[];
  compressions: Compression[];
}

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
  { paths, compressions }: Reads,
  count: number,
): Promise<string[]> {
  const csv = job.csv;
  const sql =
    `SELECT Columns, TimestampFormat FROM sniff_csv($1, ${dialectOptions(csv, compressions[0] ?? 'none')}, ` +
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
    "encoding='utf-8'", // see Reads
    `compression=${literal(compression)}`,
  ].join(', ');
}

export const REJECTS_TABLE = '_ingest_reject_errors';
export const REJECTS_SCAN = '_ingest_reject_scans';

/**
 * How a read treats a malformed row: `fail` the statement, `store` it in the rejects tables (for
 * maxBadRecords), or `skip` it.
 */
export type MalformedRows = 'fail' | 'store' | 'skip';

/** The options of a strict `read_csv` with these columns. */
export function readCsvOptions(
  job: LoadJob,
  columns: Column[],
  compression: Compression,
  malformed: MalformedRows,
): string {
  const csv = job.csv;
  const types = columns.map((col) => `${literal(col.name)}: ${literal(readType(col.type))}`);
  const options = [
    dialectOptions(csv, compression),
    'auto_detect=false',
    'strict_mode=true',
    `null_padding=${csv.allowJaggedRows}`,
    `columns={${types.join(', ')}}`,
  ];
  if (malformed === 'skip') options.push('ignore_errors=true');
  if (malformed === 'store') {
    options.push(
      `ignore_errors=true, store_rejects=true, rejects_table='${REJECTS_TABLE}', rejects_scan='${REJECTS_SCAN}'`,
    );
  }
  return options.join(', ');
}

/**
 * The type the reader gives a column: BYTES is read as base64 text, and a type whose text is checked
 * against what BigQuery reads (values.ts) is read as text and cast in the select.
 */
function readType(type: string): string {
  return type === 'BLOB' || isChecked(type) ? 'VARCHAR' : type;
}

/** The value of a checked column that BigQuery would not read as its type, as [when, why] in SQL. */
function valueProblems(column: Column): [string, string][] {
  if (!isChecked(column.type)) return [];
  const name = quote(column.name);
  return [
    [`${name} IS NOT NULL AND ${convertedValue(name, column.type)} IS NULL`, refusal(column, name)],
  ];
}

/** The other checks BigQuery makes that the CSV reader does not, as [when, why] in SQL. */
function rowChecks(column: Column): [string, string][] {
  const name = quote(column.name);
  const checks: [string, string][] = [];
  if (column.required) {
    const why = `column "${column.name}" is REQUIRED but a row has no value`;
    checks.push([`${name} IS NULL`, literal(why)]);
  }
  if (column.type === 'VARCHAR' || column.type === 'BLOB' || column.type === 'JSON') {
    const why = `column "${column.name}" contains a NUL character (ASCII 0)`;
    checks.push([`contains(${name}, chr(0))`, literal(why)]);
  }
  return checks;
}

/** The value to insert, failing the statement where BigQuery would reject the row. */
export function selectExpression(column: Column): string {
  const name = quote(column.name);
  let value = column.type === 'BLOB' ? `from_base64(${name})` : name;
  if (isChecked(column.type)) {
    // COALESCE is lazy: the error is raised only for a value the cast refused.
    const cast = `COALESCE(${convertedValue(name, column.type)}, error(${refusal(column, name)}))`;
    value = `CASE WHEN ${name} IS NULL THEN NULL ELSE ${cast} END`;
  }
  const checks = rowChecks(column);
  if (checks.length === 0) return value;
  const cases = checks.map(([when, why]) => `WHEN ${when} THEN error(${why})`);
  return `CASE ${cases.join(' ')} ELSE ${value} END`;
}

/** The value to insert from a row `rowProblem` found no problem with. */
export function checkedExpression(column: Column): string {
  const name = quote(column.name);
  if (column.type === 'BLOB') return `from_base64(${name})`;
  return convertedValue(name, column.type, true);
}

/** Why a row read with these columns cannot load (SQL text, NULL when it can), for maxBadRecords. */
export function rowProblem(columns: Column[]): string {
  const checks = columns.flatMap((column) => [...valueProblems(column), ...rowChecks(column)]);
  if (checks.length === 0) return 'NULL';
  return `CASE ${checks.map(([when, why]) => `WHEN ${when} THEN ${why}`).join(' ')} END`;
}

/**
 * Sources of one compression, the SQL that reads one (`$1`) in file order (`n` numbers its rows,
 * `problem` says why one cannot load), and the SQL that counts the rows of them all (`$1`) with a
 * value that cannot load, storing the malformed ones in the rejects tables.
 */
export interface Locate {
  group: string[];
  compression: Compression;
  sql: string;
  count: string;
}

/** The reads that count and find the rows of these sources with a value that cannot load. */
export function locateRefused(
  job: LoadJob,
  columns: Column[],
  compression: Compression,
  group: string[],
): Locate {
  const problem = rowProblem(columns);
  const options = (malformed: MalformedRows) =>
    readCsvOptions(job, columns, compression, malformed);
  const sql = `SELECT row_number() OVER () AS n, ${problem} AS problem FROM read_csv($1, ${options('skip')}, parallel=false)`;
  const count = `SELECT count(*) FROM read_csv($1, ${options('store')}) WHERE ${problem} IS NOT NULL`;
  return { group, compression, sql, count };
}
