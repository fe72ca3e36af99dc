import { constants, createReadStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { createGunzip } from 'node:zlib';
import {
  DuckDBInstance,
  listValue,
  type DuckDBConnection,
  type DuckDBValue,
} from '@duckdb/node-api';
import type { CsvOptions, FieldType, SchemaField } from '../config';
import { TransientError, errorMessage } from '../errors';
import { gsUri, type StoredObject } from '../stores/store';
import {
  tableId,
  type LoadJob,
  type LoadResult,
  type TableInfo,
  type Warehouse,
} from './warehouse';

export interface DuckDbWarehouseOptions {
  file: string;
  /** The local file holding an object's bytes. */
  objectPath: (object: StoredObject) => string;
  /** The file is closed after this long without work, so that other processes can open it. */
  idleMs?: number;
  /** How long to wait while another process holds the file before giving up with a TransientError. */
  lockWaitMs?: number;
}

const DEFAULT_IDLE_MS = 250;
const DEFAULT_LOCK_WAIT_MS = 5000;
const PARTITION_COLUMN = '_PARTITIONDATE';
const REJECTS_TABLE = '_ingest_reject_errors';
const REJECTS_SCAN = '_ingest_reject_scans';
const MAX_HEADER_BYTES = 1024 * 1024;
const IDENTIFIER = /^[A-Za-z0-9_]+$/;
const CSV_PROBLEM =
  /^(Error when converting column|Value with unterminated quote|Expected Number of Columns|Invalid unicode|Maximum line size|Line does not fit|Could not convert)/;

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

const LEDGER_DDL = `
  CREATE SCHEMA IF NOT EXISTS _ingest;
  CREATE TABLE IF NOT EXISTS _ingest.loads (
    job_id VARCHAR PRIMARY KEY, uris VARCHAR[] NOT NULL, generations VARCHAR[] NOT NULL,
    destination VARCHAR NOT NULL, write_mode VARCHAR NOT NULL, rows BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL);
  CREATE TABLE IF NOT EXISTS _ingest.rejections (
    job_id VARCHAR NOT NULL, uris VARCHAR[] NOT NULL, reason VARCHAR NOT NULL, "at" TIMESTAMPTZ NOT NULL);`;

interface Column {
  name: string;
  /** A DuckDB type. */
  type: string;
  required: boolean;
}

interface Target {
  /** `dataset.table` as BigQuery names it, for messages. */
  id: string;
  dataset: string;
  table: string;
  /** Quoted `"dataset"."table"`. */
  sql: string;
}

/** The data cannot load: becomes a `rejected` result. */
class Rejection extends Error {}

/**
 * BigQuery stand-in on an embedded DuckDB file: dataset = schema, table = table. Loads run one at a
 * time through a queue; the file is open only while work is queued, so that `gcs-bq-ingest tables`
 * in another process can read it while the server idles.
 */
export function createDuckDbWarehouse(options: DuckDbWarehouseOptions): Warehouse {
  if (options.file === '') throw new Error('DuckDB warehouse: file must not be empty');
  const db = createSerialDb(
    path.resolve(options.file),
    options.idleMs ?? DEFAULT_IDLE_MS,
    options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
  );
  return {
    load: (job) => db.run((c) => loadJob(c, job, options.objectPath)),
    recordRejection: (job, reason) => db.run((c) => insertRejection(c, job, reason)),
    tables: () => db.run(listTables),
    close: () => db.close(),
  };
}

/** The tables of a DuckDB warehouse file, opened read-only; waits while another process holds it. */
export async function readDuckDbTables(
  file: string,
  options: { lockWaitMs?: number } = {},
): Promise<TableInfo[]> {
  if (!(await exists(file))) return [];
  const session = await openSession(file, options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS, true);
  try {
    return await listTables(session.connection);
  } finally {
    closeSession(session);
  }
}

// ---------------------------------------------------------------------------------------------
// The file: one session at a time, opened on demand and closed when idle.

interface Session {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
}

function createSerialDb(file: string, idleMs: number, lockWaitMs: number) {
  let session: Session | undefined;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const release = () => {
    if (pending > 0 || !session) return;
    closeSession(session);
    session = undefined;
  };
  const run = <T>(work: (c: DuckDBConnection) => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error(`DuckDB warehouse ${file} is closed`));
    pending += 1;
    clearTimeout(idleTimer);
    const result = tail.then(async () => {
      session ??= await openSession(file, lockWaitMs, false);
      return work(session.connection);
    });
    tail = result.then(settled, settled);
    return result;
  };
  const settled = () => {
    pending -= 1;
    if (pending === 0) idleTimer = setTimeout(release, idleMs).unref();
  };
  const close = async () => {
    closed = true;
    await tail;
    clearTimeout(idleTimer);
    release();
  };
  return { run, close };
}

async function openSession(file: string, lockWaitMs: number, readOnly: boolean): Promise<Session> {
  if (!readOnly) await fs.mkdir(path.dirname(file), { recursive: true });
  const deadline = Date.now() + lockWaitMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    let instance: DuckDBInstance | undefined;
    try {
      instance = await DuckDBInstance.create(file, readOnly ? { access_mode: 'READ_ONLY' } : {});
      const connection = await instance.connect();
      if (!readOnly) await connection.run(LEDGER_DDL);
      return { instance, connection };
    } catch (error) {
      instance?.closeSync();
      const locked = /Could not set lock|Conflicting lock/i.test(errorMessage(error));
      if (locked && Date.now() + delay < deadline) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      const message = `DuckDB file ${file} cannot be opened: ${firstLine(errorMessage(error))}`;
      if (locked || /^IO Error/.test(errorMessage(error)))
        throw new TransientError(message, { cause: error });
      throw new Error(message, { cause: error });
    }
  }
}

function closeSession(session: Session): void {
  session.connection.closeSync();
  session.instance.closeSync();
}

// ---------------------------------------------------------------------------------------------
// Loading

async function loadJob(
  c: DuckDBConnection,
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
): Promise<LoadResult> {
  const target = targetOf(job);
  const done = await ledgerRows(c, job.jobId);
  if (done !== undefined) return { outcome: 'duplicate', jobId: job.jobId, rows: done };
  if (Date.now() > job.deadline) {
    throw new TransientError(`job ${job.jobId} waited past its deadline for the DuckDB warehouse`);
  }
  const sources = await openSources(job, objectPath);
  const paths = sources.paths;
  let inTransaction = false;
  try {
    // Planning only reads, outside the transaction: a failed sniff would abort a transaction.
    const plan = await planWrite(c, job, target, paths);
    await c.run(
      `DROP TABLE IF EXISTS temp.${REJECTS_TABLE}; DROP TABLE IF EXISTS temp.${REJECTS_SCAN};`,
    );
    await c.run('BEGIN TRANSACTION');
    inTransaction = true;
    const rows = await writeRows(c, job, target, paths, plan);
    await c.run('INSERT INTO _ingest.loads VALUES ($1, $2, $3, $4, $5, $6, now())', [
      job.jobId,
      listValue(job.sources.map(gsUri)),
      listValue(job.sources.map((s) => s.generation)),
      destinationOf(job),
      job.write,
      BigInt(rows),
    ]);
    await c.run('COMMIT');
    return { outcome: 'loaded', jobId: job.jobId, rows };
  } catch (error) {
    // A failed COMMIT has already ended the transaction, so ROLLBACK may fail too.
    if (inTransaction) await c.run('ROLLBACK').catch(() => undefined);
    const reason = rejectionReason(error, job, paths);
    if (reason === undefined) throw asWarehouseError(error, job, target);
    await insertRejection(c, job, reason);
    return { outcome: 'rejected', jobId: job.jobId, reason };
  } finally {
    await sources.close();
  }
}

interface OpenSources {
  /** What DuckDB reads, one per source. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * Opens every source without following a symlink and hands DuckDB `/dev/fd/N` for it: DuckDB expands
 * `*`, `?` and `[` in file names as globs, and would follow a file swapped for a link meanwhile.
 */
async function openSources(
  job: LoadJob,
  objectPath: (object: StoredObject) => string,
): Promise<OpenSources> {
  const handles: FileHandle[] = [];
  const close = async () => {
    await Promise.all(handles.map((handle) => handle.close()));
  };
  try {
    for (const source of job.sources) {
      handles.push(await fs.open(objectPath(source), constants.O_RDONLY | constants.O_NOFOLLOW));
    }
  } catch (error) {
    await close();
    throw asWarehouseError(error, job, targetOf(job));
  }
  if (process.platform === 'win32') return { paths: job.sources.map(objectPath), close };
  return { paths: handles.map((handle) => `/dev/fd/${handle.fd}`), close };
}

interface WritePlan {
  /** The columns read from the files, in file order. */
  columns: Column[];
  /** The table columns they go to, in the same order. */
  into: string[];
  /** Create (or, for truncate, replace) the table with `columns` first. */
  create?: { replace: boolean };
  /** YYYY-MM-DD of a partition write. */
  date?: string;
}

async function planWrite(
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

async function writeRows(
  c: DuckDBConnection,
  job: LoadJob,
  target: Target,
  paths: string[],
  plan: WritePlan,
): Promise<number> {
  const { columns, date } = plan;
  if (plan.create) await createTable(c, target, columns, date !== undefined, plan.create.replace);
  const into = [...plan.into];
  const select = columns.map(selectExpression);
  const params: DuckDBValue[] = [listValue([])];
  if (date !== undefined) {
    await c.run(`DELETE FROM ${target.sql} WHERE ${quote(PARTITION_COLUMN)} = CAST($1 AS DATE)`, [
      date,
    ]);
    into.push(PARTITION_COLUMN);
    select.push('CAST($2 AS DATE)');
    params.push(date);
  }
  let rows = 0;
  // One statement per compression: the descriptor paths carry no extension to infer it from.
  for (const compression of ['none', 'gzip'] as const) {
    const group = paths.filter((_, i) => compressionOf(job.sources[i]) === compression);
    if (group.length === 0) continue;
    params[0] = listValue(group);
    const sql =
      `INSERT INTO ${target.sql} (${into.map(quote).join(', ')}) ` +
      `SELECT ${select.join(', ')} FROM read_csv($1, ${readCsvOptions(job, columns, compression)})`;
    rows += (await c.run(sql, params)).rowsChanged;
  }
  const bad = job.csv.maxBadRecords > 0 ? await badRows(c, job, paths) : { count: 0, first: '' };
  if (bad.count > job.csv.maxBadRecords) {
    throw new Rejection(
      `too many bad rows: ${bad.count}, more than maxBadRecords ${job.csv.maxBadRecords}; first: ${bad.first}`,
    );
  }
  if (rows === 0)
    throw new Rejection(
      bad.count > 0 ? `no data rows: all ${bad.count} rows are bad` : 'no data rows',
    );
  return rows;
}

function targetOf(job: LoadJob): Target {
  const { dataset, table } = job.destination;
  return {
    id: tableId(job.destination),
    dataset,
    table,
    sql: `${identifier(dataset)}.${identifier(table)}`,
  };
}

function destinationOf(job: LoadJob): string {
  const partition = job.destination.partition;
  return tableId(job.destination) + (partition ? `$${partition}` : '');
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

async function tableColumns(c: DuckDBConnection, target: Target): Promise<Column[] | undefined> {
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

async function createTable(
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
  await c.run(`CREATE SCHEMA IF NOT EXISTS ${identifier(target.dataset)}`);
  await c.run(
    `CREATE ${replace ? 'OR REPLACE ' : ''}TABLE ${target.sql} (${definitions.join(', ')})`,
  );
}

function schemaColumns(schema: SchemaField[]): Column[] {
  return schema.map((field) => ({
    name: field.name,
    type: DUCKDB_TYPES[field.type],
    required: field.mode === 'REQUIRED',
  }));
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

async function headerNames(job: LoadJob, paths: string[], index: number): Promise<string[]> {
  const record = await firstRecord(job, paths, index);
  const names = record.map((name, i) => (name.trim() === '' ? `string_field_${i}` : name.trim()));
  const seen = new Set<string>();
  for (const name of names) {
    if (name.includes('\0')) {
      throw new Rejection(
        `a column name in the header of ${uriOf(job, index)} contains a NUL character`,
      );
    }
    if (seen.has(name.toLowerCase())) {
      throw new Rejection(`duplicate column name "${name}" in the header of ${uriOf(job, index)}`);
    }
    seen.add(name.toLowerCase());
  }
  return names;
}

/**
 * Column types as DuckDB's sniffer sees them in the first file. Dates are only taken in BigQuery's
 * YYYY-MM-DD form and timestamps only in the ISO forms DuckDB reads without a format, as the strict
 * read that follows uses no formats; anything else stays VARCHAR and the strict read reports errors.
 */
async function sniffTypes(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  count: number,
): Promise<string[]> {
  const csv = job.csv;
  const sql =
    `SELECT Columns, TimestampFormat FROM sniff_csv($1, ${dialectOptions(csv, compressionOf(job.sources[0]))}, ` +
    `null_padding=true, strict_mode=false, ignore_errors=true, dateformat='%Y-%m-%d')`;
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

function readCsvOptions(job: LoadJob, columns: Column[], compression: Compression): string {
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
function selectExpression(column: Column): string {
  const name = quote(column.name);
  const checks: [string, string][] = [];
  if (column.required)
    checks.push([`${name} IS NULL`, `column "${column.name}" is REQUIRED but a row has no value`]);
  if (readType(column.type) === 'VARCHAR' || column.type === 'JSON') {
    checks.push([
      `strpos(${name}, chr(0)) > 0`,
      `column "${column.name}" contains a NUL character (ASCII 0)`,
    ]);
  }
  const value = column.type === 'BLOB' ? `from_base64(${name})` : name;
  if (checks.length === 0) return value;
  const cases = checks.map(([when, problem]) => `WHEN ${when} THEN error(${literal(problem)})`);
  return `CASE ${cases.join(' ')} ELSE ${value} END`;
}

type Compression = 'none' | 'gzip';

function compressionOf(source: StoredObject | undefined): Compression {
  return source?.name.endsWith('.gz') ? 'gzip' : 'none';
}

async function badRows(
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

async function ledgerRows(c: DuckDBConnection, jobId: string): Promise<number | undefined> {
  const reader = await c.runAndReadAll('SELECT rows FROM _ingest.loads WHERE job_id = $1', [jobId]);
  const row = reader.getRowsJS()[0];
  return row ? Number(row[0]) : undefined;
}

async function insertRejection(c: DuckDBConnection, job: LoadJob, reason: string): Promise<void> {
  await c.run('INSERT INTO _ingest.rejections VALUES ($1, $2, $3, now())', [
    job.jobId,
    listValue(job.sources.map(gsUri)),
    reason,
  ]);
}

async function listTables(c: DuckDBConnection): Promise<TableInfo[]> {
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

// ---------------------------------------------------------------------------------------------
// The header row, read here because DuckDB's sniffer guesses it and a guess is not good enough.

async function firstRecord(job: LoadJob, paths: string[], index: number): Promise<string[]> {
  const source = job.sources[index];
  const file = paths[index];
  if (!source || file === undefined) throw new Error(`job ${job.jobId} has no source ${index}`);
  const skipLines = Math.max(job.csv.skipLeadingRows - 1, 0);
  const input = createReadStream(file, { start: 0 });
  const stream = compressionOf(source) === 'gzip' ? input.pipe(createGunzip()) : input;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      const record = parseRecord(
        decode(Buffer.concat(chunks), job.csv, false),
        job.csv,
        skipLines,
        false,
      );
      if (record) return record;
      if (size > MAX_HEADER_BYTES)
        throw new Rejection(`the header row is longer than ${MAX_HEADER_BYTES} bytes`);
    }
    const record = parseRecord(
      decode(Buffer.concat(chunks), job.csv, true),
      job.csv,
      skipLines,
      true,
    );
    if (!record) throw new Rejection('no data rows');
    return record;
  } catch (error) {
    if (error instanceof Rejection) throw new Rejection(`${error.message} (${gsUri(source)})`);
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'ERR_ENCODING_INVALID_ENCODED_DATA')
      throw new Rejection(`invalid UTF-8 in the header row of ${gsUri(source)}`);
    if (code.startsWith('Z_'))
      throw new Rejection(`not valid gzip data: ${errorMessage(error)} (${gsUri(source)})`);
    throw error;
  } finally {
    input.destroy();
  }
}

function decode(bytes: Buffer, csv: CsvOptions, final: boolean): string {
  if (csv.encoding === 'ISO-8859-1') return bytes.toString('latin1');
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: !final });
}

/**
 * The first record after `skipLines` lines, or undefined when more text is needed (or, when `final`,
 * there is none). Quotes follow RFC 4180: a quote opens a field and is escaped by doubling.
 */
function parseRecord(
  text: string,
  csv: CsvOptions,
  skipLines: number,
  final: boolean,
): string[] | undefined {
  let i = 0;
  for (let skipped = 0; skipped < skipLines; skipped += 1) {
    const newline = text.indexOf('\n', i);
    if (newline < 0) return undefined;
    i = newline + 1;
  }
  if (i >= text.length) return undefined;
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  for (; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch !== csv.quote) {
        field += ch;
      } else if (text[i + 1] === csv.quote) {
        field += ch;
        i += 1;
      } else if (i + 1 >= text.length && !final) {
        return undefined; // the next chunk may start with the second quote of an escaped pair
      } else {
        quoted = false;
      }
    } else if (ch === csv.quote && field === '' && !wasQuoted) {
      quoted = wasQuoted = true;
    } else if (ch === csv.delimiter) {
      fields.push(field);
      field = '';
      wasQuoted = false;
    } else if (ch === '\n' || ch === '\r') {
      return [...fields, field];
    } else {
      field += ch;
    }
  }
  if (!final) return undefined;
  if (quoted) throw new Rejection('unterminated quote in the header row');
  return [...fields, field];
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Why the data cannot load, or undefined when the error is not about the data. */
function rejectionReason(error: unknown, job: LoadJob, paths: string[]): string | undefined {
  if (error instanceof Rejection) return oneLine(error.message);
  if (error instanceof TransientError || !(error instanceof Error)) return undefined;
  const message = error.message;
  if (/^IO Error/.test(message) && !/gzip|compress/i.test(message)) return undefined;
  if (!/^(Invalid Input|Conversion|Constraint|Out of Range|Binder|Catalog|IO) Error/.test(message))
    return undefined;
  return duckDbReason(message, job, paths);
}

/**
 * DuckDB's CSV errors span many lines (the offending line, fixes, the dialect); keep what is wrong and
 * where: `Error when converting column "a". ... (line 3 of gs://b/x.csv)`.
 */
function duckDbReason(message: string, job: LoadJob, paths: string[]): string {
  const lines = message.split('\n').map((line) => line.trim());
  const first = (lines[0] ?? '').replace(/^[A-Za-z ]+ Error: /, '');
  const file = lines.find((line) => line.startsWith('file = '))?.slice('file = '.length);
  const uri = file === undefined ? job.sources.map(gsUri).join(', ') : uriForPath(job, paths, file);
  const line = /^CSV Error on Line: (\d+)/.exec(first)?.[1];
  if (line === undefined) return oneLine(`${first} (${uri})`);
  // The offending line is quoted in between and may itself span lines, so look for what DuckDB says.
  const detail =
    lines.find((l) => CSV_PROBLEM.test(l)) ??
    lines.slice(1).find((l) => l !== '' && !l.startsWith('Original Line:')) ??
    first;
  return oneLine(`${detail} (line ${line} of ${uri})`);
}

function uriForPath(job: LoadJob, paths: string[], file: string): string {
  const index = paths.findIndex((p) => p === file || path.resolve(p) === path.resolve(file));
  const source = job.sources[index];
  return source ? gsUri(source) : path.basename(file);
}

function uriOf(job: LoadJob, index: number): string {
  const source = job.sources[index];
  return source ? gsUri(source) : '(no source)';
}

function asWarehouseError(error: unknown, job: LoadJob, target: Target): Error {
  const message = `DuckDB load ${job.jobId} into ${target.id} failed: ${firstLine(errorMessage(error))}`;
  if (error instanceof TransientError) return error;
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const transient =
    /^(IO|Out of Memory|TransactionContext) Error|Could not set lock/.test(errorMessage(error)) ||
    code === 'ENOENT' ||
    code === 'ELOOP' ||
    code === 'EIO' ||
    code === 'EMFILE';
  return transient
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// SQL text

/** A dataset or table name, checked once more before it reaches SQL. */
function identifier(name: string): string {
  if (!IDENTIFIER.test(name))
    throw new Error(`DuckDB warehouse: "${name}" is not a valid dataset or table name`);
  return `"${name}"`;
}

/** A name from data (a CSV header, an existing table) as a quoted identifier. */
function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function literal(value: string): string {
  if (value.includes('\0')) throw new Error('DuckDB warehouse: NUL byte in a SQL string');
  return `'${value.replaceAll("'", "''")}'`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
