import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import type { TableColumn } from '../../src/schema/columns';
import { DEFAULT_COLUMNS, type ColumnRules, type SchemaField } from '../../src/config';
import type { StoredObject } from '../../src/stores/store';
import type { LoadJob, LoadResult } from '../../src/warehouses/warehouse';
import { contractJob, type WarehouseFixture } from './warehouse-contract';

export type DriftFixture = WarehouseFixture;

const BUCKET = 'drift-bucket';
const DATASET = 'drift';
const destination = { dataset: DATASET, table: 'items' };

/**
 * Columns that drift, the same on every backend: the table's columns and rows after each load, and
 * the reason a file is rejected with, matched by name and position as the route says.
 */
export function testDrift(name: string, setup: () => Promise<DriftFixture>): void {
  describe(`Columns that drift: ${name}`, function () {
    this.timeout(60_000);
    let fixture: DriftFixture;
    let counter = 0;

    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(async () => {
      await fixture.teardown();
    });

    async function load(
      content: string | Buffer,
      options: {
        columns?: Partial<ColumnRules>;
        schema?: SchemaField[];
        write?: LoadJob['write'];
        gzip?: boolean;
      } = {},
    ): Promise<LoadResult> {
      const file = `in/file-${++counter}.csv${options.gzip ? '.gz' : ''}`;
      const body = options.gzip ? gzipSync(content) : content;
      const object: StoredObject = await fixture.put(BUCKET, file, body);
      const job = contractJob([object], {
        destination,
        columns: { ...DEFAULT_COLUMNS, ...options.columns },
        schema: options.schema ?? 'auto',
        write: options.write ?? 'append',
      });
      return fixture.warehouse.load(job);
    }

    async function loaded(content: string | Buffer, options?: Parameters<typeof load>[1]) {
      const result = await load(content, options);
      expect(result.outcome, JSON.stringify(result)).to.equal('loaded');
      return result.outcome === 'loaded' ? result : undefined;
    }

    async function rejected(content: string | Buffer, options?: Parameters<typeof load>[1]) {
      const result = await load(content, options);
      expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
      return result.outcome === 'rejected' ? result.reason : '';
    }

    const columns = async (): Promise<string[]> =>
      ((await fixture.warehouse.tableColumns(destination, true)) ?? []).map(
        (c) => `${c.name} ${c.mode}`,
      );
    const typed = async (): Promise<TableColumn[] | undefined> =>
      fixture.warehouse.tableColumns(destination, true);
    const rows = async (...names: string[]) =>
      (await fixture.rows(DATASET, 'items'))
        .map((row) => names.map((n) => row[n] ?? null))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

    const required: SchemaField[] = [
      { name: 'id', type: 'INT64', mode: 'REQUIRED' },
      { name: 'name', type: 'STRING', mode: 'REQUIRED' },
    ];

    it('reorder: a file with the columns in another order loads each value into its column', async () => {
      await loaded('id,name\n1,a\n');
      const result = await loaded('name,id\nb,2\n');
      expect(result?.schemaChanges).to.equal(undefined);
      expect(await rows('id', 'name')).to.deep.equal([
        ['1', 'a'],
        ['2', 'b'],
      ]);
    });

    it('case: header names that differ in case load into the same columns', async () => {
      await loaded('id,name\n1,a\n');
      await loaded('ID,Name\n2,b\n');
      expect(await columns()).to.deep.equal(['id NULLABLE', 'name NULLABLE']);
      expect(await rows('id', 'name')).to.deep.equal([
        ['1', 'a'],
        ['2', 'b'],
      ]);
    });

    it('add: a new header column becomes a NULLABLE column, NULL in earlier rows', async () => {
      await loaded('id,name\n1,a\n');
      const result = await loaded('id,name,extra,qty\n2,b,x,7\n');
      expect(result?.schemaChanges).to.deep.equal([
        'added column extra STRING',
        'added column qty INT64',
      ]);
      expect(await columns()).to.deep.equal([
        'id NULLABLE',
        'name NULLABLE',
        'extra NULLABLE',
        'qty NULLABLE',
      ]);
      const added = (await typed())?.slice(2).map((c) => c.type);
      expect(added).to.deep.equal(['STRING', 'INT64']);
      expect(await rows('id', 'name', 'extra', 'qty')).to.deep.equal([
        ['1', 'a', null, null],
        ['2', 'b', 'x', '7'],
      ]);
    });

    it('add, with newColumns: reject: the file is rejected naming the column, the table unchanged', async () => {
      await loaded('id,name\n1,a\n');
      const reason = await rejected('id,name,extra\n2,b,x\n', {
        columns: { newColumns: 'reject' },
      });
      expect(reason).to.match(
        /column "extra" is not in table .*drift\.items \(newColumns: reject\)/,
      );
      expect(await columns()).to.deep.equal(['id NULLABLE', 'name NULLABLE']);
      expect(await rows('id')).to.deep.equal([['1']]);
    });

    it('drop, NULLABLE: a column the file lacks loads as NULL', async () => {
      await loaded('id,name,price\n1,a,2.5\n');
      const result = await loaded('id,price\n2,3.5\n');
      expect(result?.schemaChanges).to.equal(undefined);
      expect(await rows('id', 'name', 'price')).to.deep.equal([
        ['1', 'a', '2.5'],
        ['2', null, '3.5'],
      ]);
    });

    it('drop, REQUIRED: the file is rejected naming the column', async () => {
      await loaded('id,name\n1,a\n', { schema: required });
      const reason = await rejected('id\n2\n', { schema: required });
      expect(reason).to.match(/column "name" of table .*drift\.items is REQUIRED and missing/);
      expect(await columns()).to.deep.equal(['id REQUIRED', 'name REQUIRED']);
      expect(await rows('id', 'name')).to.deep.equal([['1', 'a']]);
    });

    it('drop, REQUIRED, with relaxColumns: the column becomes NULLABLE and loads as NULL', async () => {
      await loaded('id,name\n1,a\n', { schema: required });
      const result = await loaded('id\n2\n', { schema: required, columns: { relax: true } });
      expect(result?.schemaChanges).to.deep.equal(['relaxed column name to NULLABLE']);
      expect(await columns()).to.deep.equal(['id REQUIRED', 'name NULLABLE']);
      expect(await rows('id', 'name')).to.deep.equal([
        ['1', 'a'],
        ['2', null],
      ]);
    });

    it('duplicate names: a header with two names equal but for case is rejected with the name', async () => {
      const reason = await rejected('id,name,ID\n1,a,2\n');
      expect(reason).to.match(/duplicate column name "ID"/);
      expect(await typed()).to.equal(undefined);
    });

    it('a name BigQuery cannot use is rejected with the name', async () => {
      const reason = await rejected('id,price ($)\n1,2\n');
      expect(reason).to.match(/column name "price \(\$\)"/);
    });

    it("type conflict: a value that does not fit the table's type is rejected with column, type and value", async () => {
      const schema: SchemaField[] = [
        { name: 'id', type: 'INT64' },
        { name: 'name', type: 'STRING' },
      ];
      await loaded('id,name\n1,a\n', { schema });
      const reason = await rejected('name,id\nb,2\nc,three\n', { schema });
      expect(reason)
        .to.match(/\bid\b/)
        .and.match(/INT64/)
        .and.match(/three/);
      expect(reason).to.match(/line 3|row 2 |location \d+/);
      expect(await rows('id', 'name')).to.deep.equal([['1', 'a']]);
    });

    it('truncate keeps the schema: a column the file lacks stays, NULL', async () => {
      await loaded('id,name,extra\n1,a,x\n');
      const result = await loaded('id,name\n2,b\n', { write: 'truncate' });
      expect(result?.schemaChanges).to.equal(undefined);
      expect(await columns()).to.deep.equal(['id NULLABLE', 'name NULLABLE', 'extra NULLABLE']);
      expect(await rows('id', 'name', 'extra')).to.deep.equal([['2', 'b', null]]);
    });

    it('truncate evolves the schema by the same rules: a new column is added', async () => {
      await loaded('id,name\n1,a\n');
      const result = await loaded('id,name,more\n2,b,y\n', { write: 'truncate' });
      expect(result?.schemaChanges).to.deep.equal(['added column more STRING']);
      expect(await rows('id', 'name', 'more')).to.deep.equal([['2', 'b', 'y']]);
    });

    it("replace takes the file's schema: a column the file lacks is dropped", async () => {
      await loaded('id,name,extra\n1,a,x\n');
      const result = await loaded('id,name\n3,c\n', { write: 'replace' });
      expect(result?.schemaChanges).to.deep.equal(['dropped column extra']);
      expect(await columns()).to.deep.equal(['id NULLABLE', 'name NULLABLE']);
      expect(await rows('id', 'name')).to.deep.equal([['3', 'c']]);
    });

    it('a header-only file loads 0 rows, its columns evolving the table as any file does', async () => {
      await loaded('id,name\n1,a\n');
      const result = await loaded('id,name,extra\n');
      expect(result).to.deep.include({ rows: 0, schemaChanges: ['added column extra STRING'] });
      expect(await rows('id', 'name')).to.deep.equal([['1', 'a']]);
      await loaded('id,name\n', { write: 'truncate' });
      expect(await rows('id', 'name')).to.deep.equal([]);
    });

    it('gzip: a reordered .csv.gz with a new column loads by name', async () => {
      await loaded('id,name\n1,a\n');
      const result = await loaded('extra,name,id\nz,b,2\n', { gzip: true });
      expect(result?.schemaChanges).to.deep.equal(['added column extra STRING']);
      expect(await rows('id', 'name', 'extra')).to.deep.equal([
        ['1', 'a', null],
        ['2', 'b', 'z'],
      ]);
    });

    it('byPosition: values load by position, whatever the header names', async () => {
      await loaded('id,name\n1,a\n');
      await loaded('x,y\n2,b\n', { columns: { match: 'byPosition' } });
      expect(await columns()).to.deep.equal(['id NULLABLE', 'name NULLABLE']);
      expect(await rows('id', 'name')).to.deep.equal([
        ['1', 'a'],
        ['2', 'b'],
      ]);
    });

    it('byPosition: a file with fewer columns than the table is rejected', async () => {
      await loaded('id,name\n1,a\n');
      const reason = await rejected('id\n2\n', { columns: { match: 'byPosition' } });
      expect(reason).to.match(/the file has 1 columns and table .*drift\.items has 2/);
    });
  });
}
