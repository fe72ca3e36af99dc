/**
 * The GoogleSQL the BigQuery test server executes: exactly the statement forms the lineage driver
 * issues (src/warehouses/bigquery/lineage-sql.ts), parsed token by token and run against the rows the
 * server keeps. Anything else is refused by name, so that a changed statement cannot pass unnoticed.
 *
 *   BEGIN TRANSACTION | COMMIT TRANSACTION
 *   ASSERT NOT EXISTS (SELECT 1 FROM t WHERE (_source_uri = 's' AND _source_generation > n) OR …) AS 'd'
 *   ASSERT NOT EXISTS (SELECT 1 FROM t WHERE _source_uri IN ('s', …)) AS 'd'
 *   SELECT _source_uri, COUNT(*) AS n FROM t WHERE _source_uri IN ('s', …) GROUP BY _source_uri
 *   SELECT _source_uri, CAST(MAX(_source_generation) AS STRING) AS generation FROM t
 *     WHERE _source_uri IN ('s', …) GROUP BY _source_uri
 *   DELETE FROM t WHERE _source_uri IN ('s', …)
 *   TRUNCATE TABLE t
 *   INSERT INTO t (c, …, _source_uri, _source_generation, _loaded_at)
 *     SELECT c, …, 's', n, CURRENT_TIMESTAMP() FROM t2 [UNION ALL SELECT … FROM t3 …]
 *
 * `t` is `project`.`dataset`.`table`. A transaction works on copies of the tables it touches, made
 * current at COMMIT; an error, or the end of the script before COMMIT, discards them ("Multi-statement
 * transactions": an error without an exception handler rolls the transaction back). Outside a
 * transaction each statement commits on its own. CURRENT_TIMESTAMP() is one value per job.
 */

export type Row = Record<string, string | null>;

export interface TableRef {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export interface SqlTable {
  schema?: { name: string; type: string; mode?: string }[];
  rows: Map<string, Row[]>;
}

type Token = { kind: 'word' | 'quoted' | 'string' | 'number' | 'punct'; text: string };

export type Statement =
  | { type: 'BEGIN' }
  | { type: 'COMMIT' }
  | { type: 'ASSERT'; table: TableRef; newer: { uri: string; generation: bigint }[]; as: string }
  | { type: 'ASSERT_NONE'; table: TableRef; uris: string[]; as: string }
  | { type: 'COUNTS'; table: TableRef; uris: string[] }
  | { type: 'NEWEST'; table: TableRef; uris: string[] }
  | { type: 'DELETE'; table: TableRef; uris: string[] }
  | { type: 'TRUNCATE'; table: TableRef }
  | { type: 'INSERT'; table: TableRef; columns: string[]; parts: InsertPart[] };

interface InsertPart {
  columns: string[];
  uri: string;
  generation: string;
  from: TableRef;
}

export function tokenize(text: string): Token[] | string {
  const tokens: Token[] = [];
  const pattern =
    /\s+|(`(?:[^`\\]|\\.)*`)|('(?:[^'\\]|\\.)*')|(\d+)|([A-Za-z_][A-Za-z0-9_]*)|([(),;.=>*])/y;
  let at = 0;
  while (at < text.length) {
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (!m) return `test server: unexpected character ${JSON.stringify(text[at])} at ${at}`;
    at = pattern.lastIndex;
    if (m[1]) tokens.push({ kind: 'quoted', text: unescape(m[1].slice(1, -1)) });
    else if (m[2]) tokens.push({ kind: 'string', text: unescape(m[2].slice(1, -1)) });
    else if (m[3]) tokens.push({ kind: 'number', text: m[3] });
    else if (m[4]) tokens.push({ kind: 'word', text: m[4] });
    else if (m[5]) tokens.push({ kind: 'punct', text: m[5] });
  }
  return tokens;
}

function unescape(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) =>
    c.length === 5 ? String.fromCharCode(parseInt(c.slice(1), 16)) : c,
  );
}

class NoMatch extends Error {}

/** A cursor over one statement's tokens; each expectation throws NoMatch when unmet. */
class Cursor {
  private at = 0;
  constructor(private readonly tokens: Token[]) {}
  private take(test: (t: Token) => boolean): Token {
    const token = this.tokens[this.at];
    if (!token || !test(token)) throw new NoMatch();
    this.at++;
    return token;
  }
  word(...words: string[]): void {
    for (const w of words) this.take((t) => t.kind === 'word' && t.text.toUpperCase() === w);
  }
  punct(p: string): void {
    this.take((t) => t.kind === 'punct' && t.text === p);
  }
  is(kind: Token['kind'], text?: string): boolean {
    const t = this.tokens[this.at];
    return !!t && t.kind === kind && (text === undefined || t.text.toUpperCase() === text);
  }
  name(): string {
    return this.take((t) => t.kind === 'word' || t.kind === 'quoted').text;
  }
  string(): string {
    return this.take((t) => t.kind === 'string').text;
  }
  number(): string {
    return this.take((t) => t.kind === 'number').text;
  }
  table(): TableRef {
    const part = () => this.take((t) => t.kind === 'quoted').text;
    const projectId = part();
    this.punct('.');
    const datasetId = part();
    this.punct('.');
    return { projectId, datasetId, tableId: part() };
  }
  strings(): string[] {
    this.punct('(');
    const out = [this.string()];
    while (this.is('punct', ',')) {
      this.punct(',');
      out.push(this.string());
    }
    this.punct(')');
    return out;
  }
  end(): void {
    if (this.at !== this.tokens.length) throw new NoMatch();
  }
}

const FORMS: ((c: Cursor) => Statement)[] = [
  (c) => (c.word('BEGIN', 'TRANSACTION'), { type: 'BEGIN' }),
  (c) => (c.word('COMMIT', 'TRANSACTION'), { type: 'COMMIT' }),
  (c) => {
    c.word('ASSERT', 'NOT', 'EXISTS');
    c.punct('(');
    c.word('SELECT');
    c.number();
    c.word('FROM');
    const table = c.table();
    c.word('WHERE');
    if (c.is('word', '_SOURCE_URI')) {
      c.word('_SOURCE_URI', 'IN');
      const uris = c.strings();
      c.punct(')');
      c.word('AS');
      return { type: 'ASSERT_NONE', table, uris, as: c.string() };
    }
    const newer: { uri: string; generation: bigint }[] = [];
    do {
      if (newer.length > 0) c.word('OR');
      c.punct('(');
      c.word('_SOURCE_URI');
      c.punct('=');
      const uri = c.string();
      c.word('AND', '_SOURCE_GENERATION');
      c.punct('>');
      newer.push({ uri, generation: BigInt(c.number()) });
      c.punct(')');
    } while (c.is('word', 'OR'));
    c.punct(')');
    c.word('AS');
    return { type: 'ASSERT', table, newer, as: c.string() };
  },
  (c) => {
    c.word('SELECT', '_SOURCE_URI');
    c.punct(',');
    let type: 'COUNTS' | 'NEWEST' = 'COUNTS' as 'COUNTS' | 'NEWEST';
    if (c.is('word', 'COUNT')) {
      c.word('COUNT');
      c.punct('(');
      c.punct('*');
      c.punct(')');
      c.word('AS', 'N');
    } else {
      type = 'NEWEST';
      c.word('CAST');
      c.punct('(');
      c.word('MAX');
      c.punct('(');
      c.word('_SOURCE_GENERATION');
      c.punct(')');
      c.word('AS', 'STRING');
      c.punct(')');
      c.word('AS', 'GENERATION');
    }
    c.word('FROM');
    const table = c.table();
    c.word('WHERE', '_SOURCE_URI', 'IN');
    const uris = c.strings();
    c.word('GROUP', 'BY', '_SOURCE_URI');
    return type === 'COUNTS' ? { type, table, uris } : { type, table, uris };
  },
  (c) => {
    c.word('DELETE', 'FROM');
    const table = c.table();
    c.word('WHERE', '_SOURCE_URI', 'IN');
    return { type: 'DELETE', table, uris: c.strings() };
  },
  (c) => (c.word('TRUNCATE', 'TABLE'), { type: 'TRUNCATE', table: c.table() }),
  (c) => {
    c.word('INSERT', 'INTO');
    const table = c.table();
    c.punct('(');
    const columns = [c.name()];
    while (c.is('punct', ',')) {
      c.punct(',');
      columns.push(c.name());
    }
    c.punct(')');
    const lineage = columns.splice(-3).map((n) => n.toLowerCase());
    if (lineage.join() !== '_source_uri,_source_generation,_loaded_at') throw new NoMatch();
    const parts: InsertPart[] = [];
    do {
      if (parts.length > 0) c.word('UNION', 'ALL');
      c.word('SELECT');
      const selected: string[] = [];
      while (!c.is('string')) {
        selected.push(c.name());
        c.punct(',');
      }
      const uri = c.string();
      c.punct(',');
      const generation = c.number();
      c.punct(',');
      c.word('CURRENT_TIMESTAMP');
      c.punct('(');
      c.punct(')');
      c.word('FROM');
      parts.push({ columns: selected, uri, generation, from: c.table() });
    } while (c.is('word', 'UNION'));
    return { type: 'INSERT', table, columns, parts };
  },
];

/** The statements of a script, or why one of them is not a form this server runs. */
export function parseScript(text: string): Statement[] | { error: string } {
  const tokens = tokenize(text);
  if (typeof tokens === 'string') return { error: tokens };
  const statements: Statement[] = [];
  let start = 0;
  for (let i = 0; i <= tokens.length; i++) {
    const token = tokens[i];
    if (token && !(token.kind === 'punct' && token.text === ';')) continue;
    const part = tokens.slice(start, i);
    start = i + 1;
    if (part.length === 0) continue;
    const statement = parseOne(part);
    if (!statement) {
      const shown = part.map((t) => t.text).join(' ');
      return { error: `test server: unsupported statement: ${shown.slice(0, 120)}` };
    }
    statements.push(statement);
  }
  return statements.length > 0 ? statements : { error: 'test server: empty query' };
}

function parseOne(tokens: Token[]): Statement | undefined {
  for (const form of FORMS) {
    try {
      const cursor = new Cursor(tokens);
      const statement = form(cursor);
      cursor.end();
      return statement;
    } catch (error) {
      if (!(error instanceof NoMatch)) throw error;
    }
  }
  return undefined;
}
