import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { DEFAULT_CSV, type SchemaField } from '../../src/config';
import type { StoredObject } from '../../src/stores/store';
import type { LoadJob, LoadResult, Warehouse } from '../../src/warehouses/warehouse';

export interface WarehouseFixture {
  warehouse: Warehouse;
  /** Stores an object where the warehouse can read it. */
  put(bucket: string, name: string, content: Buffer | string): Promise<StoredObject>;
  teardown(): Promise<void>;
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
    createDisposition: 'CREATE_IF_NEEDED',
    location: 'US',
    labels: {},
    deadline: Date.now() + 60_000,
    ...overrides,
  };
}

function csvRows(count: number, start = 0): string {
  const rows = Array.from(
    { length: count },
    (_, i) => `${start + i},name ${start + i},${(start + i) * 1.5}`,
  );
  return `id,name,price\n${rows.join('\n')}\n`;
}

/** The behaviour every Warehouse backend shares. `setup` runs before each test, on a fresh warehouse. */
export function testWarehouse(name: string, setup: () => Promise<WarehouseFixture>): void {
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

    async function rowsIn(table: string): Promise<number | undefined> {
      const tables = await warehouse.tables();
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
  });
}
