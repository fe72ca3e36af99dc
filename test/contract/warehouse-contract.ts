import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { DEFAULT_COLUMNS, DEFAULT_CSV, type FieldType, type SchemaField } from '../../src/config';
import { TransientError } from '../../src/core/errors';
import type { StoredObject } from '../../src/stores/store';
import type { LoadJob, LoadResult, Warehouse } from '../../src/warehouses/warehouse';
import { gzipCutAfter } from '../helpers/gzip';

export interface WarehouseFixture {
  warehouse: Warehouse;
  /** Stores an object where the warehouse can read it. */
  put(bucket: string, name: string, content: Buffer | string): Promise<StoredObject>;
  /** A table's rows, each value as text (null for NULL). */
  rows(dataset: string, table: string): Promise<Record<string, string | null>[]>;
  /** Another warehouse over the same data, as a restarted process builds it; closed by teardown. */
  reopen?(): Promise<Warehouse>;
  teardown(): Promise<void>;
}

/**
 * Cases a backend runs once it has the behaviour; until then they show as pending. The local DuckDB
 * backend runs them all.
 */
export interface WarehouseContractOptions {
  /** A `loaded` result counts the rows skipped under maxBadRecords and says why the first was bad. */
  badRecords?: boolean;
  /** A gzip source that ends early or fails its check is rejected, the reason naming gzip. */
  brokenGzip?: boolean;
  /** `abort` fails the loads in flight and queued with TransientError; needs `reopen`. */
  abort?: boolean;
}

const BUCKET = 'contract-bucket';
const DATASET = 'contract';

let jobCounter = 0;

/** A load job with the service's defaults; tests override what they are about. */
export function contractJob(sources: StoredObject[], overrides: Partial<LoadJob> = {}): LoadJob {
  jobCounter += 1;
  return {
    jobId: `ingest_contract_${process.pid}_${Date.now()}_${jobCounter}`,
    sources,
    destination: { dataset: DATASET, table: 'items' },
    write: 'append',
    schema: 'auto',
    csv: { ...DEFAULT_CSV },
    columns: { ...DEFAULT_COLUMNS },
    createDisposition: 'CREATE_IF_NEEDED',
    location: 'US',
    labels: {},
    deadline: Date.now() + 60_000,
    ...overrides,
  };
}

/**
 * Per type, text BigQuery's CSV loader reads and text it refuses ("Details of loading CSV data",
 * https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-csv); NUMERIC holds 38 digits,
 * 9 after the point.
 */
export const TYPE_CASES: { type: FieldType; valid: string[]; invalid: string[] }[] = [
  {
    type: 'INT64',
    valid: ['0', '-12', '+7', '9223372036854775807'],
    invalid: ['2.5', '-1.5', '0x10', '1_000', '1e3', '9223372036854775808', 'ten'],
  },
  {
    type: 'FLOAT64',
    valid: ['1.5', '-2', '.5', '1e3', '2.5E-3', 'inf', 'NaN'],
    invalid: ['1_0.5', '0x10', '1,5', 'abc'],
  },
  {
    type: 'NUMERIC',
    valid: ['2.50', '-3', '.123456789', '12345678901234567890123456789.123456789'],
    invalid: ['1.1234567891', '1e3', '1_000', '123456789012345678901234567890'],
  },
  {
    type: 'BOOL',
    valid: ['true', 'FALSE', 't', 'F', 'yes', 'No', 'y', 'N', '1', '0'],
    invalid: ['on', '2', 'maybe'],
  },
  {
    type: 'DATE',
    valid: ['2024-01-31', '2024-02-29'],
    invalid: ['2024-01-01 10:00', '2024/01/01', '20240101', '2024-02-30', '2023-02-29'],
  },
  {
    type: 'DATETIME',
    valid: ['2024-01-01 10:00:00', '2024-01-01 10:00:00.123456', '2024-01-01T23:59:59'],
    invalid: ['2024-01-01', '2024-01-01 10:00', '2024-01-01 10:00:00+02:00', '2024-01-01 25:00:00'],
  },
  {
    type: 'TIME',
    valid: ['00:00:00', '23:59:59.999999'],
    invalid: ['12:11', '24:00:00', '12:11:35+02', 'noon'],
  },
  {
    type: 'TIMESTAMP',
    valid: [
      '2018-08-19 12:11',
      '2018-08-19 12:11:35',
      '2018-08-19 12:11:35.22',
      '2018/08/19 12:11',
      '2018-07-05 12:54:00 UTC',
      '2018-08-19 07:11:35.220 -05:00',
      '2018-08-19T12:11:35.220Z',
      '1534680695',
    ],
    invalid: ['nonsense', '2024-01-01', '2024-13-01 00:00:00', '2024-01-01 10:00 PST'],
  },
];

function dataRows(count: number, start = 0): string {
  return Array.from(
    { length: count },
    (_, i) => `${start + i},name ${start + i},${(start + i) * 1.5}\n`,
  ).join('');
}

function csvRows(count: number, start = 0): string {
  return `id,name,price\n${dataRows(count, start)}`;
}

/** The behaviour every Warehouse backend shares. `setup` runs before each test, on a fresh warehouse. */
export function testWarehouse(
  name: string,
  setup: () => Promise<WarehouseFixture>,
  options: WarehouseContractOptions = {},
): void {
  const when = (enabled: boolean | undefined) => (enabled ? it : it.skip);
  describe(`Warehouse contract: ${name}`, function () {
    this.timeout(60_000);
    let fixture: WarehouseFixture;
    let warehouse: Warehouse;

    beforeEach(async () => {
      fixture = await setup();
      warehouse = fixture.warehouse;
    });
    afterEach(async () => {
      await fixture.teardown();
    });

    async function rowsIn(table: string, from = warehouse): Promise<number | undefined> {
      const tables = await from.tables();
      return tables.find((t) => t.table === `${DATASET}.${table}`)?.rows;
    }

    function expectLoaded(result: LoadResult, rows: number): void {
      expect(result, JSON.stringify(result)).to.deep.include({ outcome: 'loaded', rows });
    }

    function expectRejected(result: LoadResult): string {
      expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
      const reason = result.outcome === 'rejected' ? result.reason : '';
      expect(reason).to.be.a('string').and.not.equal('');
      expect(reason).to.not.include('\n');
      return reason;
    }

    it('loads a CSV and reports the rows written', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv', csvRows(3));
      const job = contractJob([object]);
      const result = await warehouse.load(job);
      expectLoaded(result, 3);
      expect(result.jobId).to.equal(job.jobId);
      expect(await rowsIn('items')).to.equal(3);
    });

    it('loads an object whose name has "*" alone, not the neighbours the "*" would match', async () => {
      await fixture.put(BUCKET, 'in/sales.csv', csvRows(2));
      await fixture.put(BUCKET, 'in/sales-2024.csv', csvRows(3, 10));
      const object = await fixture.put(BUCKET, 'in/sales*.csv', csvRows(1, 20));
      expectLoaded(await warehouse.load(contractJob([object])), 1);
      expect(await rowsIn('items')).to.equal(1);
    });

    it('answers duplicate for a job id that already loaded, writing nothing', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv', csvRows(3));
      const job = contractJob([object]);
      expectLoaded(await warehouse.load(job), 3);
      const again = await warehouse.load(job);
      expect(again.outcome).to.equal('duplicate');
      expect(again.jobId).to.equal(job.jobId);
      expect(await rowsIn('items')).to.equal(3);
    });

    it('loads once when 20 deliveries of the same job arrive together', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv', csvRows(4));
      const job = contractJob([object]);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => warehouse.load({ ...job })),
      );
      const outcomes = results.map((r) => r.outcome);
      expect(outcomes.filter((o) => o === 'loaded')).to.have.length(1);
      expect(outcomes.filter((o) => o === 'duplicate')).to.have.length(19);
      expect(await rowsIn('items')).to.equal(4);
    });

    it('rejects a malformed CSV with a reason and writes none of it', async () => {
      const object = await fixture.put(
        BUCKET,
        'in/bad.csv',
        'id,name\n1,ok\n2,"unterminated\n3,x\n',
      );
      const reason = expectRejected(
        await warehouse.load(
          contractJob([object], { destination: { dataset: DATASET, table: 'bad' } }),
        ),
      );
      expect(reason).to.match(/quote/i);
      expect(await rowsIn('bad')).to.be.oneOf([undefined, 0]);
    });

    it('rejects a malformed CSV appended to an existing table, leaving its rows alone', async () => {
      const good = await fixture.put(BUCKET, 'in/good.csv', csvRows(2));
      expectLoaded(await warehouse.load(contractJob([good])), 2);
      const bad = await fixture.put(BUCKET, 'in/bad.csv', 'id,name,price\n5,five,1\n6,six\n');
      expectRejected(await warehouse.load(contractJob([bad])));
      expect(await rowsIn('items')).to.equal(2);
    });

    it('appends: rows of later jobs add to the table', async () => {
      const first = await fixture.put(BUCKET, 'in/a.csv', csvRows(2));
      const second = await fixture.put(BUCKET, 'in/b.csv', csvRows(3, 10));
      expectLoaded(await warehouse.load(contractJob([first])), 2);
      expectLoaded(await warehouse.load(contractJob([second])), 3);
      expect(await rowsIn('items')).to.equal(5);
    });

    it('truncates: a truncating job replaces the rows', async () => {
      const first = await fixture.put(BUCKET, 'in/a.csv', csvRows(5));
      const second = await fixture.put(BUCKET, 'in/b.csv', csvRows(2, 10));
      expectLoaded(await warehouse.load(contractJob([first])), 5);
      expectLoaded(await warehouse.load(contractJob([second], { write: 'truncate' })), 2);
      expect(await rowsIn('items')).to.equal(2);
    });

    it('partitions: a job replaces only its own partition', async () => {
      const job = (object: StoredObject, partition: string) =>
        contractJob([object], {
          write: 'partition',
          destination: { dataset: DATASET, table: 'sales', partition },
        });
      const day1 = await fixture.put(BUCKET, 'sales/2024/01/01/a.csv', csvRows(2));
      const day2 = await fixture.put(BUCKET, 'sales/2024/01/02/a.csv', csvRows(3));
      const day1Again = await fixture.put(BUCKET, 'sales/2024/01/01/b.csv', csvRows(1));
      expectLoaded(await warehouse.load(job(day1, '20240101')), 2);
      expectLoaded(await warehouse.load(job(day2, '20240102')), 3);
      expect(await rowsIn('sales')).to.equal(5);
      expectLoaded(await warehouse.load(job(day1Again, '20240101')), 1);
      expect(await rowsIn('sales')).to.equal(4);
    });

    it('partitions: sources whose headers differ load together, each by its own names', async () => {
      const a = await fixture.put(BUCKET, 'sales/2024/02/01/a.csv', 'id,name\n1,one\n');
      const b = await fixture.put(BUCKET, 'sales/2024/02/01/b.csv', 'name,id,extra\ntwo,2,x\n');
      const destination = { dataset: DATASET, table: 'mixed', partition: '20240201' };
      const job = contractJob([a, b], { write: 'partition', destination });
      expectLoaded(await warehouse.load(job), 2);
      const columns = (await warehouse.tableColumns(destination, true))?.map((c) => c.name);
      expect(columns).to.include.members(['id', 'name', 'extra']);
      expect(await rowsIn('mixed')).to.equal(2);
    });

    it('loads on trial without changing the table, and says why sources cannot load', async () => {
      const first = await fixture.put(BUCKET, 'in/a.csv', csvRows(2));
      expectLoaded(await warehouse.load(contractJob([first])), 2);
      const more = await fixture.put(BUCKET, 'in/b.csv', csvRows(3, 10));
      expect(await warehouse.load(contractJob([more], { trial: true }))).to.include({
        outcome: 'loaded',
      });
      const bad = await fixture.put(BUCKET, 'in/bad.csv', 'id,name,price\n5,five\n');
      expectRejected(await warehouse.load(contractJob([bad], { trial: true })));
      expect(await rowsIn('items')).to.equal(2);
    });

    it('truncates to nothing with a header-only source', async () => {
      const first = await fixture.put(BUCKET, 'in/a.csv', csvRows(2));
      expectLoaded(await warehouse.load(contractJob([first])), 2);
      const empty = await fixture.put(BUCKET, 'in/empty.csv', 'id,name,price\n');
      expectLoaded(await warehouse.load(contractJob([empty], { write: 'truncate' })), 0);
      expect(await rowsIn('items')).to.equal(0);
    });

    it('rejects a value that does not fit the schema, naming the row or column', async () => {
      const schema: SchemaField[] = [
        { name: 'id', type: 'INT64', mode: 'REQUIRED' },
        { name: 'amount', type: 'NUMERIC' },
      ];
      const object = await fixture.put(BUCKET, 'in/typed.csv', 'id,amount\n1,2.50\n2,lots\n3,4\n');
      const job = contractJob([object], {
        schema,
        destination: { dataset: DATASET, table: 'typed' },
      });
      const reason = expectRejected(await warehouse.load(job));
      expect(reason).to.match(/amount|\b(line|row) 3\b|position 1/i);
      expect(await rowsIn('typed')).to.be.oneOf([undefined, 0]);
    });

    it('loads with an explicit schema', async () => {
      const schema: SchemaField[] = [
        { name: 'id', type: 'INT64' },
        { name: 'amount', type: 'NUMERIC' },
        { name: 'day', type: 'DATE' },
      ];
      const object = await fixture.put(
        BUCKET,
        'in/typed.csv',
        'id,amount,day\n1,2.50,2024-01-01\n2,3,2024-02-29\n',
      );
      const job = contractJob([object], {
        schema,
        destination: { dataset: DATASET, table: 'typed' },
      });
      expectLoaded(await warehouse.load(job), 2);
    });

    it('rejects a job for a missing table when createDisposition is CREATE_NEVER', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv', csvRows(2));
      const job = contractJob([object], {
        createDisposition: 'CREATE_NEVER',
        destination: { dataset: DATASET, table: 'absent' },
      });
      const reason = expectRejected(await warehouse.load(job));
      expect(reason).to.match(/absent/);
      expect(reason).to.match(/not exist|not found/i);
      expect(await rowsIn('absent')).to.equal(undefined);
    });

    it('loads gzip-compressed CSV', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv.gz', gzipSync(csvRows(6)));
      expectLoaded(await warehouse.load(contractJob([object])), 6);
      expect(await rowsIn('items')).to.equal(6);
    });

    it('loads several sources of one job together', async () => {
      const a = await fixture.put(BUCKET, 'in/a.csv', csvRows(2));
      const b = await fixture.put(BUCKET, 'in/b.csv', csvRows(3, 10));
      expectLoaded(await warehouse.load(contractJob([a, b], { write: 'truncate' })), 5);
      expect(await rowsIn('items')).to.equal(5);
    });

    it('records a rejection without failing', async () => {
      const object = await fixture.put(BUCKET, 'in/items.csv', csvRows(1));
      await warehouse.recordRejection(contractJob([object]), 'header does not match the schema');
    });

    describe('ISO-8859-1 text', () => {
      // Each byte is the code point of the same number, 0x80-0x9F too (Windows-1252's curly quotes,
      // euro sign and dashes), as BigQuery reads ISO-8859-1.
      const text = 'caf\xe9 \x80 \x93\x94 \x96 \x9f \xff';
      const schema: SchemaField[] = [
        { name: 'id', type: 'INT64' },
        { name: 'name', type: 'STRING' },
      ];
      for (const gzip of [false, true]) {
        it(`stores every byte as the code point of the same number${gzip ? ' (gzip)' : ''}`, async () => {
          const content = Buffer.from(`id,name\n1,${text}\n2,"${text}"\n`, 'latin1');
          const name = gzip ? 'in/latin1.csv.gz' : 'in/latin1.csv';
          const object = await fixture.put(BUCKET, name, gzip ? gzipSync(content) : content);
          const csv = { ...DEFAULT_CSV, encoding: 'ISO-8859-1' as const };
          const destination = { dataset: DATASET, table: 'latin1' };
          expectLoaded(
            await warehouse.load(contractJob([object], { schema, csv, destination })),
            2,
          );
          const names = (await fixture.rows(DATASET, 'latin1')).map((row) => row.name);
          expect(names).to.deep.equal([text, text]);
        });
      }
    });

    describe('values BigQuery reads as each type', () => {
      for (const { type, valid, invalid } of TYPE_CASES) {
        const table = { dataset: DATASET, table: `typed_${type.toLowerCase()}` };
        const schema: SchemaField[] = [
          { name: 'id', type: 'INT64' },
          { name: 'value', type },
        ];
        const file = (values: string[]) =>
          `id,value\n${values.map((v, i) => `${i},"${v}"`).join('\n')}\n`;

        when(options.badRecords)(
          `${type}: loads what BigQuery reads, skips and counts what it refuses`,
          async () => {
            const object = await fixture.put(BUCKET, 'in/mixed.csv', file([...valid, ...invalid]));
            const csv = { ...DEFAULT_CSV, maxBadRecords: invalid.length };
            const result = await warehouse.load(
              contractJob([object], { schema, csv, destination: table }),
            );
            expectLoaded(result, valid.length);
            const bad = result.outcome === 'loaded' ? result.badRecords : undefined;
            expect(bad?.count, JSON.stringify(result)).to.equal(invalid.length);
          },
        );

        it(`${type}: rejects a file with a value BigQuery refuses, leaving the table as it was`, async () => {
          const good = await fixture.put(BUCKET, 'in/good.csv', file(valid));
          expectLoaded(
            await warehouse.load(contractJob([good], { schema, destination: table })),
            valid.length,
          );
          for (const value of invalid) {
            const object = await fixture.put(BUCKET, 'in/bad.csv', file([valid[0] ?? '', value]));
            const reason = expectRejected(
              await warehouse.load(contractJob([object], { schema, destination: table })),
            );
            expect(reason, value).to.include('value');
          }
          expect(await rowsIn(table.table)).to.equal(valid.length);
        });
      }
    });

    describe('rows skipped under maxBadRecords', () => {
      const schema: SchemaField[] = [
        { name: 'id', type: 'INT64' },
        { name: 'name', type: 'STRING' },
      ];
      const lenient = (object: StoredObject) =>
        contractJob([object], {
          schema,
          csv: { ...DEFAULT_CSV, maxBadRecords: 2 },
          destination: { dataset: DATASET, table: 'lenient' },
        });

      when(options.badRecords)(
        'are counted in the loaded result, with why the first was bad',
        async () => {
          const object = await fixture.put(
            BUCKET,
            'in/some-bad.csv',
            'id,name\n1,a\nx,b\n3,c\n4,d\n',
          );
          const result = await warehouse.load(lenient(object));
          expectLoaded(result, 3);
          const bad = result.outcome === 'loaded' ? result.badRecords : undefined;
          expect(bad?.count, JSON.stringify(result)).to.equal(1);
          expect(bad?.first).to.include('some-bad.csv').and.not.include('\n');
          expect(await rowsIn('lenient')).to.equal(3);
        },
      );

      when(options.badRecords)('are not reported when there are none', async () => {
        const object = await fixture.put(BUCKET, 'in/all-good.csv', 'id,name\n1,a\n2,b\n');
        const result = await warehouse.load(lenient(object));
        expectLoaded(result, 2);
        expect(result.outcome === 'loaded' && (result.badRecords?.count ?? 0)).to.equal(0);
      });
    });

    describe('a broken gzip source', () => {
      const gzipTable = { dataset: DATASET, table: 'zipped' };
      async function expectGzipRejected(content: Buffer): Promise<string> {
        const object = await fixture.put(BUCKET, 'in/broken.csv.gz', content);
        const reason = expectRejected(
          await warehouse.load(contractJob([object], { destination: gzipTable })),
        );
        expect(reason).to.match(/gzip/i);
        expect(await rowsIn('zipped')).to.be.oneOf([undefined, 0]);
        return reason;
      }

      when(options.brokenGzip)(
        'cut short where its rows so far are whole is rejected, not half loaded',
        async () => {
          const { cut } = await gzipCutAfter(csvRows(2000), dataRows(2000, 2000));
          expect(await expectGzipRejected(cut)).to.match(/unexpected end/i);
        },
      );

      when(options.brokenGzip)(
        'cut mid-row is rejected for the gzip, not for a column count',
        async () => {
          const { whole, cut } = await gzipCutAfter(csvRows(2000), dataRows(2000, 2000));
          const midway = whole.subarray(
            0,
            cut.length + Math.floor((whole.length - cut.length) / 2),
          );
          const reason = await expectGzipRejected(midway);
          expect(reason).to.match(/unexpected end/i);
          expect(reason).to.not.match(/columns/i);
        },
      );

      when(options.brokenGzip)('whose CRC does not match is rejected', async () => {
        const content = gzipSync(csvRows(20_000)); // more than the head a header check reads
        content.writeUInt32LE(
          (content.readUInt32LE(content.length - 8) ^ 1) >>> 0,
          content.length - 8,
        );
        await expectGzipRejected(content);
      });
    });

    when(options.abort)(
      'abort fails loads in flight and queued with TransientError; delivered again, each loads once',
      async () => {
        if (!fixture.reopen) throw new Error('the abort case needs fixture.reopen');
        const objects = await Promise.all(
          [0, 1, 2, 3].map((i) => fixture.put(BUCKET, `in/part-${i}.csv`, csvRows(1000, i * 1000))),
        );
        const jobs = objects.map((object) => contractJob([object]));
        const first = jobs.map((job) =>
          warehouse.load(job).then(
            (result) => result,
            (error: unknown) => error,
          ),
        );
        await warehouse.abort('shutting down');
        const results = await Promise.all(first);
        for (const result of results) {
          if (result instanceof TransientError) continue;
          expect((result as LoadResult).outcome, String(result)).to.equal('loaded');
        }
        expect(results.some((result) => result instanceof TransientError)).to.equal(true);

        const restarted = await fixture.reopen();
        const again = await Promise.all(jobs.map((job) => restarted.load(job)));
        for (const result of again) expect(result.outcome).to.be.oneOf(['loaded', 'duplicate']);
        expect(await rowsIn('items', restarted)).to.equal(4000);
      },
    );
  });
}
