import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { DEFAULT_CSV } from '../../src/config';
import { createLocalStore, localObjectPath } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import { createDuckDbWarehouse } from '../../src/warehouses/duckdb';
import type { LoadJob, LoadResult } from '../../src/warehouses/warehouse';
import { contractJob } from '../contract/warehouse-contract';

const BUCKET = 'b';
const TABLE = { dataset: 'ds', table: 't' };

/** Runs SQL on the warehouse file from an instance of its own (the warehouse has let go of it). */
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

describe('DuckDB warehouse: lineage', function () {
  this.timeout(60_000);
  let root: string;
  let file: string;
  let warehouse: ReturnType<typeof createDuckDbWarehouse>;
  const objectPath = (object: StoredObject) => localObjectPath(root, object.bucket, object.name);
  const open = () => createDuckDbWarehouse({ file, objectPath, idleMs: 20 });

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'duckdb-lineage-'));
    file = path.join(root, 'warehouse.duckdb');
    warehouse = open();
  });
  afterEach(async () => {
    await warehouse.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  /** Writes an object; `at` (epoch seconds) sets its mtime, which is its generation. */
  async function put(name: string, content: string | Buffer, at?: number): Promise<StoredObject> {
    const target = localObjectPath(root, BUCKET, name);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, content);
    if (at !== undefined) await fs.utimes(target, at, at);
    const object = await createLocalStore(root).stat(BUCKET, name);
    if (!object) throw new Error(`${name} was not written`);
    return object;
  }

  const job = (sources: StoredObject[], overrides: Partial<LoadJob> = {}): LoadJob =>
    contractJob(sources, { destination: TABLE, lineage: true, ...overrides });

  const load = (sources: StoredObject[], overrides: Partial<LoadJob> = {}) =>
    warehouse.load(job(sources, overrides));

  /** SQL on the file between loads: the warehouse lets go of it, and a new one (a restart) follows. */
  async function sql(text: string): Promise<unknown[][]> {
    await warehouse.close();
    try {
      return await query(file, text);
    } finally {
      warehouse = open();
    }
  }

  /** Each object's rows in the table: URI → [generation, rows, distinct ids]. */
  async function byObject(): Promise<Record<string, [string, number, number]>> {
    const rows = await sql(
      `SELECT _source_uri, string_agg(DISTINCT _source_generation::VARCHAR, ','), count(*)::INTEGER,
              count(DISTINCT id)::INTEGER
       FROM ds.t GROUP BY ALL ORDER BY 1`,
    );
    return Object.fromEntries(
      rows.map(([uri, generation, n, ids]) => [
        String(uri),
        [String(generation), Number(n), Number(ids)],
      ]),
    );
  }

  const ids = (from: number, count: number, label = 'v') =>
    'id,name\n' +
    Array.from({ length: count }, (_, i) => `${from + i},${label}${from + i}\n`).join('');

  function loaded(result: LoadResult): Extract<LoadResult, { outcome: 'loaded' }> {
    if (result.outcome !== 'loaded') throw new Error(`not loaded: ${JSON.stringify(result)}`);
    return result;
  }

  it('first load: every row carries its gs:// URI, its generation and the one time of its job', async () => {
    const a = await put('in/a.csv', ids(1, 3));
    const first = job([a]);
    expect(await warehouse.load(first)).to.deep.equal({
      outcome: 'loaded',
      jobId: first.jobId,
      rows: 3,
      replacedRows: [0],
    });
    expect(
      await sql(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
         WHERE table_schema = 'ds' AND table_name = 't' ORDER BY ordinal_position`,
      ),
    ).to.deep.equal([
      ['id', 'BIGINT', 'YES'],
      ['name', 'VARCHAR', 'YES'],
      ['_source_uri', 'VARCHAR', 'YES'],
      ['_source_generation', 'BIGINT', 'YES'],
      ['_loaded_at', 'TIMESTAMP WITH TIME ZONE', 'YES'],
    ]);
    expect(
      await sql('SELECT id, _source_uri, _source_generation FROM ds.t ORDER BY id'),
    ).to.deep.equal([1n, 2n, 3n].map((id) => [id, 'gs://b/in/a.csv', BigInt(a.generation)]));
    // One time for the job: its transaction's, which its ledger row has too.
    expect(
      await sql(
        `SELECT count(DISTINCT _loaded_at)::INTEGER, count(_loaded_at)::INTEGER,
                bool_and(_loaded_at = (SELECT loaded_at FROM _ingest.loads)),
                bool_and(_loaded_at > now() - INTERVAL 1 MINUTE)
         FROM ds.t`,
      ),
    ).to.deep.equal([[1, 3, true, true]]);
  });

  it('a second object adds its rows and leaves the first one alone', async () => {
    const a = await put('a.csv', ids(1, 2));
    const b = await put('b.csv', ids(10, 3));
    loaded(await load([a]));
    const before = await sql(`SELECT _loaded_at FROM ds.t WHERE _source_uri = 'gs://b/a.csv'`);
    expect(loaded(await load([b])).replacedRows).to.deep.equal([0]);
    expect(await byObject()).to.deep.equal({
      'gs://b/a.csv': [a.generation, 2, 2],
      'gs://b/b.csv': [b.generation, 3, 3],
    });
    expect(
      await sql(`SELECT _loaded_at FROM ds.t WHERE _source_uri = 'gs://b/a.csv'`),
    ).to.deep.equal(before);
  });

  it("a new generation of an object replaces exactly that object's rows, and says how many", async () => {
    const a1 = await put('a.csv', ids(1, 2), 1_000_000);
    const b = await put('b.csv', ids(10, 3));
    loaded(await load([a1]));
    loaded(await load([b]));
    const a2 = await put('a.csv', ids(100, 4, 'new'), 2_000_000);
    const result = loaded(await load([a2]));
    expect(result).to.deep.include({ rows: 4, replacedRows: [2] });
    expect(await byObject()).to.deep.equal({
      'gs://b/a.csv': [a2.generation, 4, 4],
      'gs://b/b.csv': [b.generation, 3, 3],
    });
    expect(
      await sql(`SELECT min(id), max(id) FROM ds.t WHERE _source_uri = 'gs://b/a.csv'`),
    ).to.deep.equal([[100n, 103n]]);
  });

  it('a forced reload of the same generation replaces its rows by the same rows, once', async () => {
    const a = await put('a.csv', ids(1, 5));
    const b = await put('b.csv', ids(10, 2));
    loaded(await load([a]));
    loaded(await load([b]));
    // A forced reload runs under another job id.
    const again = loaded(await load([a]));
    expect(again).to.deep.include({ rows: 5, replacedRows: [5] });
    expect(await byObject()).to.deep.equal({
      'gs://b/a.csv': [a.generation, 5, 5],
      'gs://b/b.csv': [b.generation, 2, 2],
    });
    expect(await sql('SELECT count(*)::INTEGER FROM _ingest.loads')).to.deep.equal([[3]]);
  });

  it('an older generation after a newer one is superseded: nothing changes and nothing is recorded', async () => {
    const newer = await put('a.csv', ids(1, 3, 'new'), 2_000_000);
    loaded(await load([newer]));
    const table = await sql('SELECT * FROM ds.t ORDER BY id');
    const older = await put('a.csv', ids(50, 7, 'old'), 1_000_000);
    expect(BigInt(older.generation) < BigInt(newer.generation)).to.equal(true);
    const stale = job([older]);
    expect(await warehouse.load(stale)).to.deep.equal({
      outcome: 'superseded',
      jobId: stale.jobId,
      newer: { 'gs://b/a.csv': newer.generation },
    });
    expect(await sql('SELECT * FROM ds.t ORDER BY id')).to.deep.equal(table);
    expect(
      await sql(
        `SELECT (SELECT count(*) FROM _ingest.loads WHERE job_id = '${stale.jobId}')::INTEGER,
                (SELECT count(*) FROM _ingest.rejections)::INTEGER,
                (SELECT count(*) FROM _ingest.claims WHERE job_id = '${stale.jobId}')::INTEGER`,
      ),
    ).to.deep.equal([[0, 0, 0]]);
    // Not remembered as done either: the same job asked again is superseded again.
    expect((await warehouse.load(stale)).outcome).to.equal('superseded');
  });

  it('a coalesced job with one superseded source writes nothing of any source', async () => {
    const a = await put('a.csv', ids(1, 2), 2_000_000);
    loaded(await load([a]));
    const stale = await put('a.csv', ids(5, 2), 1_000_000);
    const c = await put('c.csv', ids(20, 2));
    const result = await load([c, stale]);
    expect(result).to.deep.include({
      outcome: 'superseded',
      newer: { 'gs://b/a.csv': a.generation },
    });
    expect(await byObject()).to.deep.equal({ 'gs://b/a.csv': [a.generation, 2, 2] });
  });

  it('a new generation with a bad value is rejected, and the old rows stay', async () => {
    const a1 = await put('a.csv', ids(1, 3), 1_000_000);
    loaded(await load([a1]));
    const table = await sql('SELECT * FROM ds.t ORDER BY id');
    const a2 = await put('a.csv', 'id,name\n7,x\nseven,y\n', 2_000_000);
    const result = await load([a2]);
    expect(result.outcome).to.equal('rejected');
    expect((result as { reason: string }).reason).to.match(/could not parse "seven" as INT64/);
    expect(await sql('SELECT * FROM ds.t ORDER BY id')).to.deep.equal(table);
  });

  it('20 objects in one job, then one of them replaced', async () => {
    const parts: StoredObject[] = [];
    for (let i = 0; i < 20; i++)
      parts.push(await put(`p/${i}.csv`, ids(i * 100, i + 1), 1_000_000 + i));
    const all = loaded(await load(parts));
    expect(all.rows).to.equal((20 * 21) / 2);
    expect(all.replacedRows).to.deep.equal(Array<number>(20).fill(0));
    expect(all.sourceRows).to.deep.equal(parts.map((_, i) => i + 1));
    const expected = Object.fromEntries(
      parts.map((p, i): [string, [string, number, number]] => [
        `gs://b/p/${i}.csv`,
        [p.generation, i + 1, i + 1],
      ]),
    );
    expect(await byObject()).to.deep.equal(expected);
    // Every row's URI is its own file's.
    expect(
      await sql(
        `SELECT count(*)::INTEGER FROM ds.t
         WHERE _source_uri <> 'gs://b/p/' || (id // 100)::VARCHAR || '.csv'`,
      ),
    ).to.deep.equal([[0]]);
    const seven = await put('p/7.csv', ids(7000, 2, 'again'), 2_000_000);
    expect(loaded(await load([seven]))).to.deep.include({ rows: 2, replacedRows: [8] });
    expect(await byObject()).to.deep.equal({
      ...expected,
      'gs://b/p/7.csv': [seven.generation, 2, 2],
    });
  });

  it('a job of several reads (plain and gzip, ISO-8859-1, maxBadRecords) maps each row to its source', async () => {
    const plain = await put('m/plain.csv', ids(1, 3));
    const zipped = await put('m/zipped.csv.gz', gzipSync(ids(10, 4)));
    const other = await put('m/other.csv', ids(20, 2));
    const mixed = loaded(await load([plain, zipped, other]));
    expect(mixed).to.deep.include({ sourceRows: [3, 4, 2], replacedRows: [0, 0, 0] });
    // Under maxBadRecords the insert filters refused values.
    const bad = await put('m/bad.csv', 'id,name\n30,x\nthirty,y\n31,z\n');
    const good = await put('m/good.csv', ids(40, 2));
    const skipped = loaded(await load([bad, good], { csv: { ...DEFAULT_CSV, maxBadRecords: 1 } }));
    expect(skipped).to.deep.include({ rows: 4, replacedRows: [0, 0] });
    const latin = await put(
      'm/latin.csv',
      Buffer.from('id,name\n50,caf\xe9\n51,na\xefve\n', 'latin1'),
    );
    const alsoLatin = await put('m/latin2.csv', Buffer.from('id,name\n60,\xe9t\xe9\n', 'latin1'));
    loaded(await load([latin, alsoLatin], { csv: { ...DEFAULT_CSV, encoding: 'ISO-8859-1' } }));
    expect(await byObject()).to.deep.equal({
      'gs://b/m/bad.csv': [bad.generation, 2, 2],
      'gs://b/m/good.csv': [good.generation, 2, 2],
      'gs://b/m/latin.csv': [latin.generation, 2, 2],
      'gs://b/m/latin2.csv': [alsoLatin.generation, 1, 1],
      'gs://b/m/other.csv': [other.generation, 2, 2],
      'gs://b/m/plain.csv': [plain.generation, 3, 3],
      'gs://b/m/zipped.csv.gz': [zipped.generation, 4, 4],
    });
    expect(await sql(`SELECT name FROM ds.t WHERE id = 50`)).to.deep.equal([['café']]);
  });

  it('on a table without lineage columns, adds them NULLABLE and leaves NULL in the older rows', async () => {
    const old = await put('old.csv', ids(1, 2));
    loaded(await load([old], { lineage: undefined }));
    const a = await put('a.csv', ids(10, 3));
    const result = loaded(await load([a]));
    expect(result.schemaChanges).to.deep.equal([
      'added column _source_uri STRING',
      'added column _source_generation INT64',
      'added column _loaded_at TIMESTAMP',
    ]);
    expect(result.replacedRows).to.deep.equal([0]);
    expect(await warehouse.tableColumns(TABLE, true)).to.deep.equal([
      { name: 'id', type: 'INT64', mode: 'NULLABLE' },
      { name: 'name', type: 'STRING', mode: 'NULLABLE' },
      { name: '_source_uri', type: 'STRING', mode: 'NULLABLE' },
      { name: '_source_generation', type: 'INT64', mode: 'NULLABLE' },
      { name: '_loaded_at', type: 'TIMESTAMP', mode: 'NULLABLE' },
    ]);
    expect(
      await sql(
        `SELECT id, _source_uri, _source_generation, _loaded_at IS NULL FROM ds.t ORDER BY id`,
      ),
    ).to.deep.equal([
      [1n, null, null, true],
      [2n, null, null, true],
      ...[10n, 11n, 12n].map((id) => [id, 'gs://b/a.csv', BigInt(a.generation), false]),
    ]);
    // The next load of the object replaces its own rows only.
    const a2 = await put('a.csv', ids(20, 1), 2_000_000_000);
    expect(loaded(await load([a2]))).to.deep.include({ replacedRows: [3] });
    expect(await sql('SELECT count(*)::INTEGER FROM ds.t WHERE _source_uri IS NULL')).to.deep.equal(
      [[2]],
    );
  });

  it('a route without lineage writes no lineage columns and reports no replaced rows', async () => {
    const a = await put('a.csv', ids(1, 2));
    const result = loaded(await load([a], { lineage: undefined }));
    expect(result).to.not.have.property('replacedRows');
    const columns = (await warehouse.tableColumns(TABLE, true))?.map((c) => c.name);
    expect(columns).to.deep.equal(['id', 'name']);
    loaded(await load([a], { lineage: false }));
    expect(await sql('SELECT count(*)::INTEGER FROM ds.t')).to.deep.equal([[4]]);
  });

  it('a header that names a lineage column is rejected', async () => {
    const a = await put('a.csv', 'id,_source_uri\n1,x\n');
    const result = await load([a]);
    expect(result.outcome).to.equal('rejected');
    expect((result as { reason: string }).reason).to.match(/"_source_uri" is a lineage column/);
  });

  it('truncate, replace and partition write the lineage columns and keep their own replacing', async () => {
    const a = await put('a.csv', ids(1, 2));
    const b = await put('b.csv', ids(10, 3));
    for (const write of ['truncate', 'replace'] as const) {
      const destination = { dataset: 'ds', table: write };
      loaded(await load([a], { write, destination }));
      const second = loaded(await load([b], { write, destination }));
      expect(second).to.not.have.property('replacedRows');
      expect(
        await sql(
          `SELECT _source_uri, _source_generation, count(*)::INTEGER, count(_loaded_at)::INTEGER
           FROM ds.${write} GROUP BY ALL`,
        ),
      ).to.deep.equal([['gs://b/b.csv', BigInt(b.generation), 3, 3]]);
    }
    const day = { dataset: 'ds', table: 'days', partition: '20260102' };
    loaded(await load([a], { write: 'partition', destination: day }));
    const replaced = loaded(await load([b], { write: 'partition', destination: day }));
    expect(replaced).to.not.have.property('replacedRows');
    expect(
      await sql(
        `SELECT _source_uri, count(*)::INTEGER, count(_loaded_at)::INTEGER, min("_PARTITIONDATE")::VARCHAR
         FROM ds.days GROUP BY ALL`,
      ),
    ).to.deep.equal([['gs://b/b.csv', 3, 3, '2026-01-02']]);
  });

  it('the history and a followed job tell the rows replaced', async () => {
    const a1 = await put('a.csv', ids(1, 4), 1_000_000);
    const b = await put('b.csv', ids(10, 2), 1_000_000);
    const first = job([a1, b]);
    loaded(await warehouse.load(first));
    const a2 = await put('a.csv', ids(1, 3), 2_000_000);
    const b2 = await put('b.csv', ids(10, 1), 2_000_000);
    const second = job([a2, b2]);
    expect(loaded(await warehouse.load(second)).replacedRows).to.deep.equal([4, 2]);
    const plain = await put('c.csv', ids(20, 1));
    loaded(await load([plain], { lineage: undefined, destination: { dataset: 'ds', table: 'u' } }));
    const history = await warehouse.inspector.history(new Date(0), 10);
    const replaced = Object.fromEntries(history.map((e) => [e.jobId, e.replacedRows]));
    expect(replaced).to.deep.equal({
      [first.jobId]: 0,
      [second.jobId]: 6,
      [history.find((e) => e.objects[0] === 'gs://b/c.csv')?.jobId as string]: undefined,
    });
    // Known to this process, and to a new one from the ledger.
    const where = { location: 'US', deadline: Date.now() + 10_000 };
    const followed = await warehouse.followJob(second.jobId, where);
    expect(followed?.result).to.deep.include({ outcome: 'loaded', rows: 4, replacedRows: [4, 2] });
    await warehouse.close();
    warehouse = open();
    const fromLedger = await warehouse.followJob(second.jobId, where);
    expect(fromLedger?.result).to.deep.include({
      outcome: 'loaded',
      rows: 4,
      replacedRows: [4, 2],
    });
    expect(fromLedger?.uris).to.deep.equal(['gs://b/a.csv', 'gs://b/b.csv']);
    // A duplicate of a lineage job writes nothing again.
    expect(await warehouse.load(second)).to.deep.include({ outcome: 'duplicate', rows: 4 });
    expect(await byObject()).to.deep.equal({
      'gs://b/a.csv': [a2.generation, 3, 3],
      'gs://b/b.csv': [b2.generation, 1, 1],
    });
  });

  it('opens a ledger written before replaced rows were kept, and keeps them from then on', async () => {
    await warehouse.close();
    const instance = await DuckDBInstance.create(file);
    const connection = await instance.connect();
    await connection.run(`
      CREATE SCHEMA _ingest;
      CREATE TABLE _ingest.loads (
        job_id VARCHAR PRIMARY KEY, uris VARCHAR[] NOT NULL, generations VARCHAR[] NOT NULL,
        destination VARCHAR NOT NULL, write_mode VARCHAR NOT NULL, rows BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL);
      INSERT INTO _ingest.loads VALUES
        ('old-job', ['gs://b/old.csv'], ['1'], 'ds.t', 'append', 5, now());`);
    connection.closeSync();
    instance.closeSync();
    warehouse = open();
    const a = await put('a.csv', ids(1, 2));
    const result = loaded(await load([a]));
    expect(result.replacedRows).to.deep.equal([0]);
    const history = await warehouse.inspector.history(new Date(0), 10);
    expect(history.map((e) => [e.jobId, e.rows, e.replacedRows])).to.have.deep.members([
      ['old-job', 5, undefined],
      [result.jobId, 2, 0],
    ]);
    expect(
      await sql(`SELECT job_id, replaced_rows FROM _ingest.loads ORDER BY job_id = 'old-job'`),
    ).to.deep.equal([
      [result.jobId, [0n]],
      ['old-job', null],
    ]);
  });
});
