import type bigquery from '@google-cloud/bigquery/build/src/types';

/*
 * The GoogleSQL a lineage job runs, and how its text is read back. Identifiers are backquoted
 * ("Lexical structure and syntax", quoted identifiers:
 * https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical), string literals single-quoted
 * with `\\`, `\'` and `\uXXXX` escapes (same page, escape sequences). A generation is an INT64 literal.
 */

/** One source of a lineage job: its object, and the staging table its rows were loaded into. */
export interface LineageSource {
  uri: string;
  generation: string;
  stage: bigquery.ITableReference;
}

/** The reason an ASSERT that finds a newer generation fails with (debugging statements, ASSERT). */
export const SUPERSEDED = 'ingest-superseded';
/** The reason a first load's ASSERT fails with when a source already has rows in the table. */
export const HAS_ROWS = 'ingest-has-rows';

export function identifier(name: string): string {
  return '`' + name.replace(/[\\`]/g, (c) => `\\${c}`) + '`';
}

export function tableName(table: bigquery.ITableReference): string {
  return [table.projectId, table.datasetId, table.tableId]
    .map((p) => identifier(p ?? ''))
    .join('.');
}

export function literal(text: string): string {
  const escaped = text.replace(/[\\'\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === '\\' || c === "'" ? `\\${c}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `'${escaped}'`;
}

function generation(value: string): string {
  if (!/^\d+$/.test(value)) throw new Error(`generation "${value}" is not an INT64`);
  return value;
}

const uriList = (sources: LineageSource[]) => sources.map((s) => literal(s.uri)).join(', ');

/** The rows of every source, with its lineage columns, into `table` (one statement). */
export function insertStatement(
  table: bigquery.ITableReference,
  columns: string[],
  sources: LineageSource[],
): string {
  const data = columns.map(identifier);
  const into = [...data, '_source_uri', '_source_generation', '_loaded_at'].join(', ');
  const selects = sources.map(
    (s) =>
      `SELECT ${[...data, literal(s.uri), generation(s.generation), 'CURRENT_TIMESTAMP()'].join(', ')} FROM ${tableName(s.stage)}`,
  );
  return `INSERT INTO ${tableName(table)} (${into})\n  ${selects.join('\n  UNION ALL ')}`;
}

/**
 * An `append` job: fails (rolled back) when the table holds a newer generation of a source, counts
 * each source's rows there before, replaces them with the staged ones, all in one transaction.
 */
export function appendScript(
  table: bigquery.ITableReference,
  columns: string[],
  sources: LineageSource[],
): string {
  const target = tableName(table);
  const newer = sources
    .map(
      (s) =>
        `(_source_uri = ${literal(s.uri)} AND _source_generation > ${generation(s.generation)})`,
    )
    .join(' OR ');
  return [
    'BEGIN TRANSACTION',
    `ASSERT NOT EXISTS (SELECT 1 FROM ${target} WHERE ${newer}) AS ${literal(SUPERSEDED)}`,
    `SELECT _source_uri, COUNT(*) AS n FROM ${target} WHERE _source_uri IN (${uriList(sources)}) GROUP BY _source_uri`,
    `DELETE FROM ${target} WHERE _source_uri IN (${uriList(sources)})`,
    insertStatement(table, columns, sources),
    'COMMIT TRANSACTION',
  ]
    .map((statement) => `${statement};\n`)
    .join('');
}

/**
 * An `append` job whose sources have no rows in the table yet, as most have: no DELETE, which would
 * bill the whole table ("On-demand query size calculation", DML syntax). Its ASSERT fails (rolled
 * back) when a source has rows after all; the replacing script then goes under the next id.
 */
export function firstLoadScript(
  table: bigquery.ITableReference,
  columns: string[],
  sources: LineageSource[],
): string {
  const target = tableName(table);
  return [
    'BEGIN TRANSACTION',
    `ASSERT NOT EXISTS (SELECT 1 FROM ${target} WHERE _source_uri IN (${uriList(sources)})) AS ${literal(HAS_ROWS)}`,
    insertStatement(table, columns, sources),
    'COMMIT TRANSACTION',
  ]
    .map((statement) => `${statement};\n`)
    .join('');
}

/** A `truncate` job: every row of the table replaced by the staged ones, in one transaction. */
export function truncateScript(
  table: bigquery.ITableReference,
  columns: string[],
  sources: LineageSource[],
): string {
  return [
    'BEGIN TRANSACTION',
    `TRUNCATE TABLE ${tableName(table)}`,
    insertStatement(table, columns, sources),
    'COMMIT TRANSACTION',
  ]
    .map((statement) => `${statement};\n`)
    .join('');
}

/** The newest generation the table holds of each of these sources (a STRING: INT64 as text). */
export function newestQuery(table: bigquery.ITableReference, sources: LineageSource[]): string {
  return `SELECT _source_uri, CAST(MAX(_source_generation) AS STRING) AS generation FROM ${tableName(table)} WHERE _source_uri IN (${uriList(sources)}) GROUP BY _source_uri`;
}

/** What a lineage job's query text says it wrote: the table, and each source with its generation. */
export interface WrittenBy {
  table: bigquery.ITableReference;
  sources: { uri: string; generation: string }[];
}

const QUOTED = String.raw`\`((?:[^\\\`]|\\.)*)\``;
const STRING = String.raw`'((?:[^\\']|\\.)*)'`;

/** The INSERT of a lineage query read back (its own text is the record), or undefined. */
export function writtenBy(query: string): WrittenBy | undefined {
  const into = new RegExp(`INSERT INTO ${QUOTED}\\.${QUOTED}\\.${QUOTED} \\(`).exec(query);
  if (!into) return undefined;
  const [, projectId = '', datasetId = '', tableId = ''] = into.map((part, i) =>
    i === 0 ? part : unescape(part),
  );
  const row = new RegExp(`, ${STRING}, (\\d+), CURRENT_TIMESTAMP\\(\\) FROM `, 'g');
  const sources = [...query.slice(into.index).matchAll(row)].map((m) => ({
    uri: unescape(m[1] ?? ''),
    generation: m[2] ?? '',
  }));
  return { table: { projectId, datasetId, tableId }, sources };
}

function unescape(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) =>
    c.length === 5 ? String.fromCharCode(parseInt(c.slice(1), 16)) : c,
  );
}
