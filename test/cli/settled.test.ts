import { expect } from 'chai';
import { DuckDBInstance } from '@duckdb/node-api';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readSettledKeys, settledKey, toSettledKeys } from '../../src/cli/settled';
import { insertLoad, insertRejection } from '../../src/warehouses/duckdb/ledger';
import { closeSession, openSession } from '../../src/warehouses/duckdb/session';
import type { StoredObject } from '../../src/stores/store';
import { contractJob } from '../contract/warehouse-contract';

const object = (name: string, generation: string): StoredObject => ({
  bucket: 'demo',
  name,
  generation,
  size: 1,
});

describe('the objects the local ledger has settled', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'settled-'));
    file = path.join(dir, 'warehouse.duckdb');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('keys each object generation', () => {
    expect(settledKey(object('in/a.csv', '7'))).to.equal('gs://demo/in/a.csv#7');
    expect(
      toSettledKeys([
        { uri: 'gs://demo/a.csv', generation: '1' },
        { uri: 'gs://demo/a.csv', generation: '2' },
      ]),
    ).to.deep.equal(new Set(['gs://demo/a.csv#1', 'gs://demo/a.csv#2']));
  });

  it('is empty without a warehouse file, and creates none', async () => {
    expect(await readSettledKeys(file)).to.deep.equal(new Set());
    expect(fs.existsSync(file)).to.equal(false);
  });

  it('is empty for a warehouse file without a ledger', async () => {
    const db = await DuckDBInstance.create(file);
    await (await db.connect()).run('CREATE TABLE t (a INT)');
    db.closeSync();
    expect(await readSettledKeys(file)).to.deep.equal(new Set());
  });

  it('lists every member of loaded jobs and of rejected ones, with their generations', async () => {
    const session = await openSession(file, 1000, false);
    try {
      await insertLoad(
        session.connection,
        contractJob([object('a.csv', '1'), object('b.csv', '2')]),
        2,
      );
      await insertRejection(session.connection, contractJob([object('bad.csv', '3')]), 'bad CSV');
    } finally {
      closeSession(session);
    }
    expect(await readSettledKeys(file)).to.deep.equal(
      new Set(['gs://demo/a.csv#1', 'gs://demo/b.csv#2', 'gs://demo/bad.csv#3']),
    );
  });

  it('reads a ledger whose rejections predate generations, and a writable open adds the column', async () => {
    const db = await DuckDBInstance.create(file);
    const c = await db.connect();
    await c.run(`
      CREATE SCHEMA _ingest;
      CREATE TABLE _ingest.loads (
        job_id VARCHAR PRIMARY KEY, uris VARCHAR[] NOT NULL, generations VARCHAR[] NOT NULL,
        destination VARCHAR NOT NULL, write_mode VARCHAR NOT NULL, rows BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL);
      CREATE TABLE _ingest.rejections (
        job_id VARCHAR NOT NULL, uris VARCHAR[] NOT NULL, reason VARCHAR NOT NULL, "at" TIMESTAMPTZ NOT NULL);
      INSERT INTO _ingest.rejections VALUES ('j1', ['gs://demo/old.csv'], 'bad', now());`);
    c.closeSync();
    db.closeSync();
    expect(await readSettledKeys(file)).to.deep.equal(new Set());

    const session = await openSession(file, 1000, false);
    try {
      await insertRejection(session.connection, contractJob([object('new.csv', '4')]), 'bad CSV');
    } finally {
      closeSession(session);
    }
    // An old rejection names no generation: it cannot be matched, so that object is sent again.
    expect(await readSettledKeys(file)).to.deep.equal(new Set(['gs://demo/new.csv#4']));
  });
});
