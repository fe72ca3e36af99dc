import type { Row, SqlTable, Statement, TableRef } from './bigquery-sql';

/** What one statement of a job did, as its child job shows it. */
export interface StatementRun {
  statementType: string;
  dmlStats?: { insertedRowCount?: string; deletedRowCount?: string };
  /** A SELECT's result: its fields and rows (values as REST sends them: strings or null). */
  result?: { fields: [string, string][]; rows: (string | null)[][] };
  error?: { reason: string; message: string };
}

export interface ScriptRun {
  statements: StatementRun[];
  error?: { reason: string; message: string };
}

export interface ScriptOptions {
  table(ref: TableRef): SqlTable | undefined;
  /** Makes `rows` the table's rows (a transaction's, or a statement's outside one, committed). */
  replace(ref: TableRef, rows: Map<string, Row[]>): void;
  /** CURRENT_TIMESTAMP() for the whole job. */
  now: string;
  /** Makes the transaction fail at COMMIT with this message (a concurrent update elsewhere). */
  abort?: string;
}

class Failure extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const key = (t: TableRef) => `${t.projectId}:${t.datasetId}.${t.tableId}`;
const canonical = (type: string) =>
  ({ INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' })[type] ?? type;

/** Runs the statements in order; see bigquery-sql.ts for what each does. */
export function runScript(statements: Statement[], options: ScriptOptions): ScriptRun {
  // The rows as this job sees them: copies of the tables it wrote, until they are made current.
  let working = new Map<string, Map<string, Row[]>>();
  let inTransaction = false;
  const runs: StatementRun[] = [];
  const rowsOf = (ref: TableRef): Map<string, Row[]> => {
    const table = options.table(ref);
    if (!table) throw new Failure('notFound', `Not found: Table ${key(ref)} was not found`);
    let rows = working.get(key(ref));
    refs.set(key(ref), ref);
    if (!rows) {
      rows = new Map([...table.rows].map(([p, r]) => [p, [...r]]));
      working.set(key(ref), rows);
    }
    return rows;
  };
  const refs = new Map<string, TableRef>();
  const commit = () => {
    for (const [k, rows] of working) options.replace(refs.get(k) as TableRef, rows);
    working = new Map();
  };
  let mutated = false;
  for (const statement of statements) {
    try {
      if (statement.type === 'BEGIN') {
        inTransaction = true;
        continue;
      }
      if (statement.type === 'COMMIT') {
        if (options.abort && mutated) throw new Failure('invalidQuery', options.abort);
        commit();
        inTransaction = false;
        continue;
      }
      const run = execute(statement, rowsOf, options);
      runs.push(run);
      if (run.dmlStats) mutated = true;
      if (!inTransaction) commit();
    } catch (error) {
      if (!(error instanceof Failure)) throw error;
      const failure = { reason: error.reason, message: error.message };
      runs.push({ statementType: statement.type, error: failure });
      return { statements: runs, error: failure };
    }
  }
  // A script that ends inside its transaction rolls it back.
  return { statements: runs };
}

function execute(
  statement: Exclude<Statement, { type: 'BEGIN' | 'COMMIT' }>,
  rowsOf: (ref: TableRef) => Map<string, Row[]>,
  options: ScriptOptions,
): StatementRun {
  const all = (ref: TableRef) => [...rowsOf(ref).values()].flat();
  const needs = (ref: TableRef, ...names: string[]) => {
    const schema = options.table(ref)?.schema ?? [];
    const missing = names.find(
      (n) => !schema.some((f) => f.name.toLowerCase() === n.toLowerCase()),
    );
    if (missing !== undefined) throw new Failure('invalidQuery', `Unrecognized name: ${missing}`);
  };
  switch (statement.type) {
    case 'ASSERT': {
      needs(statement.table, '_source_uri', '_source_generation');
      const newer = all(statement.table).some((row) =>
        statement.newer.some(
          (n) =>
            row._source_uri === n.uri &&
            row._source_generation !== null &&
            row._source_generation !== undefined &&
            BigInt(row._source_generation) > n.generation,
        ),
      );
      if (newer) throw new Failure('invalidQuery', statement.as);
      return { statementType: 'ASSERT' };
    }
    case 'ASSERT_NONE': {
      needs(statement.table, '_source_uri');
      const uris = new Set(statement.uris);
      if (all(statement.table).some((row) => uris.has(String(row._source_uri))))
        throw new Failure('invalidQuery', statement.as);
      return { statementType: 'ASSERT' };
    }
    case 'COUNTS':
    case 'NEWEST':
      needs(statement.table, '_source_uri', '_source_generation');
      return select(statement, all(statement.table));
    case 'DELETE':
    case 'TRUNCATE': {
      if (statement.type === 'DELETE') needs(statement.table, '_source_uri');
      const rows = rowsOf(statement.table);
      let deleted = 0;
      for (const [partition, list] of rows) {
        const kept = list.filter(
          (row) => statement.type === 'DELETE' && !statement.uris.includes(row._source_uri ?? ''),
        );
        deleted += list.length - kept.length;
        rows.set(partition, kept);
      }
      const statementType = statement.type === 'DELETE' ? 'DELETE' : 'TRUNCATE_TABLE';
      return { statementType, dmlStats: { deletedRowCount: String(deleted) } };
    }
    case 'INSERT':
      return insert(statement, rowsOf, options, all);
  }
}

function select(
  statement: Extract<Statement, { type: 'COUNTS' | 'NEWEST' }>,
  rows: Row[],
): StatementRun {
  const groups = new Map<string, Row[]>();
  for (const row of rows) {
    const uri = row._source_uri;
    if (uri === null || uri === undefined || !statement.uris.includes(uri)) continue;
    groups.set(uri, [...(groups.get(uri) ?? []), row]);
  }
  const newest = (list: Row[]) =>
    list
      .map((r) => BigInt(r._source_generation ?? '0'))
      .reduce((a, b) => (b > a ? b : a))
      .toString();
  return statement.type === 'COUNTS'
    ? {
        statementType: 'SELECT',
        result: {
          fields: [
            ['_source_uri', 'STRING'],
            ['n', 'INTEGER'],
          ],
          rows: [...groups].map(([uri, list]) => [uri, String(list.length)]),
        },
      }
    : {
        statementType: 'SELECT',
        result: {
          fields: [
            ['_source_uri', 'STRING'],
            ['generation', 'STRING'],
          ],
          rows: [...groups].map(([uri, list]) => [uri, newest(list)]),
        },
      };
}

/** INSERT … SELECT … UNION ALL …: the selected columns must exist, and match the target's types. */
function insert(
  statement: Extract<Statement, { type: 'INSERT' }>,
  rowsOf: (ref: TableRef) => Map<string, Row[]>,
  options: ScriptOptions,
  all: (ref: TableRef) => Row[],
): StatementRun {
  const target = options.table(statement.table)?.schema ?? [];
  const field = (schema: SqlTable['schema'], name: string) =>
    schema?.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const into = [...statement.columns, '_source_uri', '_source_generation', '_loaded_at'];
  for (const name of into)
    if (!field(target, name))
      throw new Failure(
        'invalidQuery',
        `Column ${name} is not present in table ${key(statement.table)}`,
      );
  const added: Row[] = [];
  for (const part of statement.parts) {
    if (part.columns.length !== statement.columns.length)
      throw new Failure('invalidQuery', 'Inserted row has wrong column count');
    const source = options.table(part.from)?.schema;
    part.columns.forEach((name, i) => {
      const from = field(source, name);
      const to = field(target, statement.columns[i] as string);
      if (!from) throw new Failure('invalidQuery', `Unrecognized name: ${name}`);
      if (canonical(from.type) !== canonical(to?.type ?? ''))
        throw new Failure(
          'invalidQuery',
          `Query column ${i + 1} has type ${from.type} which cannot be inserted into column ${to?.name}, which has type ${to?.type}`,
        );
    });
    for (const row of all(part.from)) {
      const out: Row = {};
      for (const f of target) out[f.name] = null;
      part.columns.forEach((name, i) => {
        out[field(target, statement.columns[i] as string)?.name as string] =
          row[field(source, name)?.name as string] ?? null;
      });
      out[field(target, '_source_uri')?.name as string] = part.uri;
      out[field(target, '_source_generation')?.name as string] = part.generation;
      out[field(target, '_loaded_at')?.name as string] = options.now;
      const required = target.find((f) => f.mode === 'REQUIRED' && out[f.name] === null);
      if (required)
        throw new Failure('invalidQuery', `Required field ${required.name} cannot be null`);
      added.push(out);
    }
  }
  const rows = rowsOf(statement.table);
  rows.set('', [...(rows.get('') ?? []), ...added]);
  return { statementType: 'INSERT', dmlStats: { insertedRowCount: String(added.length) } };
}
