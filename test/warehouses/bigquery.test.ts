import { expect } from 'chai';
import type bigquery from '@google-cloud/bigquery/build/src/types';
import * as fc from 'fast-check';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as ts from 'typescript';
import { DEFAULT_CSV, FIELD_TYPES, WRITE_MODES } from '../../src/config';
import { TransientError } from '../../src/core/errors';
import type { StoredObject } from '../../src/stores/store';
import {
  createBigQueryWarehouse,
  toJobConfiguration,
  toLoadConfiguration,
} from '../../src/warehouses/bigquery';
import type { LoadJob, LoadResult, Warehouse } from '../../src/warehouses/warehouse';
import { testDrift } from '../contract/drift-contract';
import { contractJob, testWarehouse, type WarehouseFixture } from '../contract/warehouse-contract';
import {
  LOAD_FIELDS,
  bigQueryClient,
  checkAgainstSpec,
  isInsert,
  isJobGet,
  startBigQueryServer,
  type BigQueryServer,
  type ErrorProto,
} from '../servers/bigquery-server';
import {
  startGcsServer,
  storageClient,
  type GcsServer,
  type ObjectResource,
} from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';

function toStored(resource: ObjectResource): StoredObject {
  return {
    bucket: resource.bucket,
    name: resource.name,
    generation: resource.generation,
    size: Number(resource.size),
  };
}

/** A table's rows as the test server stored them. */
function tableRows(bq: BigQueryServer): WarehouseFixture['rows'] {
  return async (dataset, table) =>
    [...(bq.table(PROJECT, dataset, table)?.rows.values() ?? [])].flat();
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

for (const jobDurationMs of [0, 30]) {
  testWarehouse(
    `BigQuery (REST test server, jobs take ${jobDurationMs} ms)`,
    async () => {
      const gcs = await startGcsServer();
      const bq = await startBigQueryServer({ gcs, jobDurationMs });
      const open = () =>
        createBigQueryWarehouse({
          bigquery: bigQueryClient(bq),
          storage: storageClient(gcs),
          pollIntervalMs: 5,
          retryDelayMs: 1,
        });
      return {
        warehouse: open(),
        put: async (bucket, name, content) => toStored(gcs.put(bucket, name, content)),
        rows: tableRows(bq),
        reopen: async () => open(),
        teardown: async () => {
          await bq.close();
          await gcs.close();
        },
      };
    },
    // Only jobs that take time can be caught running by an abort.
    { badRecords: true, brokenGzip: true, abort: jobDurationMs > 0 },
  );
}

testDrift('BigQuery (REST test server)', async () => {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: 0 });
  return {
    warehouse: createBigQueryWarehouse({
      bigquery: bigQueryClient(bq),
      storage: storageClient(gcs),
      pollIntervalMs: 5,
      retryDelayMs: 1,
    }),
    put: async (bucket, name, content) => toStored(gcs.put(bucket, name, content)),
    rows: tableRows(bq),
    teardown: async () => {
      await bq.close();
      await gcs.close();
    },
  };
});

describe('createBigQueryWarehouse', () => {
  let gcs: GcsServer;
  let bq: BigQueryServer;
  let warehouse: Warehouse;
  let counter = 0;

  before(async () => {
    gcs = await startGcsServer();
    bq = await startBigQueryServer({ gcs, jobDurationMs: 20 });
    // No client retries: each fault must surface as the warehouse's own error.
    const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
    warehouse = createBigQueryWarehouse({
      bigquery: client,
      storage: storageClient(gcs),
      pollIntervalMs: 5,
      retryDelayMs: 1,
    });
  });
  after(async () => {
    await bq.close();
    await gcs.close();
  });
  beforeEach(() => {
    bq.clearFaults();
    bq.resetCounters();
  });

  function csvObject(rows: number, name = `in/items-${++counter}.csv`): StoredObject {
    const body = Array.from({ length: rows }, (_, i) => `${i},item ${i}`).join('\n');
    return toStored(gcs.put(BUCKET, name, `id,name\n${body}\n`));
  }

  function job(sources: StoredObject[], overrides: Partial<LoadJob> = {}): LoadJob {
    return contractJob(sources, {
      labels: { component: 'gcs-bq-ingest', bucket: BUCKET, route: 'route-0' },
      ...overrides,
    });
  }

  const insertedIds = () => bq.inserts().map((b) => b.jobReference?.jobId);

  it('loads: one jobs.insert carrying every option, then jobs.get until DONE', async () => {
    const object = csvObject(3);
    const load = job([object], {
      destination: { dataset: 'sales', table: 'items' },
      location: 'EU',
    });
    const result = await warehouse.load(load);

    expect(result).to.deep.equal({ outcome: 'loaded', jobId: load.jobId, rows: 3 });
    expect(bq.inserts()).to.deep.equal([
      {
        jobReference: { projectId: PROJECT, jobId: load.jobId, location: 'EU' },
        configuration: {
          load: {
            sourceFormat: 'CSV',
            sourceUris: [`gs://${BUCKET}/${object.name}`],
            destinationTable: { projectId: PROJECT, datasetId: 'sales', tableId: 'items' },
            writeDisposition: 'WRITE_APPEND',
            createDisposition: 'CREATE_IF_NEEDED',
            skipLeadingRows: 1,
            fieldDelimiter: ',',
            quote: '"',
            encoding: 'UTF-8',
            allowQuotedNewlines: true,
            allowJaggedRows: false,
            maxBadRecords: 0,
            nullMarker: '',
            sourceColumnMatch: 'NAME',
            autodetect: true,
          },
          labels: { component: 'gcs-bq-ingest', bucket: BUCKET, route: 'route-0' },
        },
      },
    ]);
    const gets = bq.requests.filter(isJobGet);
    expect(gets.length).to.be.at.least(1);
    expect(
      gets.every(
        (g) => g.path === `/projects/${PROJECT}/jobs/${load.jobId}` && g.query.location === 'EU',
      ),
    ).to.equal(true);
    expect(bq.rows(PROJECT, 'sales', 'items')).to.equal(3);
  });

  it('maps the route options: schema, CSV dialect, truncate, CREATE_NEVER, partitioning, clustering', async () => {
    bq.createTable('other-project', 'typed', 'orders');
    const object = toStored(
      gcs.put(BUCKET, 'in/orders.csv', '# export\nid;day\n1;2024-01-31\n2;\n'),
    );
    const load = job([object], {
      destination: { project: 'other-project', dataset: 'typed', table: 'orders' },
      write: 'truncate',
      schema: [
        { name: 'id', type: 'INT64', mode: 'REQUIRED', description: 'order id' },
        { name: 'day', type: 'DATE' },
      ],
      csv: {
        delimiter: ';',
        skipLeadingRows: 2,
        quote: '',
        encoding: 'ISO-8859-1',
        allowQuotedNewlines: false,
        allowJaggedRows: true,
        maxBadRecords: 3,
        nullMarker: 'NULL',
      },
      createDisposition: 'CREATE_NEVER',
      timePartitioning: { type: 'DAY', field: 'day', expirationMs: 86_400_000 },
      clustering: ['id'],
    });
    expect(await warehouse.load(load)).to.deep.equal({
      outcome: 'loaded',
      jobId: load.jobId,
      rows: 2,
    });
    expect(bq.inserts()[0]?.configuration?.load).to.deep.equal({
      sourceFormat: 'CSV',
      sourceUris: [`gs://${BUCKET}/in/orders.csv`],
      destinationTable: { projectId: 'other-project', datasetId: 'typed', tableId: 'orders' },
      writeDisposition: 'WRITE_TRUNCATE_DATA',
      createDisposition: 'CREATE_NEVER',
      skipLeadingRows: 2,
      fieldDelimiter: ';',
      quote: '',
      encoding: 'ISO-8859-1',
      allowQuotedNewlines: false,
      allowJaggedRows: true,
      maxBadRecords: 3,
      nullMarker: 'NULL',
      sourceColumnMatch: 'NAME',
      schema: {
        fields: [
          { name: 'id', type: 'INT64', mode: 'REQUIRED', description: 'order id' },
          { name: 'day', type: 'DATE', mode: 'NULLABLE' },
        ],
      },
      timePartitioning: { type: 'DAY', field: 'day', expirationMs: '86400000' },
      clustering: { fields: ['id'] },
    });
  });

  it('partition: WRITE_TRUNCATE of table$YYYYMMDD, day-partitioned', async () => {
    const object = csvObject(2, 'sales/2024/01/31/a.csv');
    const load = job([object], {
      write: 'partition',
      destination: { dataset: 'sales', table: 'daily', partition: '20240131' },
    });
    expect(await warehouse.load(load)).to.include({ outcome: 'loaded', rows: 2 });
    const config = bq.inserts()[0]?.configuration?.load;
    expect(config?.destinationTable).to.deep.equal({
      projectId: PROJECT,
      datasetId: 'sales',
      tableId: 'daily$20240131',
    });
    expect(config?.writeDisposition).to.equal('WRITE_TRUNCATE');
    expect(config?.timePartitioning).to.deep.equal({ type: 'DAY' });
    expect(bq.table(PROJECT, 'sales', 'daily')?.partitions.get('20240131')).to.equal(2);
  });

  it('the same job 20 times at once: one job inserted, 19 answered 409 and reported duplicate', async () => {
    const object = csvObject(4);
    const load = job([object], { destination: { dataset: 'dup', table: 'items' } });
    bq.script(load.jobId, { durationMs: 100 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => warehouse.load({ ...load })),
    );

    expect(results.filter((r) => r.outcome === 'loaded')).to.deep.equal([
      { outcome: 'loaded', jobId: load.jobId, rows: 4 },
    ]);
    expect(results.filter((r) => r.outcome === 'duplicate')).to.have.length(19);
    expect(results.every((r) => r.jobId === load.jobId && 'rows' in r && r.rows === 4)).to.equal(
      true,
    );
    expect(insertedIds()).to.deep.equal(Array.from({ length: 20 }, () => load.jobId));
    expect(bq.job(PROJECT, `${load.jobId}_2`)).to.equal(undefined);
    expect(bq.rows(PROJECT, 'dup', 'items')).to.equal(4);
  });

  it('a job that fails with invalid is rejected with the row-level message and its location', async () => {
    const object = csvObject(2);
    const uri = `gs://${BUCKET}/${object.name}`;
    const summary: ErrorProto = {
      reason: 'invalid',
      location: uri,
      message:
        'Error while reading data, error message: CSV table encountered too many errors, giving up. Rows: 2; errors: 1. ' +
        'Please look into the errors[] collection for more details.',
    };
    const detail: ErrorProto = {
      reason: 'invalid',
      location: uri,
      message:
        "Error while reading data, error message: Could not parse 'x' as INT64 for field id (position 0) starting at location 8  with message 'Unable to parse'",
    };
    const load = job([object]);
    bq.script(load.jobId, { errorResult: summary, errors: [summary, detail] });
    const result = await warehouse.load(load);
    expect(result).to.deep.equal({
      outcome: 'rejected',
      jobId: load.jobId,
      reason: `invalid: ${detail.message} (location: ${uri})`,
    });
    expect(insertedIds()).to.deep.equal([load.jobId]);
  });

  it('a missing table with CREATE_NEVER is rejected (notFound)', async () => {
    const load = job([csvObject(1)], {
      createDisposition: 'CREATE_NEVER',
      destination: { dataset: 'x', table: 'absent' },
    });
    expect(await warehouse.load(load)).to.deep.equal({
      outcome: 'rejected',
      jobId: load.jobId,
      reason: `notFound: Not found: Table ${PROJECT}:x.absent`,
    });
  });

  it('rows skipped under maxBadRecords are reported with the count and the first row error', async () => {
    const object = toStored(gcs.put(BUCKET, 'in/some-bad.csv', 'id,n\n1,1\n2,two\n3,3\n4,four\n'));
    const load = job([object], {
      schema: [
        { name: 'id', type: 'INT64' },
        { name: 'n', type: 'INT64' },
      ],
      csv: { ...DEFAULT_CSV, maxBadRecords: 2 },
      destination: { dataset: 'partial', table: 'rows' },
    });
    bq.script(load.jobId, { durationMs: 0 });
    const uri = `gs://${BUCKET}/${object.name}`;
    expect(await warehouse.load(load)).to.deep.equal({
      outcome: 'loaded',
      jobId: load.jobId,
      rows: 2,
      badRecords: {
        count: 2,
        first:
          "invalid: Error while reading data, error message: Could not parse 'two' as INT64 for field n " +
          `(position 1) starting at location 9  with message 'Unable to parse' (location: ${uri})`,
      },
    });
    const done = bq.job(PROJECT, load.jobId) as {
      status: { errors?: unknown[] };
      statistics: { load: { badRecords: unknown } };
    };
    expect(done.statistics.load.badRecords, 'an int64 string, as BigQuery sends it').to.equal('2');
    expect(done.status.errors).to.have.length(2);
    expect(bq.rows(PROJECT, 'partial', 'rows')).to.equal(2);
  });

  it('a load without skipped rows carries no badRecords', async () => {
    const load = job([csvObject(2)], { csv: { ...DEFAULT_CSV, maxBadRecords: 5 } });
    expect(await warehouse.load(load)).to.deep.equal({
      outcome: 'loaded',
      jobId: load.jobId,
      rows: 2,
    });
  });

  describe('gzip sources', () => {
    const rows = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => `${from + i},item ${from + i}\n`).join('');
    /** A gzip stream cut at a flush point: whole rows decompress, then it ends (`gzip -t`: unexpected end of file). */
    const cutAtFlush = (text: string) =>
      zlib.gzipSync(text, { finishFlush: zlib.constants.Z_SYNC_FLUSH });

    it('the test server, like BigQuery as far as anyone documents, loads the rows before the cut', async () => {
      const object = toStored(
        gcs.put(BUCKET, 'in/server-cut.csv.gz', cutAtFlush(`id,name\n${rows(0, 50)}`)),
      );
      const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
      bq.script('server_cut_1', { durationMs: 0 });
      const [, resource] = await client.createJob({
        configuration: toJobConfiguration(
          job([object], { destination: { dataset: 'gz', table: 'server_cut' } }),
          PROJECT,
        ),
        jobId: 'server_cut_1',
      });
      expect(resource.status).to.deep.equal({ state: 'DONE' });
      expect(bq.rows(PROJECT, 'gz', 'server_cut')).to.equal(50);
    });

    it("rejects a truncated .csv.gz with gzip -t's reason, before any job is inserted", async () => {
      const object = toStored(
        gcs.put(BUCKET, 'in/cut.csv.gz', cutAtFlush(`id,name\n${rows(0, 50)}`)),
      );
      const load = job([object], { destination: { dataset: 'gz', table: 'cut' } });
      expect(await warehouse.load(load)).to.deep.equal({
        outcome: 'rejected',
        jobId: load.jobId,
        reason: `gs://${BUCKET}/in/cut.csv.gz is not a complete gzip stream (unexpected end of file); nothing of it was loaded`,
      });
      expect(bq.count(isInsert)).to.equal(0);
      expect(bq.rows(PROJECT, 'gz', 'cut')).to.equal(undefined);
    });

    it('rejects a whole batch when one of its gzip sources is cut', async () => {
      const whole = toStored(
        gcs.put(BUCKET, 'in/whole.csv.gz', zlib.gzipSync(`id,name\n${rows(0, 5)}`)),
      );
      const cut = toStored(
        gcs.put(BUCKET, 'in/cut-2.csv.gz', cutAtFlush(`id,name\n${rows(5, 9)}`)),
      );
      const result = await warehouse.load(job([whole, cut]));
      expect(result.outcome).to.equal('rejected');
      expect(result.outcome === 'rejected' && result.reason).to.include('in/cut-2.csv.gz');
      expect(bq.count(isInsert)).to.equal(0);
    });

    it('loads a complete .csv.gz, and a redelivery does not read it again', async () => {
      const object = toStored(
        gcs.put(BUCKET, 'in/whole-2.csv.gz', zlib.gzipSync(`id,name\n${rows(0, 7)}`)),
      );
      // The use case hands over the head it read; only the gzip check reads the object.
      const head = { header: ['id', 'name'], rows: [] };
      const load = job([object], { destination: { dataset: 'gz', table: 'whole' }, head });
      expect(await warehouse.load(load)).to.include({ outcome: 'loaded', rows: 7 });
      const reads = () => gcs.requests.filter((r) => r.query.alt === 'media').length;
      const before = reads();
      expect(await warehouse.load(load)).to.include({ outcome: 'duplicate', rows: 7 });
      expect(reads() - before).to.equal(0);
      expect(bq.rows(PROJECT, 'gz', 'whole')).to.equal(7);
    });
  });

  for (const reason of ['rateLimitExceeded', 'backendError', 'internalError', 'jobBackendError']) {
    it(`a job that ends with ${reason} is retried under <jobId>_2`, async () => {
      const load = job([csvObject(3)], { destination: { dataset: 'retry', table: reason } });
      bq.script(load.jobId, { errorResult: { reason, message: `injected ${reason}` } });
      expect(await warehouse.load(load)).to.deep.equal({
        outcome: 'loaded',
        jobId: `${load.jobId}_2`,
        rows: 3,
      });
      expect(insertedIds()).to.deep.equal([load.jobId, `${load.jobId}_2`]);
      expect(bq.rows(PROJECT, 'retry', reason)).to.equal(3);
    });
  }

  it('a redelivery walks the attempts: J failed, J_2 loaded -> duplicate, nothing inserted', async () => {
    const load = job([csvObject(2)], { destination: { dataset: 'walk', table: 'items' } });
    bq.script(load.jobId, { errorResult: { reason: 'backendError', message: 'injected' } });
    expect(await warehouse.load(load)).to.include({ outcome: 'loaded', jobId: `${load.jobId}_2` });
    bq.resetCounters();
    expect(await warehouse.load(load)).to.deep.equal({
      outcome: 'duplicate',
      jobId: `${load.jobId}_2`,
      rows: 2,
    });
    expect(insertedIds()).to.deep.equal([load.jobId, `${load.jobId}_2`]);
    expect(bq.job(PROJECT, `${load.jobId}_3`)).to.equal(undefined);
    expect(bq.rows(PROJECT, 'walk', 'items')).to.equal(2);
  });

  it('gives up after 5 transient failures with a TransientError', async () => {
    const load = job([csvObject(1)]);
    const ids = [load.jobId, ...[2, 3, 4, 5].map((n) => `${load.jobId}_${n}`)];
    for (const id of ids)
      bq.script(id, { errorResult: { reason: 'backendError', message: 'injected' } });
    const error = await caught(warehouse.load(load));
    expect(error).to.be.instanceOf(TransientError);
    expect((error as Error).message).to.match(/failed 5 times/);
    expect(insertedIds()).to.deep.equal(ids);
  });

  it('a job still running at the deadline is a TransientError; the redelivery awaits the same job id', async () => {
    const load = job([csvObject(5)], {
      destination: { dataset: 'slow', table: 'items' },
      deadline: Date.now() + 80,
    });
    bq.script(load.jobId, { durationMs: Infinity });
    const error = await caught(warehouse.load(load));
    expect(error).to.be.instanceOf(TransientError);
    expect((error as Error).message).to.equal(
      `BigQuery load job ${load.jobId} still running; redelivery will await it`,
    );
    expect(bq.rows(PROJECT, 'slow', 'items')).to.equal(undefined);

    bq.resetCounters();
    const redelivery = warehouse.load({ ...load, deadline: Date.now() + 10_000 });
    setTimeout(() => bq.finish(PROJECT, load.jobId), 50);
    expect(await redelivery).to.deep.equal({ outcome: 'duplicate', jobId: load.jobId, rows: 5 });
    expect(insertedIds(), 'the redelivery inserted only the same id, answered 409').to.deep.equal([
      load.jobId,
    ]);
    expect(bq.job(PROJECT, `${load.jobId}_2`)).to.equal(undefined);
    expect(bq.requests.filter(isJobGet).length).to.be.at.least(2);
    expect(bq.rows(PROJECT, 'slow', 'items')).to.equal(5);
  });

  it('settle waits for a job an earlier delivery left running, and returns at once when there is none', async () => {
    const load = job([csvObject(3)], { destination: { dataset: 'orphan', table: 'items' } });
    await warehouse.settle?.(load); // never inserted
    expect(bq.inserts()).to.have.length(0);

    bq.script(load.jobId, { durationMs: Infinity });
    const left = warehouse.load({ ...load, deadline: Date.now() + 50 }); // its request gives up
    expect(await caught(left)).to.be.instanceOf(TransientError);
    let settled = false;
    const settling = warehouse.settle!(load).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(settled, 'settle returned while the job still ran').to.equal(false);
    bq.finish(PROJECT, load.jobId);
    await settling;
    expect(bq.rows(PROJECT, 'orphan', 'items')).to.equal(3);
  });

  it('abort stops waiting on running jobs: loads end with a TransientError, the redelivery awaits the same ids', async () => {
    const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
    const stopping = createBigQueryWarehouse({
      bigquery: client,
      storage: storageClient(gcs),
      pollIntervalMs: 5,
    });
    const loads = [3, 4].map((rows) =>
      job([csvObject(rows)], { destination: { dataset: 'abort', table: `t${rows}` } }),
    );
    for (const load of loads) bq.script(load.jobId, { durationMs: Infinity });
    const pending = loads.map((load) => caught(stopping.load(load)));
    while (bq.count(isInsert) < loads.length) await new Promise((r) => setTimeout(r, 5));

    await stopping.abort('shutting down');
    for (const error of await Promise.all(pending)) {
      expect(error).to.be.instanceOf(TransientError);
      expect((error as Error).message).to.match(/^shutting down; a redelivery awaits/);
    }
    const late = await caught(stopping.load(job([csvObject(1)])));
    expect(late, 'no job is inserted after abort').to.be.instanceOf(TransientError);
    expect(insertedIds()).to.deep.equal(loads.map((l) => l.jobId));

    // The jobs run on in BigQuery; the redelivery (here another instance) finds and awaits them.
    for (const load of loads) bq.finish(PROJECT, load.jobId);
    const redelivered = await Promise.all(loads.map((load) => warehouse.load(load)));
    expect(redelivered).to.deep.equal([
      { outcome: 'duplicate', jobId: loads[0]?.jobId, rows: 3 },
      { outcome: 'duplicate', jobId: loads[1]?.jobId, rows: 4 },
    ]);
    expect(bq.rows(PROJECT, 'abort', 't3')).to.equal(3);
    expect(bq.rows(PROJECT, 'abort', 't4')).to.equal(4);
    expect(bq.job(PROJECT, `${loads[0]?.jobId}_2`)).to.equal(undefined);
  });

  it('abort with nothing running resolves at once', async () => {
    const idle = createBigQueryWarehouse({ bigquery: bigQueryClient(bq), pollIntervalMs: 5 });
    await idle.abort('shutting down');
    expect(bq.requests).to.have.length(0);
  });

  describe('HTTP failures', () => {
    const transient: [string, Parameters<BigQueryServer['fail']>[0]][] = [
      ['503', { status: 503 }],
      ['500 backendError', { status: 500, reason: 'backendError' }],
      ['429', { status: 429 }],
      [
        '403 rateLimitExceeded',
        { status: 403, reason: 'rateLimitExceeded', message: 'Exceeded rate limits' },
      ],
      ['403 quotaExceeded', { status: 403, reason: 'quotaExceeded', message: 'Quota exceeded' }],
      ['a reset connection', { reset: true }],
    ];
    for (const [what, fault] of transient) {
      it(`jobs.insert answering ${what} is a TransientError, and no job exists`, async () => {
        const load = job([csvObject(1)]);
        bq.fail({ ...fault, match: isInsert });
        const error = await caught(warehouse.load(load));
        expect(error, String(error)).to.be.instanceOf(TransientError);
        expect((error as Error).message).to.include(load.jobId);
        expect(bq.count(isInsert)).to.equal(1);
        expect(bq.job(PROJECT, load.jobId)).to.equal(undefined);
      });
    }

    // https://cloud.google.com/bigquery/docs/troubleshoot-quotas: the reason tells a short-term
    // limit (rateLimitExceeded) from a longer-term quota (quotaExceeded).
    const SHORT_TERM = 'Exceeded rate limits: too many table update operations for this table';
    const DAILY =
      'Quota exceeded: Your table exceeded quota for imports or query appends per table';
    const limits: [string, (jobId: string) => void, 'shortTerm' | 'daily'][] = [
      [
        'jobs.insert answering 403 rateLimitExceeded',
        () =>
          bq.fail({
            status: 403,
            reason: 'rateLimitExceeded',
            message: SHORT_TERM,
            match: isInsert,
          }),
        'shortTerm',
      ],
      [
        'jobs.insert answering 403 quotaExceeded',
        () => bq.fail({ status: 403, reason: 'quotaExceeded', message: DAILY, match: isInsert }),
        'daily',
      ],
      [
        'a job ending in rateLimitExceeded',
        (jobId) =>
          bq.script(jobId, { errorResult: { reason: 'rateLimitExceeded', message: SHORT_TERM } }),
        'shortTerm',
      ],
      [
        'a job ending in quotaExceeded',
        (jobId) => bq.script(jobId, { errorResult: { reason: 'quotaExceeded', message: DAILY } }),
        'daily',
      ],
    ];
    for (const [what, arrange, limit] of limits) {
      it(`a coalesced job: ${what} fails it for a ${limit} limit`, async () => {
        const load = job([csvObject(1)]);
        arrange(load.jobId);
        const result = await warehouse.loadClaimed(load);
        expect(result).to.include({ outcome: 'failed', quota: limit });
      });
    }

    it('jobs.get answering 503 while the job runs is a TransientError', async () => {
      const load = job([csvObject(1)]);
      bq.script(load.jobId, { durationMs: 200 });
      bq.fail({ status: 503, match: isJobGet });
      expect(await caught(warehouse.load(load))).to.be.instanceOf(TransientError);
    });

    it('a request timeout is a TransientError', async () => {
      const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
      const slow = createBigQueryWarehouse({
        bigquery: client,
        storage: storageClient(gcs),
        pollIntervalMs: 5,
        requestTimeoutMs: 200,
      });
      bq.fail({ delayMs: 1500, match: isInsert });
      const started = Date.now();
      const error = await caught(slow.load(job([csvObject(1)])));
      expect(error).to.be.instanceOf(TransientError);
      expect((error as Error).message).to.match(/no answer from BigQuery within 200 ms/);
      expect(Date.now() - started).to.be.below(1000);
    });

    it('jobs.insert answering 403 accessDenied is a plain Error', async () => {
      bq.fail({
        status: 403,
        reason: 'accessDenied',
        message: 'Access Denied: Project test-project',
        match: isInsert,
      });
      const error = await caught(warehouse.load(job([csvObject(1)])));
      expect(error).to.be.instanceOf(Error).and.not.instanceOf(TransientError);
      expect((error as Error).message)
        .to.include('HTTP 403')
        .and.include('Access Denied');
    });

    it('jobs.insert answering 400 invalid rejects the load', async () => {
      const load = job([csvObject(1)]);
      bq.fail({
        status: 400,
        reason: 'invalid',
        message: 'Invalid partition date 20241340',
        match: isInsert,
      });
      const result = await warehouse.load(load);
      expect(result).to.include({ outcome: 'rejected', jobId: load.jobId });
      expect((result as Extract<LoadResult, { outcome: 'rejected' }>).reason).to.include(
        'Invalid partition date 20241340',
      );
    });

    it('a job DONE with accessDenied is a plain Error, neither retried nor rejected', async () => {
      const load = job([csvObject(1)]);
      bq.script(load.jobId, {
        errorResult: {
          reason: 'accessDenied',
          message:
            'Access Denied: BigQuery BigQuery: Permission denied while getting Drive credentials.',
        },
      });
      const error = await caught(warehouse.load(load));
      expect(error).to.be.instanceOf(Error).and.not.instanceOf(TransientError);
      expect((error as Error).message).to.include('accessDenied');
      expect(insertedIds()).to.deep.equal([load.jobId]);
    });
  });

  it('tables() lists tables with their row counts', async () => {
    const local = await startBigQueryServer({ gcs });
    try {
      const w = createBigQueryWarehouse({
        bigquery: bigQueryClient(local),
        storage: storageClient(gcs),
        pollIntervalMs: 5,
      });
      await w.load(job([csvObject(2)], { destination: { dataset: 'a', table: 't1' } }));
      await w.load(job([csvObject(3)], { destination: { dataset: 'b', table: 't2' } }));
      expect(await w.tables()).to.deep.equal([
        { table: 'a.t1', rows: 2 },
        { table: 'b.t2', rows: 3 },
      ]);
    } finally {
      await local.close();
    }
  });

  it('without a project, jobs run in and load into the client project (GOOGLE_CLOUD_PROJECT here)', async () => {
    const client = bigQueryClient(bq, { projectId: undefined, retryOptions: { autoRetry: false } });
    const w = createBigQueryWarehouse({
      bigquery: client,
      storage: storageClient(gcs),
      pollIntervalMs: 5,
    });
    const load = job([csvObject(1)], { destination: { dataset: 'env', table: 'items' } });
    expect(await w.load(load)).to.include({ outcome: 'loaded' });
    const insert = bq.requests.find(isInsert);
    expect(insert?.path).to.equal(`/projects/${PROJECT}/jobs`);
    expect(bq.inserts()[0]?.configuration?.load?.destinationTable).to.include({
      projectId: PROJECT,
    });
  });

  describe('names BigQuery would read as more than the object', () => {
    const copies = () => gcs.names(BUCKET).filter((n) => n.startsWith('_quarantine/.loading/'));
    const insertedUris = () =>
      bq.inserts().flatMap((b) => (b.configuration?.load?.sourceUris ?? []) as string[]);

    for (const [name, neighbour] of [
      ['in/star/sales*.csv', 'in/star/sales-2024.csv'],
      ['in//double.csv', 'in/double.csv'],
      ['/rooted.csv', 'rooted.csv'],
    ] as const) {
      it(`${name}: loaded from a copy under a safe name, removed after the job`, async () => {
        csvObject(5, neighbour);
        const object = csvObject(2, name);
        const result = await warehouse.loadClaimed(job([object]));
        expect(result).to.deep.include({ outcome: 'loaded', rows: 2 });
        const [uri = ''] = insertedUris();
        expect(uri).to.match(/^gs:\/\/landing\/_quarantine\/\.loading\/\d+\//);
        expect(uri.slice('gs://'.length)).to.not.match(/\*|\/\//);
        expect(copies()).to.deep.equal([]);
        // A claim follower sees the job's sources as the objects they are.
        const followed = await warehouse.followJob(result.jobId, {
          location: 'US',
          deadline: Date.now() + 5000,
        });
        expect(followed?.uris).to.deep.equal([`gs://${BUCKET}/${name}`]);
      });
    }

    it('a rejected copy is removed too, and the reason names the original', async () => {
      const object = toStored(gcs.put(BUCKET, 'in/bad*.csv', 'id,name\n1,ok\n2,"open\n'));
      const result = await warehouse.load(job([object]));
      expect(result.outcome).to.equal('rejected');
      const reason = result.outcome === 'rejected' ? result.reason : '';
      expect(reason).to.include(`gs://${BUCKET}/in/bad*.csv`).and.not.include('.loading');
      expect(copies()).to.deep.equal([]);
    });

    it('a name whose safe copy would pass 1,024 bytes is rejected, saying why', async () => {
      const object = csvObject(1, `in/${'x'.repeat(1000)}*.csv`);
      const result = await warehouse.load(job([object]));
      expect(result.outcome).to.equal('rejected');
      expect(result.outcome === 'rejected' ? result.reason : '').to.include('wildcard');
      expect(bq.count(isInsert)).to.equal(0);
    });
  });

  it('recordRejection sends nothing', async () => {
    await warehouse.recordRejection(job([csvObject(1)]), 'header does not match');
    expect(bq.requests.length).to.equal(0);
  });
});

describe('the BigQuery test server', () => {
  let gcs: GcsServer;
  let bq: BigQueryServer;
  before(async () => {
    gcs = await startGcsServer();
    bq = await startBigQueryServer({ gcs });
  });
  after(async () => {
    await bq.close();
    await gcs.close();
  });

  const valid = {
    sourceFormat: 'CSV',
    sourceUris: [`gs://${BUCKET}/in/a.csv`],
    destinationTable: { projectId: PROJECT, datasetId: 'd', tableId: 't' },
  };
  const cases: [string, Record<string, unknown>, Record<string, string>, RegExp][] = [
    [
      'an unknown field',
      { fieldDelimeter: ',' },
      {},
      /Unknown name "fieldDelimeter" at 'job.configuration.load'/,
    ],
    [
      'an int32 sent as a string',
      { skipLeadingRows: '1' },
      {},
      /'job.configuration.load.skipLeadingRows' \(TYPE_INT32\)/,
    ],
    [
      'an int64 sent as a number',
      { timePartitioning: { type: 'DAY', expirationMs: 1000 } },
      {},
      /TYPE_INT64/,
    ],
    ['an unknown enum value', { writeDisposition: 'WRITE_APPENDS' }, {}, /writeDisposition/],
    ['an invalid label value', {}, { bucket: 'my.bucket' }, /Label value "my.bucket"/],
  ];
  for (const [what, load, labels, message] of cases) {
    it(`answers jobs.insert with ${what} 400 invalid, as BigQuery does`, async () => {
      const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
      const configuration = { load: { ...valid, ...load }, labels } as bigquery.IJobConfiguration;
      const error = (await caught(
        client.createJob({ configuration, jobId: `bad_${what.length}` }),
      )) as {
        code?: number;
        errors?: { reason?: string }[];
        message?: string;
      };
      expect(error?.code).to.equal(400);
      expect(error?.errors?.[0]?.reason).to.equal('invalid');
      expect(error?.message).to.match(message);
    });
  }

  it('accepts the same job without the fault', async () => {
    const client = bigQueryClient(bq, { retryOptions: { autoRetry: false } });
    gcs.put(BUCKET, 'in/a.csv', 'a\n1\n');
    const [, resource] = await client.createJob({
      configuration: { load: valid },
      jobId: 'good_1',
    });
    expect(resource.status?.state).to.equal('DONE');
  });
});

describe('the load job configuration', () => {
  const source: StoredObject = { bucket: BUCKET, name: 'in/a.csv', generation: '1', size: 10 };

  it('fits BigQuery REST types for any route options (checked as the test server checks jobs.insert)', () => {
    const name = fc.stringMatching(/^[a-z_][a-z0-9_]{0,20}$/);
    const jobs = fc.record({
      write: fc.constantFrom(...WRITE_MODES),
      schema: fc.oneof(
        fc.constant('auto' as const),
        fc.array(
          fc.record({
            name,
            type: fc.constantFrom(...FIELD_TYPES),
            mode: fc.constantFrom('NULLABLE' as const, 'REQUIRED' as const),
          }),
          {
            minLength: 1,
            maxLength: 5,
          },
        ),
      ),
      delimiter: fc.constantFrom(',', ';', '\t', '|'),
      skipLeadingRows: fc.nat(5),
      maxBadRecords: fc.nat(1000),
      nullMarker: fc.constantFrom('', 'NULL', '\\N'),
      quote: fc.constantFrom('"', "'", ''),
      partitioning: fc.option(
        fc.record({
          type: fc.constantFrom('DAY' as const, 'HOUR' as const),
          field: name,
          expirationMs: fc.integer({ min: 1, max: 2 ** 40 }),
        }),
        { nil: undefined },
      ),
      clustering: fc.option(fc.array(name, { minLength: 1, maxLength: 4 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(jobs, (o) => {
        const load = contractJob([source], {
          write: o.write,
          schema: o.schema,
          csv: {
            ...DEFAULT_CSV,
            delimiter: o.delimiter,
            skipLeadingRows: o.skipLeadingRows,
            maxBadRecords: o.maxBadRecords,
            nullMarker: o.nullMarker,
            quote: o.quote,
          },
          timePartitioning: o.partitioning,
          clustering: o.clustering,
          destination: {
            dataset: 'd',
            table: 't',
            partition: o.write === 'partition' ? '20240101' : undefined,
          },
          labels: { component: 'gcs-bq-ingest' },
        });
        const body = {
          jobReference: { projectId: PROJECT, jobId: load.jobId, location: 'US' },
          configuration: toJobConfiguration(load, PROJECT),
        };
        expect(
          checkAgainstSpec(body.configuration.load, LOAD_FIELDS, 'job.configuration.load'),
        ).to.equal(undefined);
      }),
    );
  });

  it('is typed with the client library REST types (compile-time)', () => {
    const typed: bigquery.IJobConfigurationLoad = toLoadConfiguration(
      contractJob([source]),
      PROJECT,
    );
    // @ts-expect-error a misspelt field does not compile against bigquery.IJobConfigurationLoad
    const misspelt: bigquery.IJobConfigurationLoad = { fieldDelimeter: ',' };
    // @ts-expect-error int64 fields (expirationMs) are strings in the REST types
    const wrongType: bigquery.ITimePartitioning = { expirationMs: 86_400_000 };
    expect([typed.sourceFormat, misspelt, wrongType]).to.have.length(3);
  });

  it("the test server's field table matches the client's IJobConfigurationLoad", () => {
    const file = path.join(path.dirname(require.resolve('@google-cloud/bigquery')), 'types.d.ts');
    const program = ts.createProgram([file], { noResolve: true });
    const source = program.getSourceFile(file) as ts.SourceFile;
    const fields = new Map<string, string>();
    const visit = (node: ts.Node): void => {
      if (
        ts.isTypeAliasDeclaration(node) &&
        node.name.text === 'IJobConfigurationLoad' &&
        ts.isTypeLiteralNode(node.type)
      ) {
        for (const member of node.type.members) {
          if (ts.isPropertySignature(member) && member.type) {
            fields.set(member.name.getText(source), kindOf(member.type, source));
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    expect(fields.size).to.be.above(40);
    const ours = new Map(Object.entries(LOAD_FIELDS).map(([name, spec]) => [name, specKind(spec)]));
    expect(Object.fromEntries([...ours].sort())).to.deep.equal(
      Object.fromEntries([...fields].sort()),
    );
  });
});

function kindOf(type: ts.TypeNode, source: ts.SourceFile): string {
  if (type.kind === ts.SyntaxKind.BooleanKeyword) return 'boolean';
  if (type.kind === ts.SyntaxKind.NumberKeyword) return 'number';
  if (type.kind === ts.SyntaxKind.StringKeyword) return 'string';
  if (ts.isUnionTypeNode(type)) return 'string';
  if (ts.isTypeReferenceNode(type))
    return type.typeName.getText(source) === 'Array' ? 'array' : 'object';
  return 'object';
}

function specKind(spec: (typeof LOAD_FIELDS)[string]): string {
  if (spec === 'boolean') return 'boolean';
  if (spec === 'int32' || spec === 'double') return 'number';
  if (spec === 'string' || spec === 'int64') return 'string';
  if (typeof spec === 'object' && 'enum' in spec) return 'string';
  if (typeof spec === 'object' && 'array' in spec) return 'array';
  return 'object';
}
