import { expect } from 'chai';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { readLedgerHistory } from '../../src/warehouses/duckdb/history';
import { describeTables, previewTable } from '../../src/warehouses/duckdb/inspect';
import { LEDGER_DDL } from '../../src/warehouses/duckdb/ledger';

describe('DuckDB warehouse views for the status page', () => {
  let instance: DuckDBInstance;
  let c: DuckDBConnection;
  beforeEach(async () => {
    instance = await DuckDBInstance.create(':memory:');
    c = await instance.connect();
  });
  afterEach(() => {
    c.closeSync();
    instance.closeSync();
  });

  it('describes every table outside the ledger with its rows and columns in order', async () => {
    await c.run(LEDGER_DDL);
    await c.run(`CREATE SCHEMA ingest; CREATE SCHEMA sales;
      CREATE TABLE ingest.t ("b" BIGINT, "a ""quoted""" VARCHAR);
      INSERT INTO ingest.t VALUES (1, 'x'), (2, NULL);
      CREATE TABLE sales.daily (d DATE)`);
    expect(await describeTables(c)).to.deep.equal([
      {
        table: 'ingest.t',
        rows: 2,
        columns: [
          { name: 'b', type: 'BIGINT', bigQueryType: 'INT64' },
          { name: 'a "quoted"', type: 'VARCHAR', bigQueryType: 'STRING' },
        ],
      },
      {
        table: 'sales.daily',
        rows: 0,
        columns: [{ name: 'd', type: 'DATE', bigQueryType: 'DATE' }],
      },
    ]);
  });

  it('previews the first rows as text, and nothing for a name that is not a table', async () => {
    await c.run(`CREATE SCHEMA ingest;
      CREATE TABLE ingest.t (n BIGINT, d DATE, s VARCHAR);
      INSERT INTO ingest.t SELECT i, DATE '2026-01-01' + i::INT, CASE WHEN i = 2 THEN NULL ELSE '<b>' || i END
      FROM range(30) r(i)`);
    const preview = await previewTable(c, 'ingest.t', 20);
    expect(preview?.columns).to.deep.equal(['n', 'd', 's']);
    expect(preview?.rows).to.have.length(20);
    expect(preview?.rows.slice(1, 3)).to.deep.equal([
      ['1', '2026-01-02', '<b>1'],
      ['2', '2026-01-03', null],
    ]);
    for (const name of ['ingest.missing', 'ingest.t; DROP TABLE ingest.t', '_ingest.loads', 't'])
      expect(await previewTable(c, name, 20), name).to.equal(undefined);
  });

  it('has no history in a file without the ledger', async () => {
    expect(await readLedgerHistory(c, new Date(0), 10)).to.deep.equal([]);
  });
});
