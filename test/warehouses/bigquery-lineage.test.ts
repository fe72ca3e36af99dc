import { expect } from 'chai';
import * as path from 'node:path';
import * as ts from 'typescript';
import { TransientError } from '../../src/core/errors';
import { createGcsStore } from '../../src/stores/gcs';
import type { StoredObject } from '../../src/stores/store';
import { createBigQueryWarehouse } from '../../src/warehouses/bigquery';
import { readCloudHistory } from '../../src/warehouses/bigquery/history';
import type { LoadJob, LoadResult, Warehouse } from '../../src/warehouses/warehouse';
import { contractJob } from '../contract/warehouse-contract';
import {
  QUERY_FIELDS,
  bigQueryClient,
  checkAgainstSpec,
  isInsert,
  startBigQueryServer,
  type BigQueryServer,
  type JobBody,
} from '../servers/bigquery-server';
import { parseScript } from '../servers/bigquery-sql';
import { startGcsServer, storageClient, type GcsServer } from '../servers/gcs-server';
import type { RecordedRequest } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';
const DATASET = 'lineage';
const LABELS = { component: 'gcs-bq-ingest', bucket: BUCKET, route: 'route-0' };

type Row = Record<string, string | null>;

describe('BigQuery lineage: per-file replace (REST test servers)', function () {
  this.timeout(60_000);
  let gcs: GcsServer;
  let bq: BigQueryServer;
  let warehouse: Warehouse;
  let tables = 0;

  const open = () =>
    createBigQueryWarehouse({
      bigquery: bigQueryClient(bq, { retryOptions: { autoRetry: false } }),
      storage: storageClient(gcs),
      pollIntervalMs: 5,
      retryDelayMs: 1,
    });

  before(async () => {
    gcs = await startGcsServer();
    bq = await startBigQueryServer({ gcs, jobDurationMs: 10 });
    warehouse = open();
  });
  after(async () => {
    await bq.close();
    await gcs.close();
  });
  beforeEach(() => {
    bq.resetCounters();
    gcs.resetCounters();
  });

  function put(name: string, body: string): StoredObject {
    const resource = gcs.put(BUCKET, name, body);
    const { bucket, generation } = resource;
    return { bucket, name: resource.name, generation, size: Number(resource.size) };
  }
  const csv = (ids: number[], tag = 'v1') =>
    `id,name\n${ids.map((i) => `${i},${tag} ${i}`).join('\n')}\n`;

  function lineageJob(table: string, sources: StoredObject[], over: Partial<LoadJob> = {}) {
    return contractJob(sources, {
      destination: { dataset: DATASET, table },
      lineage: true,
      clustering: ['_source_uri'],
      labels: LABELS,
      ...over,
    });
  }
  const newTable = () => `t${++tables}`;
  const rowsOf = (table: string): Row[] =>
    [...(bq.table(PROJECT, DATASET, table)?.rows.values() ?? [])].flat();
  const rowsFrom = (table: string, object: StoredObject) =>
    rowsOf(table).filter((r) => r._source_uri === `gs://${BUCKET}/${object.name}`);
  const queryInserts = () => bq.inserts().filter((b) => b.configuration?.query);
  const loadInserts = () => bq.inserts().filter((b) => b.configuration?.load);
  /** Staging tables this test's requests created that are still there. */
  const stagingLeft = () =>
    bq.requests
      .filter((r) => r.method === 'POST' && /\/tables$/.test(r.path))
      .map((r) => (r.body as { tableReference: { tableId: string } }).tableReference.tableId)
      .filter((id) => id.startsWith('_ingest_stage_') && bq.table(PROJECT, DATASET, id));

  it('first load: the rows get the three columns, the gs:// URI and the generation', async () => {
    const table = newTable();
    const a = put('in/a.csv', csv([1, 2, 3]));
    const job = lineageJob(table, [a]);
    const result = await warehouse.load(job);

    expect(result).to.deep.include({
      outcome: 'loaded',
      jobId: job.jobId,
      rows: 3,
      replacedRows: [0],
    });
    const schema = bq
      .table(PROJECT, DATASET, table)
      ?.schema?.map((f) => `${f.name}:${f.type}:${f.mode ?? 'NULLABLE'}`);
    expect(schema).to.deep.equal([
      'id:INT64:NULLABLE',
      'name:STRING:NULLABLE',
      '_source_uri:STRING:NULLABLE',
      '_source_generation:INT64:NULLABLE',
      '_loaded_at:TIMESTAMP:NULLABLE',
    ]);
    const rows = rowsOf(table);
    expect(rows).to.have.length(3);
    for (const row of rows) {
      expect(row._source_uri).to.equal(`gs://${BUCKET}/in/a.csv`);
      expect(row._source_generation).to.equal(a.generation);
      expect(row._loaded_at).to.be.a('string');
    }
    expect(new Set(rows.map((r) => r._loaded_at)).size).to.equal(1);
    // The table was created clustered by _source_uri; the query job carries the loads' labels.
    const created = bq.requests.find(
      (r) =>
        r.method === 'POST' &&
        /\/tables$/.test(r.path) &&
        (r.body as { tableReference: { tableId: string } }).tableReference.tableId === table,
    );
    expect((created?.body as { clustering?: unknown }).clustering).to.deep.equal({
      fields: ['_source_uri'],
    });
    expect(queryInserts()).to.have.length(1);
    expect(queryInserts()[0]?.jobReference?.jobId).to.equal(job.jobId);
    expect(queryInserts()[0]?.configuration?.labels).to.deep.equal(LABELS);
    expect(loadInserts().map((b) => b.jobReference?.jobId)).to.deep.equal([`${job.jobId}_src0`]);
    expect(stagingLeft()).to.deep.equal([]);
    const staging = bq.requests.find(
      (r) =>
        r.method === 'POST' &&
        /\/tables$/.test(r.path) &&
        (r.body as { tableReference: { tableId: string } }).tableReference.tableId.startsWith(
          '_ingest_stage_',
        ),
    );
    const expires = Number((staging?.body as { expirationTime?: string }).expirationTime);
    expect(expires - Date.now()).to.be.within(23 * 3_600_000, 24 * 3_600_000);
  });

  describe('one table through its objects’ generations', () => {
    const table = 'orders';
    let a: StoredObject;
    let b: StoredObject;
    let a2: StoredObject;

    it('a second object adds its rows', async () => {
      a = put('orders/a.csv', csv([1, 2, 3]));
      b = put('orders/b.csv', csv([10, 11]));
      expect(await warehouse.load(lineageJob(table, [a]))).to.include({
        outcome: 'loaded',
        rows: 3,
      });
      expect(await warehouse.load(lineageJob(table, [b]))).to.deep.include({
        rows: 2,
        replacedRows: [0],
      });
      expect(rowsFrom(table, a)).to.have.length(3);
      expect(rowsFrom(table, b)).to.have.length(2);
    });

    it("a new generation replaces its object's rows, the other object's untouched", async () => {
      const before = rowsFrom(table, b);
      a2 = put('orders/a.csv', csv([1, 2, 3, 4, 5], 'v2'));
      const result = await warehouse.load(lineageJob(table, [a2]));
      expect(result).to.deep.include({ outcome: 'loaded', rows: 5, replacedRows: [3] });
      expect(rowsFrom(table, a2).map((r) => r.name)).to.deep.equal([
        'v2 1',
        'v2 2',
        'v2 3',
        'v2 4',
        'v2 5',
      ]);
      expect(rowsFrom(table, a2).every((r) => r._source_generation === a2.generation)).to.equal(
        true,
      );
      expect(rowsFrom(table, b)).to.deep.equal(before);
    });

    it('a forced reprocess of the same generation leaves its rows once', async () => {
      const result = await warehouse.load(lineageJob(table, [a2]));
      expect(result).to.deep.include({ outcome: 'loaded', rows: 5, replacedRows: [5] });
      expect(rowsFrom(table, a2)).to.have.length(5);
      expect(rowsOf(table)).to.have.length(7);
    });

    it('a late event for an older generation, the object since overwritten: nothing changes', async () => {
      const before = JSON.stringify(rowsOf(table));
      // Its load job reads the object's current bytes: the generation check after it sees that.
      const head = { header: ['id', 'name'], rows: [['1', 'v1 1']] };
      const late = await warehouse.load(lineageJob(table, [a], { head }));
      expect(late.outcome).to.equal('replaced');
      expect((late as { reason: string }).reason).to.include(`gs://${BUCKET}/orders/a.csv`);
      expect(JSON.stringify(rowsOf(table))).to.equal(before);
      expect(queryInserts()).to.have.length(0);
      expect(stagingLeft()).to.deep.equal([]);
    });

    it('an older generation after a newer one committed (a race past the check) is superseded', async () => {
      const before = JSON.stringify(rowsOf(table));
      // A generation smaller than the one in the table, while it is the object's current one: only
      // the table can tell it is older.
      const current = gcs.stat(BUCKET, 'orders/a.csv') as { generation: string; size: string };
      const old: StoredObject = {
        bucket: BUCKET,
        name: 'orders/a.csv',
        generation: current.generation,
        size: Number(current.size),
      };
      const rows = bq.table(PROJECT, DATASET, table)?.rows.get('') ?? [];
      const newer = (BigInt(current.generation) + 1000n).toString();
      for (const row of rows)
        if (row._source_uri === `gs://${BUCKET}/orders/a.csv`) row._source_generation = newer;
      const job = lineageJob(table, [old]);
      const result = (await warehouse.load(job)) as Extract<LoadResult, { outcome: 'superseded' }>;
      // The first load's check finds rows of the object: the replacing script goes as the next id.
      expect(result).to.deep.equal({
        outcome: 'superseded',
        jobId: `${job.jobId}_2`,
        newer: { [`gs://${BUCKET}/orders/a.csv`]: newer },
      });
      const after = JSON.stringify(rowsOf(table));
      expect(after).to.equal(
        before
          .split(`"_source_generation":"${a2.generation}"`)
          .join(`"_source_generation":"${newer}"`),
      );
      expect(stagingLeft()).to.deep.equal([]);
      // A redelivery answers the same from the failed job, without a second transaction.
      const again = await warehouse.load(job);
      expect(again.outcome).to.equal('superseded');
      expect(queryInserts()).to.have.length(2);
      for (const row of rows)
        if (row._source_uri === `gs://${BUCKET}/orders/a.csv`)
          row._source_generation = a2.generation;
    });

    it('a new generation with a bad value is rejected, naming it; the old rows stay', async () => {
      const before = JSON.stringify(rowsOf(table));
      const bad = put('orders/b.csv', 'id,name\n10,ok\nten,bad\n');
      const result = await warehouse.load(lineageJob(table, [bad]));
      expect(result.outcome).to.equal('rejected');
      expect((result as { reason: string }).reason).to.include(`gs://${BUCKET}/orders/b.csv`);
      expect(JSON.stringify(rowsOf(table))).to.equal(before);
      expect(queryInserts()).to.have.length(0);
      expect(stagingLeft()).to.deep.equal([]);
    });
  });

  it('a first load runs no DELETE (it would bill the whole table); a replace does', async () => {
    const table = newTable();
    const script = () => queryInserts().slice(-1)[0]?.configuration?.query?.query ?? '';
    await warehouse.load(lineageJob(table, [put('nodelete/c.csv', csv([1]))]));
    expect(script())
      .to.match(/ASSERT NOT EXISTS/)
      .and.not.match(/DELETE FROM/);
    const c2 = put('nodelete/c.csv', csv([1, 2], 'v2'));
    expect(await warehouse.load(lineageJob(table, [c2]))).to.deep.include({ replacedRows: [1] });
    expect(script()).to.match(/DELETE FROM/);
    expect(rowsOf(table)).to.have.length(2);
  });

  it('20 sources in one job, then one of them replaced', async () => {
    const table = newTable();
    const objects = Array.from({ length: 20 }, (_, i) => put(`many/f${i}.csv`, csv([i, i + 100])));
    const first = await warehouse.load(lineageJob(table, objects));
    expect(first).to.deep.include({
      outcome: 'loaded',
      rows: 40,
      sourceRows: Array(20).fill(2),
      replacedRows: Array(20).fill(0),
    });
    expect(queryInserts()).to.have.length(1);
    const again = put('many/f7.csv', csv([7, 8, 9], 'v2'));
    const second = await warehouse.load(lineageJob(table, [again]));
    expect(second).to.deep.include({ outcome: 'loaded', rows: 3, replacedRows: [2] });
    expect(rowsOf(table)).to.have.length(41);
    expect(rowsFrom(table, again).map((r) => r.name)).to.deep.equal(['v2 7', 'v2 8', 'v2 9']);
    for (const [i, object] of objects.entries())
      if (i !== 7) expect(rowsFrom(table, object)).to.have.length(2);
    expect(stagingLeft()).to.deep.equal([]);
  });

  it('an existing table without the columns gets them NULLABLE; its old rows have NULL there', async () => {
    const table = newTable();
    const old = put('legacy/old.csv', csv([1, 2]));
    const plain = contractJob([old], { destination: { dataset: DATASET, table }, labels: LABELS });
    expect(await warehouse.load(plain)).to.include({ outcome: 'loaded', rows: 2 });
    const fresh = put('legacy/new.csv', csv([3]));
    const result = await warehouse.load(lineageJob(table, [fresh]));
    expect(result).to.deep.include({ outcome: 'loaded', rows: 1, replacedRows: [0] });
    expect(result.outcome === 'loaded' && result.schemaChanges).to.deep.equal([
      'added column _source_uri STRING',
      'added column _source_generation INT64',
      'added column _loaded_at TIMESTAMP',
    ]);
    const modes = bq
      .table(PROJECT, DATASET, table)
      ?.schema?.slice(-3)
      .map((f) => f.mode ?? 'NULLABLE');
    expect(modes).to.deep.equal(['NULLABLE', 'NULLABLE', 'NULLABLE']);
    const rows = rowsOf(table);
    expect(
      rows.filter((r) => r._source_uri === null || r._source_uri === undefined),
    ).to.have.length(2);
    expect(rowsFrom(table, fresh)).to.have.length(1);
  });

  it('a job without lineage is one plain load job, as before: no extra columns, no query', async () => {
    const table = newTable();
    const object = put('plain/p.csv', csv([1, 2]));
    const job = contractJob([object], { destination: { dataset: DATASET, table }, labels: LABELS });
    expect(await warehouse.load(job)).to.deep.equal({
      outcome: 'loaded',
      jobId: job.jobId,
      rows: 2,
    });
    expect(bq.inserts()).to.have.length(1);
    expect(bq.inserts()[0]?.configuration?.load?.destinationTable).to.deep.equal({
      projectId: PROJECT,
      datasetId: DATASET,
      tableId: table,
    });
    expect(
      bq.requests.filter((r) => /\/tables$/.test(r.path) || /\/queries/.test(r.path)),
    ).to.deep.equal([]);
    expect(bq.table(PROJECT, DATASET, table)?.schema?.map((f) => f.name)).to.deep.equal([
      'id',
      'name',
    ]);
  });

  it('a redelivery of the same job id is a duplicate, without a second transaction', async () => {
    const table = newTable();
    const object = put('redo/r.csv', csv([1, 2, 3]));
    const job = lineageJob(table, [object]);
    expect(await warehouse.load(job)).to.include({ outcome: 'loaded', rows: 3 });
    const again = await open().load(job);
    expect(again).to.deep.equal({ outcome: 'duplicate', jobId: job.jobId, rows: 3 });
    expect(queryInserts()).to.have.length(1);
    expect(loadInserts()).to.have.length(1);
    expect(rowsOf(table)).to.have.length(3);
    expect(stagingLeft()).to.deep.equal([]);
  });

  it('a concurrent-update abort goes again under the next id; rows once', async () => {
    const table = newTable();
    const object = put('abort/a.csv', csv([1, 2]));
    const job = lineageJob(table, [object]);
    bq.abortNextTransaction();
    const result = await warehouse.load(job);
    expect(result).to.deep.include({ outcome: 'loaded', jobId: `${job.jobId}_2`, rows: 2 });
    expect(queryInserts().map((b) => b.jobReference?.jobId)).to.deep.equal([
      job.jobId,
      `${job.jobId}_2`,
    ]);
    const first = bq.job(PROJECT, job.jobId) as { status: { errorResult?: { message: string } } };
    expect(first.status.errorResult?.message).to.match(/concurrent update/);
    expect(rowsOf(table)).to.have.length(2);
    // A redelivery walks the same ids: the committed attempt is a duplicate.
    expect(await open().load(job)).to.deep.include({ outcome: 'duplicate', rows: 2 });
  });

  it('an abort that persists is a TransientError to the caller, nothing written', async () => {
    const table = newTable();
    const object = put('abort/b.csv', csv([1]));
    bq.abortNextTransaction(5);
    const error = await warehouse.load(lineageJob(table, [object])).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(TransientError);
    expect(rowsOf(table)).to.deep.equal([]);
  });

  it('serializes its own transactions on one table (no abort between them)', async () => {
    const table = newTable();
    const objects = Array.from({ length: 4 }, (_, i) => put(`par/p${i}.csv`, csv([i])));
    const results = await Promise.all(objects.map((o) => warehouse.load(lineageJob(table, [o]))));
    expect(results.map((r) => r.outcome)).to.deep.equal(['loaded', 'loaded', 'loaded', 'loaded']);
    expect(rowsOf(table)).to.have.length(4);
  });

  it('a coalesced job (loadClaimed) and its followers: the result, rows and URIs from the job', async () => {
    const table = newTable();
    const objects = [put('claimed/a.csv', csv([1, 2])), put('claimed/b.csv', csv([3]))];
    const job = { ...lineageJob(table, objects), claimed: true };
    const result = await warehouse.loadClaimed(job);
    expect(result).to.deep.include({
      outcome: 'loaded',
      rows: 3,
      sourceRows: [2, 1],
      replacedRows: [0, 0],
    });
    const followed = await open().followJob(job.jobId, {
      location: 'US',
      deadline: Date.now() + 10_000,
    });
    expect(followed).to.deep.equal({
      result: { outcome: 'loaded', jobId: job.jobId, rows: 3 },
      uris: objects.map((o) => `gs://${BUCKET}/${o.name}`),
    });
    await warehouse.settle?.(job);
  });

  it('a crash before the transaction: the redelivery finds the staged loads, and loads nothing twice', async () => {
    const table = newTable();
    const object = put('crash/a.csv', csv([1, 2, 3]));
    const job = lineageJob(table, [object]);
    const isQuery = (r: RecordedRequest) =>
      isInsert(r) && (r.body as JobBody).configuration?.query !== undefined;
    bq.fail({ match: isQuery, status: 503 });
    const crashed = await warehouse.load(job).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(crashed).to.be.instanceOf(TransientError);
    expect(rowsOf(table)).to.deep.equal([]);
    // The staging table outlived the failure; a day later it would have expired: drop it here.
    const stage = bq.requests
      .filter((r) => r.method === 'POST' && /\/tables$/.test(r.path))
      .map((r) => (r.body as { tableReference: { tableId: string } }).tableReference.tableId)
      .find((id) => id.startsWith('_ingest_stage_')) as string;
    expect(bq.table(PROJECT, DATASET, stage)?.rows.get('')).to.have.length(3);

    const again = await open().load(job);
    expect(again).to.deep.include({ outcome: 'loaded', jobId: job.jobId, rows: 3 });
    expect(rowsOf(table)).to.have.length(3);
    // The load of the staged source ran once: the redelivery's insert found it (409).
    expect(loadInserts().map((b) => b.jobReference?.jobId)).to.deep.equal([
      `${job.jobId}_src0`,
      `${job.jobId}_src0`,
    ]);
    expect(bq.job(PROJECT, `${job.jobId}_src0_2`)).to.equal(undefined);
  });

  it('a staging table gone before the redelivery (expired) is loaded again under the next id', async () => {
    const table = newTable();
    const object = put('expired/a.csv', csv([1, 2]));
    const job = lineageJob(table, [object]);
    const isQuery = (r: RecordedRequest) =>
      isInsert(r) && (r.body as JobBody).configuration?.query !== undefined;
    bq.fail({ match: isQuery, status: 503 });
    await warehouse.load(job).catch(() => undefined);
    const client = bigQueryClient(bq);
    const stages = bq.requests
      .filter((r) => r.method === 'POST' && /\/tables$/.test(r.path))
      .map((r) => (r.body as { tableReference: { tableId: string } }).tableReference.tableId)
      .filter((id) => id.startsWith('_ingest_stage_'));
    for (const id of stages) await client.dataset(DATASET).table(id).delete();
    await new Promise((resolve) => setTimeout(resolve, 5));

    const again = await open().load(job);
    expect(again).to.deep.include({ outcome: 'loaded', rows: 2 });
    expect(rowsOf(table)).to.have.length(2);
    expect(bq.job(PROJECT, `${job.jobId}_src0_2`)).to.not.equal(undefined);
  });

  it('a follower waits while the staging loads run, then reads the job', async () => {
    const table = newTable();
    const object = put('follow/a.csv', csv([1, 2]));
    const job = { ...lineageJob(table, [object]), claimed: true };
    bq.script(`${job.jobId}_src0`, { durationMs: Infinity });
    const owner = warehouse.loadClaimed(job);
    while (!bq.job(PROJECT, `${job.jobId}_src0`)) await new Promise((r) => setTimeout(r, 5));
    const follower = open().followJob(job.jobId, { location: 'US', deadline: Date.now() + 20_000 });
    await new Promise((r) => setTimeout(r, 100));
    bq.finish(PROJECT, `${job.jobId}_src0`);
    expect(await owner).to.include({ outcome: 'loaded', rows: 2 });
    expect(await follower).to.deep.equal({
      result: { outcome: 'loaded', jobId: job.jobId, rows: 2 },
      uris: [`gs://${BUCKET}/follow/a.csv`],
    });
  });

  it('a header naming a lineage column is rejected with that reason', async () => {
    const object = put('bad/h.csv', 'id,_source_uri\n1,x\n');
    const result = await warehouse.load(lineageJob(newTable(), [object]));
    expect(result.outcome).to.equal('rejected');
    expect((result as { reason: string }).reason).to.include('lineage column');
  });

  it('truncate keeps its meaning: the table holds the last job’s rows, with the columns', async () => {
    const table = newTable();
    const first = put('trunc/a.csv', csv([1, 2]));
    const second = put('trunc/b.csv', csv([3]));
    await warehouse.load(lineageJob(table, [first], { write: 'truncate' }));
    const result = await warehouse.load(lineageJob(table, [second], { write: 'truncate' }));
    expect(result).to.include({ outcome: 'loaded', rows: 1 });
    expect(rowsOf(table).map((r) => r._source_uri)).to.deep.equal([`gs://${BUCKET}/trunc/b.csv`]);
  });

  it('replace and partition: one copy job writes the rows with their columns', async () => {
    const table = newTable();
    const object = put('repl/a.csv', csv([1, 2]));
    const replaced = await warehouse.load(lineageJob(table, [object], { write: 'replace' }));
    expect(replaced).to.include({ outcome: 'loaded', rows: 2 });
    expect(rowsFrom(table, object)).to.have.length(2);
    const copies = bq.inserts().filter((b) => b.configuration?.copy);
    expect(copies.map((c) => c.configuration?.copy?.writeDisposition)).to.deep.equal([
      'WRITE_TRUNCATE',
    ]);

    const daily = newTable();
    const day = put('days/2024-01-31.csv', csv([5, 6, 7]));
    const job = lineageJob(daily, [day], {
      write: 'partition',
      destination: { dataset: DATASET, table: daily, partition: '20240131' },
    });
    expect(await warehouse.load(job)).to.include({ outcome: 'loaded', rows: 3 });
    const rows = bq.table(PROJECT, DATASET, daily)?.rows.get('20240131') ?? [];
    expect(rows.map((r) => r._source_generation)).to.deep.equal([
      day.generation,
      day.generation,
      day.generation,
    ]);
    expect(stagingLeft()).to.deep.equal([]);
  });

  it('history lists lineage jobs with their objects, rows and replaced rows', async () => {
    const table = newTable();
    const first = put('hist/a.csv', csv([1, 2]));
    await warehouse.load(lineageJob(table, [first]));
    const second = put('hist/a.csv', csv([1, 2, 3], 'v2'));
    const job = lineageJob(table, [second]);
    await warehouse.load(job);
    const entries = await readCloudHistory({
      bigquery: bigQueryClient(bq),
      store: createGcsStore({ storage: storageClient(gcs) }),
      location: 'US',
      quarantinePrefix: '_quarantine/',
      since: new Date(Date.now() - 60_000),
    });
    // The replace ran as the job's second attempt, after the first load's check found rows.
    const entry = entries.find((e) => e.jobId === `${job.jobId}_2`);
    expect(entries.filter((e) => e.jobId?.startsWith(job.jobId))).to.have.length(1);
    expect(entry).to.deep.include({
      objects: [`gs://${BUCKET}/hist/a.csv`],
      outcome: 'loaded',
      destination: `${PROJECT}.${DATASET}.${table}`,
      rows: 3,
      replacedRows: 2,
    });
    expect(entries.some((e) => e.destination?.includes('_ingest_stage_'))).to.equal(false);
  });

  it('counts the HTTP calls per object: a lineage job of 1 and of 20 objects, a plain load', async () => {
    const calls = async (objects: number, lineage: boolean) => {
      const table = newTable();
      const sources = Array.from({ length: objects }, (_, i) =>
        put(`count/${table}-${i}.csv`, csv([i])),
      );
      const job = lineage
        ? lineageJob(table, sources)
        : contractJob(sources, { destination: { dataset: DATASET, table }, labels: LABELS });
      bq.resetCounters();
      gcs.resetCounters();
      expect((await warehouse.load(job)).outcome).to.equal('loaded');
      const kinds = (requests: RecordedRequest[]) => {
        const by = new Map<string, number>();
        for (const r of requests) {
          const where = r.path
            .replace(/\/jobs\/[^/]+/, '/jobs/:id')
            .replace(/\/tables\/[^/]+/, '/tables/:id')
            .replace(/\/queries\/[^/]+/, '/queries/:id')
            .replace(/\/o\/.+$/, '/o/:name')
            .replace(/^\/projects\/[^/]+|^\/storage\/v1\/b\/[^/]+/, '');
          const kind = `${r.method} ${where}${r.query.parentJobId ? '?parentJobId' : ''}`;
          by.set(kind, (by.get(kind) ?? 0) + 1);
        }
        return Object.fromEntries(by);
      };
      const total = bq.requests.length + gcs.requests.length;
      return {
        objects,
        lineage,
        total,
        perObject: total / objects,
        bigquery: kinds(bq.requests),
        storage: kinds(gcs.requests),
      };
    };
    const report = [
      await calls(1, false),
      await calls(20, false),
      await calls(1, true),
      await calls(20, true),
    ];
    for (const line of report) console.log(`      ${JSON.stringify(line)}`);
    expect(report[0]!.total).to.be.below(report[2]!.total);
    expect(report[3]!.perObject).to.be.below(report[2]!.perObject);
  });

  describe('the test server runs only the statements the driver issues', () => {
    it('refuses any other statement with a 400 naming it', async () => {
      const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
      const error = await client
        .createJob({
          jobId: 'not_a_lineage_statement',
          configuration: {
            query: { query: 'UPDATE `p`.`d`.`t` SET a = 1 WHERE true', useLegacySql: false },
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(error?.message).to.match(/unsupported statement: UPDATE/);
      expect(parseScript("DELETE FROM `p`.`d`.`t` WHERE _source_uri = 'x'")).to.have.property(
        'error',
      );
    });

    it("the test server's query field table matches the client's IJobConfigurationQuery", () => {
      const file = path.join(path.dirname(require.resolve('@google-cloud/bigquery')), 'types.d.ts');
      const program = ts.createProgram([file], { noResolve: true });
      const source = program.getSourceFile(file) as ts.SourceFile;
      const fields: string[] = [];
      const visit = (node: ts.Node): void => {
        if (
          ts.isTypeAliasDeclaration(node) &&
          node.name.text === 'IJobConfigurationQuery' &&
          ts.isTypeLiteralNode(node.type)
        )
          for (const member of node.type.members)
            if (ts.isPropertySignature(member) && ts.isIdentifier(member.name))
              fields.push(member.name.text);
        ts.forEachChild(node, visit);
      };
      visit(source);
      expect(Object.keys(QUERY_FIELDS).sort()).to.deep.equal(fields.sort());
    });

    it("every query job the driver inserts fits the REST reference's JobConfigurationQuery", async () => {
      const object = put('spec/a.csv', csv([1]));
      await warehouse.load(lineageJob(newTable(), [object]));
      const queries = bq.inserts().filter((b) => b.configuration?.query);
      expect(queries).to.have.length(1);
      for (const body of queries)
        expect(checkAgainstSpec(body.configuration?.query, QUERY_FIELDS, 'query')).to.equal(
          undefined,
        );
    });
  });
});
