import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import * as sinon from 'sinon';
import {
  DEFAULT_COLUMNS,
  DEFAULT_CSV,
  type ColumnRules,
  type CsvOptions,
  ENCODINGS,
  type SchemaField,
} from '../../src/config';
import { TransientError } from '../../src/core/errors';
import { createLocalStore, localObjectPath } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import {
  FileBusyError,
  createDuckDbWarehouse,
  readDuckDbFile,
  readDuckDbTables,
  type DuckDbWarehouseOptions,
} from '../../src/warehouses/duckdb';
import { readLedgerHistory } from '../../src/warehouses/duckdb/history';
import { readSettled } from '../../src/warehouses/duckdb/ledger';
import type { LoadJob, LoadResult, Warehouse } from '../../src/warehouses/warehouse';
import { testDrift } from '../contract/drift-contract';
import { contractJob, testWarehouse, type WarehouseFixture } from '../contract/warehouse-contract';
import { holdLock } from '../helpers/duckdb';
import { gzipCutAfter } from '../helpers/gzip';

const run = promisify(execFile);
const BUCKET = 'b';

interface Local {
  root: string;
  file: string;
  objectPath: (object: StoredObject) => string;
  warehouse: ReturnType<typeof createDuckDbWarehouse>;
  put(name: string, content: Buffer | string): Promise<StoredObject>;
  cleanup(): Promise<void>;
}

async function makeLocal(
  options: Omit<DuckDbWarehouseOptions, 'file' | 'objectPath'> = {},
): Promise<Local> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'duckdb-warehouse-'));
  const file = path.join(root, 'warehouse.duckdb');
  const objectPath = (object: StoredObject) => localObjectPath(root, object.bucket, object.name);
  const warehouse = createDuckDbWarehouse({ file, objectPath, ...options });
  const store = createLocalStore(root);
  const put = async (name: string, content: Buffer | string) => {
    const target = localObjectPath(root, BUCKET, name);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, content);
    const object = await store.stat(BUCKET, name);
    if (!object) throw new Error(`${name} was not written`);
    return object;
  };
  const cleanup = async () => {
    await warehouse.close();
    await fs.rm(root, { recursive: true, force: true });
  };
  return { root, file, objectPath, warehouse, put, cleanup };
}

/** Runs SQL against the warehouse file from a separate DuckDB instance in this process. */
async function query(file: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  try {
    const connection = await instance.connect();
    const rows = (await connection.runAndReadAll(sql)).getRowsJS();
    connection.closeSync();
    return rows;
  } finally {
    instance.closeSync();
  }
}

/** A table's rows as the status page previews them. */
function tableRows(local: Local): WarehouseFixture['rows'] {
  return async (dataset, table) => {
    const preview = await local.warehouse.inspector.preview(`${dataset}.${table}`, 1000);
    return (preview?.rows ?? []).map((row) =>
      Object.fromEntries(preview!.columns.map((column, i) => [column, row[i] ?? null])),
    );
  };
}

testWarehouse(
  'DuckDB',
  async () => {
    const local = await makeLocal({ idleMs: 20 });
    const reopened: Warehouse[] = [];
    return {
      warehouse: local.warehouse,
      put: (bucket, name, content) => {
        expect(bucket).to.be.a('string');
        return local.put(name, content);
      },
      rows: tableRows(local),
      reopen: async () => {
        const warehouse = createDuckDbWarehouse({ file: local.file, objectPath: local.objectPath });
        reopened.push(warehouse);
        return warehouse;
      },
      teardown: async () => {
        await Promise.all(reopened.map((warehouse) => warehouse.close()));
        await local.cleanup();
      },
    };
  },
  { badRecords: true, brokenGzip: true, abort: true },
);

testDrift('DuckDB', async () => {
  const local = await makeLocal({ idleMs: 20 });
  return {
    warehouse: local.warehouse,
    put: (_bucket, name, content) => local.put(name, content),
    rows: tableRows(local),
    teardown: () => local.cleanup(),
  };
});

describe('DuckDB warehouse', function () {
  this.timeout(60_000);
  let local: Local;

  beforeEach(async () => {
    local = await makeLocal({ idleMs: 20 });
  });
  afterEach(async () => {
    await local.cleanup();
  });

  async function loadText(
    content: Buffer | string,
    options: {
      csv?: Partial<CsvOptions>;
      schema?: SchemaField[];
      name?: string;
      table?: string;
      columns?: ColumnRules;
    } = {},
  ): Promise<LoadResult> {
    const object = await local.put(options.name ?? 'in/data.csv', content);
    const job = contractJob([object], {
      csv: { ...DEFAULT_CSV, ...options.csv },
      columns: options.columns ?? DEFAULT_COLUMNS,
      schema: options.schema ?? 'auto',
      destination: { dataset: 'ds', table: options.table ?? 't' },
    });
    return local.warehouse.load(job);
  }

  async function rowsOf(sql: string): Promise<unknown[][]> {
    await local.warehouse.close();
    return query(local.file, sql);
  }

  describe('rejects what BigQuery would reject', () => {
    const cases: {
      what: string;
      content: Buffer | string;
      reason: RegExp;
      csv?: Partial<CsvOptions>;
      schema?: SchemaField[];
    }[] = [
      {
        what: 'an unterminated quote',
        content: 'a,b\n1,2\n3,"4\n',
        reason: /unterminated quote.*line 3/,
      },
      {
        what: 'a row with too few columns',
        content: 'a,b\n1,2\n3\n',
        reason: /Expected Number of Columns: 2 Found: 1.*line 3/,
      },
      {
        what: 'a row with too many columns',
        content: 'a,b\n1,2\n3,4,5\n',
        reason: /Found: 3.*line 3/,
      },
      {
        what: 'too many columns even with allowJaggedRows',
        content: 'a,b\n1,2\n3,4,5\n',
        csv: { allowJaggedRows: true },
        reason: /Found: 3/,
      },
      {
        what: 'a value of the wrong type under a schema',
        content: 'id,n\n1,2\n2,x\n',
        schema: [
          { name: 'id', type: 'INT64' },
          { name: 'n', type: 'INT64' },
        ],
        reason: /could not parse "x" as INT64 for column "n" \(row 2 of /,
      },
      {
        what: 'a missing REQUIRED value',
        content: 'id,n\n1,2\n,3\n',
        schema: [
          { name: 'id', type: 'INT64', mode: 'REQUIRED' },
          { name: 'n', type: 'INT64' },
        ],
        reason: /column "id" is REQUIRED/,
      },
      {
        what: 'invalid UTF-8',
        content: Buffer.from('a,b\n1,caf\xe9\n', 'latin1'),
        reason: /^not valid UTF-8.*; set csv\.encoding: ISO-8859-1 for Latin-1 files/,
      },
      {
        what: 'invalid UTF-8 past the head the header check reads',
        content: Buffer.from(`a,b\n${'1,x\n'.repeat(40_000)}1,caf\xe9\n`, 'latin1'),
        reason: /unicode.*; set csv\.encoding: ISO-8859-1 for Latin-1 files$/i,
      },
      {
        what: 'invalid UTF-8 in the header',
        content: Buffer.from('a,\xe9\n1,2\n', 'latin1'),
        reason: /^not valid UTF-8: invalid byte sequence at offset 2 \(line 1\)/,
      },
      { what: 'an empty file', content: '', reason: /^no data rows/ },
      {
        what: 'binary garbage',
        content: Buffer.from(Array.from({ length: 400 }, (_, i) => (i * 167 + 13) % 256)),
        reason: /^binary data: NUL byte|UTF-8/,
      },
      {
        what: 'a NUL character',
        content: 'a,b\n1,x\0y\n',
        reason: /^binary data: NUL byte at offset 7/,
      },
      {
        what: 'a duplicate header name',
        content: 'a,A\n1,2\n',
        reason: /duplicate column name "A"/,
      },
      {
        what: 'bad base64 in a BYTES column',
        content: 'b\n!!\n',
        schema: [{ name: 'b', type: 'BYTES' }],
        reason: /base64/,
      },
      {
        what: 'more bad rows than maxBadRecords',
        content: 'a,b\n1,2\nx,3\n4,5\ny,6\n',
        csv: { maxBadRecords: 1 },
        schema: [
          { name: 'a', type: 'INT64' },
          { name: 'b', type: 'INT64' },
        ],
        reason: /too many bad rows: 2, more than maxBadRecords 1; first: .*"x".*row 2 of/,
      },
      { what: 'gzip that is not gzip', content: 'a,b\n1,2\n', reason: /gzip/i },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const name = c.what === 'gzip that is not gzip' ? 'in/data.csv.gz' : 'in/data.csv';
        const result = await loadText(c.content, { csv: c.csv, schema: c.schema, name });
        expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
        const reason = result.outcome === 'rejected' ? result.reason : '';
        expect(reason).to.match(c.reason);
        expect(reason).to.not.include('\n');
        expect(reason).to.not.match(/Possible|sniff/i);
        expect(
          await rowsOf("SELECT * FROM information_schema.tables WHERE table_schema = 'ds'"),
        ).to.deep.equal([]);
        expect(await rowsOf('SELECT reason FROM _ingest.rejections')).to.deep.equal([[reason]]);
        expect(await rowsOf('SELECT count(*) FROM _ingest.loads')).to.deep.equal([[0n]]);
      });
    }
  });

  describe('reads CSV options as BigQuery does', () => {
    const cases: {
      what: string;
      content: Buffer | string;
      csv?: Partial<CsvOptions>;
      schema?: SchemaField[];
      expected: unknown[][];
    }[] = [
      {
        what: 'a header and detected types',
        content: 'id,name\n1,a\n2,b\n',
        expected: [
          [1n, 'a'],
          [2n, 'b'],
        ],
      },
      {
        what: 'quoted newlines and doubled quotes',
        content: 'a,b\n1,"x\ny ""q"""\n',
        expected: [[1n, 'x\ny "q"']],
      },
      {
        what: 'a semicolon delimiter',
        content: 'a;b\n1;2\n',
        csv: { delimiter: ';' },
        expected: [[1n, 2n]],
      },
      {
        what: 'a tab delimiter',
        content: 'a\tb\nx\ty\n',
        csv: { delimiter: '\t' },
        expected: [['x', 'y']],
      },
      { what: 'no quoting', content: 'a,b\n1,"x\n', csv: { quote: '' }, expected: [[1n, '"x']] },
      {
        what: 'jagged rows padded with NULL',
        content: 'a,b\n1,2\n3\n',
        csv: { allowJaggedRows: true },
        expected: [
          [1n, 2n],
          [3n, null],
        ],
      },
      {
        what: 'a null marker',
        content: 'a,b\n1,NA\n2,x\n',
        csv: { nullMarker: 'NA' },
        expected: [
          [1n, null],
          [2n, 'x'],
        ],
      },
      {
        what: 'ISO-8859-1',
        content: Buffer.from('a,b\n1,caf\xe9\n', 'latin1'),
        csv: { encoding: 'ISO-8859-1' },
        expected: [[1n, 'café']],
      },
      { what: 'a UTF-8 byte order mark', content: '\ufeffa,b\n1,2\n', expected: [[1n, 2n]] },
      {
        what: 'skipLeadingRows 2: the header is the second line',
        content: 'title\na,b\n1,2\n',
        csv: { skipLeadingRows: 2 },
        expected: [[1n, 2n]],
      },
      {
        what: 'maxBadRecords skipping bad rows',
        content: 'a,b\n1,2\nx,3\n4,5\n',
        csv: { maxBadRecords: 1 },
        schema: [
          { name: 'a', type: 'INT64' },
          { name: 'b', type: 'INT64' },
        ],
        expected: [
          [1n, 2n],
          [4n, 5n],
        ],
      },
      {
        what: 'non-ISO dates kept as text',
        content: 'd\n01/02/2024\n',
        expected: [['01/02/2024']],
      },
    ];
    for (const c of cases) {
      it(c.what, async () => {
        const result = await loadText(c.content, { csv: c.csv, schema: c.schema });
        expect(result, JSON.stringify(result)).to.deep.include({
          outcome: 'loaded',
          rows: c.expected.length,
        });
        expect(await rowsOf('SELECT * FROM ds.t')).to.deep.equal(c.expected);
      });
    }

    it('names columns string_field_N without a header row', async () => {
      const result = await loadText('1,x\n2,y\n', { csv: { skipLeadingRows: 0 } });
      expect(result).to.deep.include({ outcome: 'loaded', rows: 2 });
      const columns = await rowsOf(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position",
      );
      expect(columns).to.deep.equal([['string_field_0'], ['string_field_1']]);
    });

    it("takes a new table's types from its first rows, as BigQuery's autodetect does", async () => {
      // BigQuery samples 500 rows; DuckDB's sniffer at least 2,048.
      const numbers = (from: number, count: number) =>
        Array.from({ length: count }, (_, i) => `${from + i},x`).join('\n');
      const late = await loadText(`n,s\n${numbers(1, 3000)}\nabc,x\n`);
      expect(late.outcome, JSON.stringify(late)).to.equal('rejected');
      expect(late.outcome === 'rejected' && late.reason).to.match(/"abc"/);
      const early = await loadText(`n,s\n${numbers(1, 400)}\nabc,x\n${numbers(401, 3000)}\n`, {
        table: 'u',
      });
      expect(early, JSON.stringify(early)).to.deep.include({ outcome: 'loaded', rows: 3401 });
    });

    it('rejects a late value that does not fit the type its first rows gave, never changing it', async () => {
      const rows = (value: (i: number) => string) =>
        Array.from({ length: 3000 }, (_, i) => `${value(i)},x`).join('\n');
      const late = [
        ['INT64', rows((i) => String(i)), '2.5'],
        ['DATE', rows(() => '2024-01-02'), '2024-01-02 10:00:00'],
        ['TIMESTAMP', rows(() => '2024-01-02 10:00:00+01:00'), 'soon'],
      ];
      for (const [type, head, value] of late) {
        const result = await loadText(`v,s\n${head}\n${value},x\n`, { table: `t_${type}` });
        expect(result.outcome === 'rejected' && result.reason, JSON.stringify(result)).to.include(
          `could not parse "${value}" as ${type} for column "v"`,
        );
      }
    });

    it('stores each TIMESTAMP form BigQuery reads as the instant it names', async () => {
      const values = [
        '2018-07-05 12:54:00 UTC',
        '2018-08-19 07:11:35.220 -05:00',
        '2018/08/19 12:11',
        '2018-08-19T12:11:35.220Z',
        '1534680695.5',
      ];
      const schema: SchemaField[] = [{ name: 'ts', type: 'TIMESTAMP' }];
      const result = await loadText(`ts\n${values.join('\n')}\n`, { schema });
      expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows: 5 });
      const stored = await rowsOf('SELECT CAST(ts AS VARCHAR) FROM ds.t ORDER BY ts');
      expect(stored.map((row) => row[0])).to.deep.equal([
        '2018-07-05 12:54:00+00',
        '2018-08-19 12:11:00+00',
        '2018-08-19 12:11:35.22+00',
        '2018-08-19 12:11:35.22+00',
        '2018-08-19 12:11:35.5+00',
      ]);
    });

    it('maps every BigQuery type of a schema', async () => {
      const schema: SchemaField[] = [
        { name: 's', type: 'STRING' },
        { name: 'i', type: 'INT64' },
        { name: 'f', type: 'FLOAT64' },
        { name: 'n', type: 'NUMERIC' },
        { name: 'bn', type: 'BIGNUMERIC' },
        { name: 'b', type: 'BOOL' },
        { name: 'd', type: 'DATE' },
        { name: 'dt', type: 'DATETIME' },
        { name: 'ts', type: 'TIMESTAMP' },
        { name: 't', type: 'TIME' },
        { name: 'bin', type: 'BYTES' },
        { name: 'j', type: 'JSON' },
      ];
      const header = schema.map((f) => f.name).join(',');
      const row =
        'x,1,1.5,1.25,2.5,true,2024-01-02,2024-01-02T03:04:05,2024-01-02 03:04:05+01:00,03:04:05,aGk=,"{""k"":1}"';
      const result = await loadText(`${header}\n${row}\n`, { schema });
      expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows: 1 });
      const types = await rowsOf(
        "SELECT data_type FROM information_schema.columns WHERE table_name = 't' ORDER BY ordinal_position",
      );
      expect(types.map((t) => t[0])).to.deep.equal([
        'VARCHAR',
        'BIGINT',
        'DOUBLE',
        'DECIMAL(38,9)',
        'DECIMAL(38,18)',
        'BOOLEAN',
        'DATE',
        'TIMESTAMP',
        'TIMESTAMP WITH TIME ZONE',
        'TIME',
        'BLOB',
        'JSON',
      ]);
      const [values] = await rowsOf("SELECT CAST(ts AS VARCHAR), decode(bin), j->>'k' FROM ds.t");
      expect(values).to.deep.equal(['2024-01-02 02:04:05+00', 'hi', '1']);
    });
  });

  describe('existing tables', () => {
    it('adds a column the table lacks and loads a reordered file by name', async () => {
      expect((await loadText('a,b\n1,2\n')).outcome).to.equal('loaded');
      const result = await loadText('b,c,a\n4,x,3\n', { name: 'in/other.csv' });
      expect(result).to.include({ outcome: 'loaded', rows: 1 });
      expect(result.outcome === 'loaded' && result.schemaChanges).to.deep.equal([
        'added column c STRING',
      ]);
      expect(await rowsOf('SELECT a, b, c FROM ds.t ORDER BY a')).to.deep.equal([
        [1n, 2n, null],
        [3n, 4n, 'x'],
      ]);
    });

    it('loads by position when the route says so, whatever the header names', async () => {
      expect((await loadText('a,b\n1,2\n')).outcome).to.equal('loaded');
      const columns = { ...DEFAULT_COLUMNS, match: 'byPosition' as const };
      const result = await loadText('x,y\n3,4\n', { name: 'in/other.csv', columns });
      expect(result).to.include({ outcome: 'loaded', rows: 1 });
      expect(await rowsOf('SELECT a, b FROM ds.t ORDER BY a')).to.deep.equal([
        [1n, 2n],
        [3n, 4n],
      ]);
    });

    it("rejects a value that does not convert to the table's type, naming row and column", async () => {
      expect((await loadText('a,b\n1,2\n')).outcome).to.equal('loaded');
      const result = await loadText('a,b\n3,4\n5,five\n', { name: 'in/other.csv' });
      expect(result.outcome === 'rejected' && result.reason).to.match(
        /could not parse "five" as INT64 for column "b" \(row 2 of gs:\/\/b\/in\/other\.csv\)/,
      );
      expect(await rowsOf('SELECT count(*) FROM ds.t')).to.deep.equal([[1n]]);
    });

    it('rejects a partition write to a table without partitions', async () => {
      expect((await loadText('a,b\n1,2\n')).outcome).to.equal('loaded');
      const object = await local.put('in/p.csv', 'a,b\n3,4\n');
      const job = contractJob([object], {
        write: 'partition',
        destination: { dataset: 'ds', table: 't', partition: '20240101' },
      });
      const result = await local.warehouse.load(job);
      expect(result.outcome === 'rejected' && result.reason).to.match(/not partitioned/);
    });

    it('writes the partition date into _PARTITIONDATE', async () => {
      const object = await local.put('in/p.csv', 'a\n1\n2\n');
      const job = contractJob([object], {
        write: 'partition',
        destination: { dataset: 'ds', table: 'p', partition: '20240229' },
      });
      expect(await local.warehouse.load(job)).to.deep.include({ outcome: 'loaded', rows: 2 });
      expect(
        await rowsOf('SELECT DISTINCT CAST(_PARTITIONDATE AS VARCHAR) FROM ds.p'),
      ).to.deep.equal([['2024-02-29']]);
    });

    it('rejects an impossible partition date', async () => {
      const object = await local.put('in/p.csv', 'a\n1\n');
      const job = contractJob([object], {
        write: 'partition',
        destination: { dataset: 'ds', table: 'p', partition: '20240230' },
      });
      const result = await local.warehouse.load(job);
      expect(result.outcome === 'rejected' && result.reason).to.match(
        /partition "20240230" is not a date/,
      );
    });

    it('refuses a dataset or table name outside [A-Za-z0-9_]', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      for (const destination of [
        { dataset: 'ds"; DROP TABLE x; --', table: 't' },
        { dataset: 'ds', table: 't-1' },
        { dataset: '', table: 't' },
      ]) {
        const error = await local.warehouse.load(contractJob([object], { destination })).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, JSON.stringify(destination)).to.be.instanceOf(Error);
        expect((error as Error).message).to.match(/not a valid dataset or table name/);
      }
    });
  });

  describe('ledger', () => {
    it('records the job, its sources and rows', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n2\n');
      const job = contractJob([object], { destination: { dataset: 'ds', table: 't' } });
      await local.warehouse.load(job);
      const rows = await rowsOf(
        'SELECT job_id, uris, generations, destination, write_mode, rows FROM _ingest.loads',
      );
      expect(rows).to.deep.equal([
        [job.jobId, ['gs://b/in/x.csv'], [object.generation], 'ds.t', 'append', 2n],
      ]);
    });

    it('writes the rows and the ledger entry in one transaction', async () => {
      // A ledger that refuses one job id: the rows inserted before the ledger entry must vanish with it.
      const setup = await DuckDBInstance.create(local.file);
      const connection = await setup.connect();
      await connection.run(`CREATE SCHEMA _ingest; CREATE TABLE _ingest.loads (
        job_id VARCHAR PRIMARY KEY CHECK (job_id <> 'refused'), uris VARCHAR[], generations VARCHAR[],
        destination VARCHAR, write_mode VARCHAR, rows BIGINT, loaded_at TIMESTAMPTZ)`);
      connection.closeSync();
      setup.closeSync();

      const first = await local.put('in/first.csv', 'a\n1\n');
      expect((await local.warehouse.load(contractJob([first]))).outcome).to.equal('loaded');
      const object = await local.put('in/x.csv', 'a\n2\n3\n');
      const result = await local.warehouse.load(contractJob([object], { jobId: 'refused' }));
      expect(result.outcome).to.not.equal('loaded');
      expect(await rowsOf('SELECT count(*) FROM contract.items')).to.deep.equal([[1n]]);
    });

    it('leaves no ledger entry for a rejected job, so it can load under the same id once it fits', async () => {
      const object = await local.put('in/x.csv', 'a,b\n1,2\n');
      const job = contractJob([object], { createDisposition: 'CREATE_NEVER' });
      expect((await local.warehouse.load(job)).outcome).to.equal('rejected');
      const first = await local.put('in/first.csv', 'a,b\n0,0\n');
      expect((await local.warehouse.load(contractJob([first]))).outcome).to.equal('loaded');
      expect(await local.warehouse.load(job)).to.deep.include({ outcome: 'loaded', rows: 1 });
    });

    it('keeps recorded rejections', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      const job = contractJob([object]);
      await local.warehouse.recordRejection(job, 'header does not match the schema');
      const rows = await rowsOf('SELECT job_id, uris, reason FROM _ingest.rejections');
      expect(rows).to.deep.equal([
        [job.jobId, ['gs://b/in/x.csv'], 'header does not match the schema'],
      ]);
    });

    it('keeps a rejection made before any job: settled for the next start, in the history', async () => {
      const object = await local.put('sales/2026/13/40/x.csv', 'a\n1\n');
      const reason = 'partition "20261340" from route "sales/{yyyy}/{mm}/{dd}/*.csv" is not a date';
      await local.warehouse.recordRejection({ sources: [object] }, reason);
      await local.warehouse.close();
      const settled = await readDuckDbFile(local.file, readSettled, []);
      expect(settled).to.deep.equal([
        { uri: 'gs://b/sales/2026/13/40/x.csv', generation: object.generation },
      ]);
      const history = await readDuckDbFile(
        local.file,
        (c) => readLedgerHistory(c, new Date(0), 10),
        [],
      );
      expect(history.map(({ time: _, ...entry }) => entry)).to.deep.equal([
        { objects: ['gs://b/sales/2026/13/40/x.csv'], outcome: 'rejected', reason },
      ]);
    });

    it('survives closing and reopening the file', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      const job = contractJob([object]);
      expect((await local.warehouse.load(job)).outcome).to.equal('loaded');
      await local.warehouse.close();
      const again = createDuckDbWarehouse({
        file: local.file,
        objectPath: (o) => localObjectPath(local.root, o.bucket, o.name),
      });
      try {
        expect(await again.load(job)).to.deep.equal({
          outcome: 'duplicate',
          jobId: job.jobId,
          rows: 1,
        });
      } finally {
        await again.close();
      }
    });
  });

  describe('sharing the file with other processes', () => {
    it('lets another process open the file while idle', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n2\n');
      expect((await local.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const script = `
        const { DuckDBInstance } = require(${JSON.stringify(require.resolve('@duckdb/node-api'))});
        (async () => {
          const db = await DuckDBInstance.create(${JSON.stringify(local.file)}, { access_mode: 'READ_ONLY' });
          const c = await db.connect();
          const rows = (await c.runAndReadAll('SELECT count(*) FROM contract.items')).getRowsJS();
          console.log(String(rows[0][0]));
        })().catch((e) => { console.error(e.message); process.exit(1); });`;
      const { stdout } = await run(process.execPath, ['-e', script]);
      expect(stdout.trim()).to.equal('2');
    });

    it('waits for another process to let go of the file', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      await holdLock(local.file, 600);
      const started = Date.now();
      expect((await local.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
      expect(Date.now() - started).to.be.greaterThan(100);
    });

    it('answers TransientError when another process holds the file too long', async () => {
      const impatient = await makeLocal({ lockWaitMs: 200 });
      const object = await impatient.put('in/x.csv', 'a\n1\n');
      const holder = await holdLock(impatient.file, 1000);
      try {
        const error = await impatient.warehouse.load(contractJob([object])).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(TransientError);
        expect((error as Error).message).to.match(/lock/);
      } finally {
        await holder.exited;
        await impatient.cleanup();
      }
    });

    it('reads the tables read-only, waiting while the file is held', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n2\n3\n');
      expect((await local.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
      await local.warehouse.close();
      await holdLock(local.file, 500);
      expect(await readDuckDbTables(local.file)).to.deep.equal([
        { table: 'contract.items', rows: 3 },
      ]);
    });

    it('reads no tables from a file that does not exist', async () => {
      expect(await readDuckDbTables(path.join(local.root, 'none.duckdb'))).to.deep.equal([]);
    });
  });

  describe('completed jobs', () => {
    it('knows a completed job after it lets go of the file, and forgets it when the file is another', async () => {
      const idle = await makeLocal({ idleMs: 50 });
      try {
        const a = await idle.put('in/a.csv', 'a\n1\n2\n');
        const job = contractJob([a]);
        expect(idle.warehouse.completedRows?.(job.jobId)).to.equal(undefined);
        expect(await idle.warehouse.load(job)).to.deep.include({ outcome: 'loaded', rows: 2 });
        expect(idle.warehouse.completedRows?.(job.jobId)).to.equal(2);
        await new Promise((r) => setTimeout(r, 200));
        expect(idle.warehouse.completedRows?.(job.jobId)).to.equal(2);
        expect(await idle.warehouse.load(job)).to.deep.include({ outcome: 'duplicate', rows: 2 });
        // The warehouse file deleted while let go: a new file knows no job.
        await fs.rm(idle.file, { force: true });
        await fs.rm(`${idle.file}.wal`, { force: true });
        expect(idle.warehouse.completedRows?.(job.jobId)).to.equal(undefined);
        expect(await idle.warehouse.load(job)).to.deep.include({ outcome: 'loaded', rows: 2 });
      } finally {
        await idle.cleanup();
      }
    });

    it('does not remember a rejected job', async () => {
      const bad = await local.put('in/bad.csv', 'a,b\n1\n');
      const job = contractJob([bad]);
      expect((await local.warehouse.load(job)).outcome).to.equal('rejected');
      expect(local.warehouse.completedRows?.(job.jobId)).to.equal(undefined);
    });
  });

  describe('queue', () => {
    it('lists user tables with row counts, without the ledger', async () => {
      const a = await local.put('in/a.csv', 'a\n1\n2\n');
      await local.warehouse.load(contractJob([a], { destination: { dataset: 'one', table: 'x' } }));
      await local.warehouse.load(contractJob([a], { destination: { dataset: 'two', table: 'y' } }));
      expect(await local.warehouse.tables()).to.deep.equal([
        { table: 'one.x', rows: 2 },
        { table: 'two.y', rows: 2 },
      ]);
    });

    it('close waits for queued loads', async () => {
      const objects = await Promise.all(
        [1, 2, 3].map((i) => local.put(`in/${i}.csv`, `a\n${i}\n`)),
      );
      const loads = objects.map((o) => local.warehouse.load(contractJob([o])));
      await local.warehouse.close();
      const results = await Promise.all(loads);
      expect(results.map((r) => r.outcome)).to.deep.equal(['loaded', 'loaded', 'loaded']);
      expect(await query(local.file, 'SELECT count(*) FROM contract.items')).to.deep.equal([[3n]]);
    });

    it('refuses work after close', async () => {
      await local.warehouse.close();
      const error = await local.warehouse.tables().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as Error).message).to.match(/closed/);
    });

    it('answers TransientError when the source file is gone', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      await fs.rm(localObjectPath(local.root, BUCKET, 'in/x.csv'));
      const error = await local.warehouse.load(contractJob([object])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(TransientError);
    });

    it('reads an object whose name has glob characters, and only that object', async () => {
      await local.put('in/z1.csv', 'a\n100\n');
      await local.put('in/xy.csv', 'a\n200\n');
      const brackets = await local.put('in/z[1].csv', 'a\n1\n');
      const star = await local.put('in/x*.csv', 'a\n2\n');
      const question = await local.put('in/x?.csv', 'a\n3\n');
      const result = await local.warehouse.load(
        contractJob([brackets, star, question], { write: 'truncate' }),
      );
      expect(result).to.deep.include({ outcome: 'loaded', rows: 3 });
      expect(await rowsOf('SELECT a FROM contract.items ORDER BY a')).to.deep.equal([
        [1n],
        [2n],
        [3n],
      ]);
    });

    it('does not read a source that is a symlink', async () => {
      const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'duckdb-outside-'));
      try {
        await fs.writeFile(path.join(outside, 'secret.csv'), 'a\nsecret\n');
        const object = await local.put('in/x.csv', 'a\n1\n');
        const file = localObjectPath(local.root, BUCKET, 'in/x.csv');
        await fs.rm(file);
        await fs.symlink(path.join(outside, 'secret.csv'), file);
        const error = await local.warehouse.load(contractJob([object])).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(TransientError);
        expect(await local.warehouse.tables()).to.deep.equal([]);
      } finally {
        await fs.rm(outside, { recursive: true, force: true });
      }
    });

    it('loads gzip and plain sources of one job together', async () => {
      const a = await local.put('in/a.csv', 'a\n1\n');
      const b = await local.put('in/b.csv.gz', gzipSync('a\n2\n3\n'));
      const job: LoadJob = contractJob([a, b], { write: 'truncate' });
      expect(await local.warehouse.load(job)).to.deep.include({ outcome: 'loaded', rows: 3 });
    });
  });

  describe('gzip sources are checked whole', () => {
    const rows = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `${from + i},name ${from + i}\n`).join('');
    const cases: { what: string; content: () => Promise<Buffer>; reason: RegExp }[] = [
      {
        what: 'cut at a flush point after 100,000 of 200,000 rows',
        content: async () =>
          (await gzipCutAfter(`id,name\n${rows(0, 100_000)}`, rows(100_000, 200_000))).cut,
        reason: /in\/data\.csv\.gz is not a valid gzip file: unexpected end of file/,
      },
      {
        what: 'with trailing garbage',
        content: async () =>
          Buffer.concat([gzipSync(`id,name\n${rows(0, 10)}`), Buffer.from('garbage!')]),
        reason: /not a valid gzip file: incorrect header check/,
      },
      {
        what: 'with trailing zeros',
        content: async () => Buffer.concat([gzipSync(`id,name\n${rows(0, 10)}`), Buffer.alloc(16)]),
        reason: /not a valid gzip file: 16 bytes of trailing garbage/,
      },
      {
        what: 'cut inside its header',
        content: async () => gzipSync(`id,name\n${rows(0, 10)}`).subarray(0, 12),
        reason: /not a valid gzip file: unexpected end of file/,
      },
    ];
    for (const [c, encoding] of cases.flatMap((c) => ENCODINGS.map((e) => [c, e] as const))) {
      it(`rejects a gzip ${c.what}, writing and recording nothing else (${encoding})`, async () => {
        const result = await loadText(await c.content(), {
          name: 'in/data.csv.gz',
          csv: { encoding },
        });
        expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
        const reason = result.outcome === 'rejected' ? result.reason : '';
        expect(reason).to.match(c.reason);
        expect(
          await rowsOf("SELECT * FROM information_schema.tables WHERE table_schema = 'ds'"),
        ).to.deep.equal([]);
        expect(await rowsOf('SELECT reason FROM _ingest.rejections')).to.deep.equal([[reason]]);
        expect(await rowsOf('SELECT count(*) FROM _ingest.loads')).to.deep.equal([[0n]]);
      });
    }

    it('loads a gzip of several members', async () => {
      const content = Buffer.concat([gzipSync(`id,name\n${rows(0, 5)}`), gzipSync(rows(5, 8))]);
      expect(await loadText(content, { name: 'in/data.csv.gz' })).to.deep.include({
        outcome: 'loaded',
        rows: 8,
      });
    });

    it('names the broken gzip of a job that also has a plain source', async () => {
      const plain = await local.put('in/a.csv', 'id,name\n1,a\n');
      const { cut } = await gzipCutAfter(`id,name\n${rows(0, 1000)}`, rows(1000, 2000));
      const zipped = await local.put('in/b.csv.gz', cut);
      const result = await local.warehouse.load(contractJob([plain, zipped]));
      expect(result.outcome === 'rejected' && result.reason).to.match(
        /^gs:\/\/b\/in\/b\.csv\.gz is not a valid gzip file/,
      );
      expect(await rowsOf('SELECT count(*) FROM _ingest.loads')).to.deep.equal([[0n]]);
    });
  });

  describe('malformed rows and refused values under maxBadRecords count together', () => {
    const typed: SchemaField[] = [
      { name: 'a', type: 'INT64' },
      { name: 'b', type: 'STRING' },
    ];
    const text: SchemaField[] = [
      { name: 'a', type: 'STRING' },
      { name: 'b', type: 'STRING' },
    ];
    // Two bad rows each, the first on line 3.
    const cases = [
      {
        what: 'a short row and a refused value',
        content: 'a,b\n1,x\n2\ny,z\n3,w\n',
        schema: typed,
      },
      {
        what: 'long rows (STRING columns only)',
        content: 'a,b\n1,x\n2,y,z\n3,w\n4,v,u\n',
        schema: text,
      },
    ];
    for (const c of cases) {
      it(`${c.what}: skipped within the limit`, async () => {
        const result = await loadText(c.content, {
          csv: { maxBadRecords: 2 },
          schema: c.schema,
        });
        expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows: 2 });
        const bad = result.outcome === 'loaded' ? result.badRecords : undefined;
        expect(bad?.count).to.equal(2);
        expect(bad?.first).to.match(/line 3 of gs:\/\/b\/in\/data\.csv/);
      });

      it(`${c.what}: over the limit, rejected with nothing written`, async () => {
        const result = await loadText(c.content, {
          csv: { maxBadRecords: 1 },
          schema: c.schema,
        });
        expect(result.outcome === 'rejected' && result.reason).to.match(
          /^too many bad rows: 2, more than maxBadRecords 1; first: .*line 3 of/,
        );
        expect(
          await rowsOf("SELECT * FROM information_schema.tables WHERE table_schema = 'ds'"),
        ).to.deep.equal([]);
      });
    }
  });

  it('reports the row skipped under maxBadRecords among 30,002', async () => {
    const good = Array.from({ length: 30_001 }, (_, i) => `${i},${i}\n`).join('');
    const result = await loadText(`a,b\n${good}x,1\n`, {
      csv: { maxBadRecords: 1 },
      schema: [
        { name: 'a', type: 'INT64' },
        { name: 'b', type: 'INT64' },
      ],
    });
    expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows: 30_001 });
    const bad = result.outcome === 'loaded' ? result.badRecords : undefined;
    expect(bad?.count).to.equal(1);
    expect(bad?.first).to.match(/"x".*\(row 30002 of gs:\/\/b\/in\/data\.csv\)$/);
  });

  describe('ISO-8859-1 sources, read through UTF-8 copies', () => {
    const latin1 = (rows: number) =>
      Buffer.from(`id,name\n${'1,caf\xe9 \x93quoted\x94 \x80\n'.repeat(rows)}`, 'latin1');
    let copies: string[];
    let stopWhenCopying: boolean;
    let mkdtemp: sinon.SinonStub;
    beforeEach(() => {
      copies = [];
      stopWhenCopying = false;
      const real = fs.mkdtemp.bind(fs);
      mkdtemp = sinon.stub(fs, 'mkdtemp').callsFake(async (prefix: string) => {
        const folder = await real(prefix);
        copies.push(folder);
        if (stopWhenCopying) void local.warehouse.abort('shutting down');
        return folder;
      });
    });
    afterEach(() => mkdtemp.restore());

    async function expectRemoved(): Promise<void> {
      expect(copies).to.have.length(1);
      for (const folder of copies) {
        expect(await fs.stat(folder).catch(() => 'gone'), folder).to.equal('gone');
      }
    }

    const cases: { what: string; content: Buffer; name?: string; outcome: string }[] = [
      { what: 'a load', content: latin1(3), outcome: 'loaded' },
      { what: 'a gzip load', content: gzipSync(latin1(3)), name: 'in/x.csv.gz', outcome: 'loaded' },
      {
        what: 'a rejection',
        content: Buffer.from('id\n1\nx\xe9\n', 'latin1'),
        outcome: 'rejected',
      },
      {
        what: 'a broken gzip',
        content: gzipSync(latin1(3)).subarray(0, 30),
        name: 'in/x.csv.gz',
        outcome: 'rejected',
      },
    ];
    for (const c of cases) {
      it(`are removed after ${c.what}`, async () => {
        const schema: SchemaField[] = [{ name: 'id', type: 'INT64' }];
        if (c.what !== 'a rejection') schema.push({ name: 'name', type: 'STRING' });
        const result = await loadText(c.content, {
          name: c.name,
          schema,
          csv: { encoding: 'ISO-8859-1' },
        });
        expect(result.outcome, JSON.stringify(result)).to.equal(c.outcome);
        await expectRemoved();
      });
    }

    it('are removed when a load is stopped while it copies', async () => {
      const object = await local.put('in/big.csv', latin1(500_000));
      stopWhenCopying = true;
      const csv = { ...DEFAULT_CSV, encoding: 'ISO-8859-1' as const };
      const stopped = await local.warehouse.load(contractJob([object], { csv })).catch((e) => e);
      expect(stopped).to.be.instanceOf(TransientError);
      expect((stopped as Error).message).to.match(/shutting down/);
      await expectRemoved();
    });
  });

  it("counts each source's own rows in a job of several, gzip and skipped bad rows included", async () => {
    const sources = [
      await local.put('in/three.csv', 'a,b\n1,2\n3,4\n5,6\n'),
      await local.put('in/one.csv.gz', gzipSync('a,b\n7,8\n')),
      await local.put('in/bad.csv', 'a,b\nx,1\n9,10\n11,12\n'),
    ];
    const job = contractJob(sources, {
      csv: { ...DEFAULT_CSV, maxBadRecords: 1 },
      schema: [
        { name: 'a', type: 'INT64' },
        { name: 'b', type: 'INT64' },
      ],
      destination: { dataset: 'ds', table: 't' },
    });
    const result = await local.warehouse.load(job);
    expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows: 6 });
    expect(result.outcome === 'loaded' && result.sourceRows).to.deep.equal([3, 1, 2]);
    const alone = await loadText('a,b\n1,2\n', { table: 'alone' });
    expect(alone, 'a job of one source: its rows are the rows').to.not.have.property('sourceRows');
  });

  describe('a source that changes while it loads', () => {
    const file = () => localObjectPath(local.root, BUCKET, 'in/x.csv');
    let stub: sinon.SinonStub | undefined;
    afterEach(() => stub?.restore());

    /** Runs `change` when DuckDB starts inserting the rows (`before`) or has inserted them (`after`). */
    function onInsert(when: 'before' | 'after', change: () => Promise<void>): void {
      const run = DuckDBConnection.prototype.run;
      stub = sinon.stub(DuckDBConnection.prototype, 'run').callsFake(async function (
        this: DuckDBConnection,
        ...args: Parameters<typeof run>
      ) {
        const insert = /^INSERT INTO "ds"/.test(args[0]);
        if (insert && when === 'before') await change();
        const result = await run.apply(this, args);
        if (insert && when === 'after') await change();
        return result;
      });
    }

    async function expectReplaced(result: LoadResult, why: RegExp): Promise<void> {
      stub?.restore();
      expect(result.outcome, JSON.stringify(result)).to.equal('replaced');
      expect(result.outcome === 'replaced' && result.reason).to.match(why);
      expect(
        await rowsOf("SELECT * FROM information_schema.tables WHERE table_schema = 'ds'"),
      ).to.deep.equal([]);
      expect(await rowsOf('SELECT count(*) FROM _ingest.rejections')).to.deep.equal([[0n]]);
      expect(await rowsOf('SELECT count(*) FROM _ingest.loads')).to.deep.equal([[0n]]);
    }

    it('is replaced when rewritten in place after DuckDB read it, and the new version loads on its own', async () => {
      onInsert('after', () => fs.writeFile(file(), 'a,b\n7,8\n9,10\n11,12\n'));
      await expectReplaced(
        await loadText('a,b\n1,2\n', { name: 'in/x.csv' }),
        /^generation \d+ of gs:\/\/b\/in\/x\.csv was overwritten while it was read .*own event loads it$/,
      );
      const current = await createLocalStore(local.root).stat(BUCKET, 'in/x.csv');
      if (!current) throw new Error('in/x.csv is gone');
      const job = contractJob([current], { destination: { dataset: 'ds', table: 't' } });
      const again = createDuckDbWarehouse({ file: local.file, objectPath: local.objectPath });
      try {
        expect(await again.load(job)).to.deep.include({ outcome: 'loaded', rows: 3 });
      } finally {
        await again.close();
      }
    });

    it('is replaced, not rejected, when a half-written new version fails to parse', async () => {
      onInsert('before', () => fs.writeFile(file(), 'a,b\n1,2\n3,"half wri'));
      await expectReplaced(
        await loadText('a,b\n1,2\n3,4\n5,6\n', { name: 'in/x.csv' }),
        /was overwritten while it was read/,
      );
    });

    it('is replaced when another file is renamed over it while it loads', async () => {
      onInsert('after', async () => {
        await fs.writeFile(`${file()}.tmp`, 'a,b\n1,2\n');
        await fs.rename(`${file()}.tmp`, file());
      });
      await expectReplaced(
        await loadText('a,b\n1,2\n', { name: 'in/x.csv' }),
        /^generation \d+ of gs:\/\/b\/in\/x\.csv was replaced by generation \d+ while it was read/,
      );
    });

    it('is replaced when the generation the job names was overwritten before the load began', async () => {
      const old = await local.put('in/x.csv', 'a,b\n1,2\n');
      await fs.writeFile(file(), 'a,b\n1,2\n3,4\n');
      const job = contractJob([old], { destination: { dataset: 'ds', table: 't' } });
      await expectReplaced(await local.warehouse.load(job), /was overwritten/);
    });

    it('still loads when removed after it was opened: what was read is that generation, whole', async () => {
      onInsert('after', () => fs.rm(file()));
      const result = await loadText('a,b\n1,2\n', { name: 'in/x.csv' });
      expect(result).to.deep.include({ outcome: 'loaded', rows: 1 });
    });
  });

  describe('abort', () => {
    it('interrupts a large load: it and the queued one fail with TransientError and write nothing; a load that committed keeps its result', async () => {
      const header = 'id,name,price\n';
      const big = Array.from({ length: 400_000 }, (_, i) => `${i},name ${i},${i * 1.5}\n`);
      const objects = [
        await local.put('in/small.csv', `${header}1,a,1.5\n`),
        await local.put('in/big.csv', header + big.join('')),
        await local.put('in/queued.csv', `${header}2,b,3\n`),
      ];
      const jobs = objects.map((object) => contractJob([object]));
      let insertStarted: () => void = () => undefined;
      const started = new Promise<void>((resolve) => (insertStarted = resolve));
      // Jobs run in order: the second insert into the table is the big one's.
      let inserts = 0;
      const run = DuckDBConnection.prototype.run;
      const stub = sinon.stub(DuckDBConnection.prototype, 'run').callsFake(function (
        this: DuckDBConnection,
        ...args: Parameters<typeof run>
      ) {
        const result = run.apply(this, args);
        if (args[0].startsWith('INSERT INTO "contract"') && ++inserts === 2) insertStarted();
        return result;
      });
      let results: unknown[];
      try {
        const loads = jobs.map((job) =>
          local.warehouse.load(job).then(
            (result) => result,
            (error: unknown) => error,
          ),
        );
        await started; // the small load has committed; the big one is being inserted
        await local.warehouse.abort('shutting down');
        results = await Promise.all(loads);
      } finally {
        stub.restore();
      }
      expect(results[0]).to.deep.include({ outcome: 'loaded', rows: 1 });
      for (const error of results.slice(1)) {
        expect(error).to.be.instanceOf(TransientError);
        expect((error as Error).message).to.match(/shutting down/);
      }
      // Stopped in the middle of its insert, not after it.
      expect(String((results[1] as Error).cause)).to.match(/INTERRUPT/);
      const refused = await local.warehouse.load(jobs[2] as LoadJob).catch((e: unknown) => e);
      expect(refused).to.be.instanceOf(TransientError);

      expect(await query(local.file, 'SELECT count(*) FROM contract.items')).to.deep.equal([[1n]]);
      expect(await query(local.file, 'SELECT job_id FROM _ingest.loads')).to.deep.equal([
        [jobs[0]?.jobId],
      ]);
      expect(await query(local.file, 'SELECT count(*) FROM _ingest.rejections')).to.deep.equal([
        [0n],
      ]);

      const restarted = createDuckDbWarehouse({ file: local.file, objectPath: local.objectPath });
      try {
        const again = await Promise.all(jobs.map((job) => restarted.load(job)));
        expect(again.map((r) => r.outcome)).to.deep.equal(['duplicate', 'loaded', 'loaded']);
        expect(again[1]).to.deep.include({ rows: 400_000 });
      } finally {
        await restarted.close();
      }
      expect(await query(local.file, 'SELECT count(*) FROM contract.items')).to.deep.equal([
        [400_002n],
      ]);
    });

    it('resolves at once with nothing to stop, and lets go of the file', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      expect((await local.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
      await local.warehouse.abort('shutting down');
      expect(await query(local.file, 'SELECT count(*) FROM contract.items')).to.deep.equal([[1n]]);
    });
  });

  describe('readers during sustained loads', () => {
    it('lets another process read the tables while loads keep coming', async () => {
      // The file would stay open for as long as work is queued, were it not let go now and then.
      const busy = await makeLocal({ idleMs: 60_000, holdMs: 200, gapMs: 100 });
      try {
        const objects = await Promise.all(
          [0, 1, 2, 3].map((i) => busy.put(`in/${i}.csv`, `a\n${i}\n`)),
        );
        expect(
          (await busy.warehouse.load(contractJob([objects[0] as StoredObject]))).outcome,
        ).to.equal('loaded');
        const modulePath = path.resolve(__dirname, '../../src/warehouses/duckdb');
        const script = `require(${JSON.stringify(modulePath)})
          .readDuckDbTables(${JSON.stringify(busy.file)}, { lockWaitMs: 20000 })
          .then((t) => console.log(JSON.stringify(t)), (e) => { console.error(e.message); process.exit(1); });`;
        let readerDone = false;
        const reader = run(process.execPath, ['-e', script]).finally(() => (readerDone = true));
        let next = 0;
        const keepLoading = async () => {
          while (!readerDone) {
            const object = objects[next++ % objects.length] as StoredObject;
            expect((await busy.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
          }
        };
        await Promise.all([keepLoading(), keepLoading(), keepLoading()]);
        const { stdout } = await reader;
        const tables = JSON.parse(stdout) as { table: string }[];
        expect(tables.map((t) => t.table)).to.deep.equal(['contract.items']);
      } finally {
        await busy.cleanup();
      }
    });

    it('lets go of the file while idle as soon as another process waits for it', async () => {
      // Idle for a minute before letting go unasked: the reader gets the file only by waiting for it.
      const holding = await makeLocal({ idleMs: 60_000 });
      try {
        const object = await holding.put('in/x.csv', 'a\n1\n2\n');
        expect((await holding.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
        const modulePath = path.resolve(__dirname, '../../src/warehouses/duckdb');
        const script = `require(${JSON.stringify(modulePath)})
          .readDuckDbTables(${JSON.stringify(holding.file)}, { lockWaitMs: 5000 })
          .then((t) => console.log(JSON.stringify(t)), (e) => { console.error(e.message); process.exit(1); });`;
        const { stdout } = await run(process.execPath, ['-e', script]);
        expect(JSON.parse(stdout)).to.deep.equal([{ table: 'contract.items', rows: 2 }]);
        // And the next load opens it again.
        const next = await holding.put('in/y.csv', 'a\n3\n');
        expect((await holding.warehouse.load(contractJob([next]))).outcome).to.equal('loaded');
      } finally {
        await holding.cleanup();
      }
    });

    it('names the process that holds the file when giving up', async () => {
      const object = await local.put('in/x.csv', 'a\n1\n');
      expect((await local.warehouse.load(contractJob([object]))).outcome).to.equal('loaded');
      await local.warehouse.close();
      const holder = await holdLock(local.file, 60_000);
      try {
        const error = await readDuckDbTables(local.file, { lockWaitMs: 100 }).catch(
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(FileBusyError);
        expect((error as FileBusyError).holder).to.match(new RegExp(`\\(PID ${holder.pid}\\)$`));
        expect((error as Error).message).to.match(
          /is locked by .* \(PID \d+\); gave up after 0\.1 s$/,
        );
      } finally {
        await holder.release();
      }
    });
  });
});
