import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, type Config } from '../../src/config';
import { ingest, type Services } from '../../src/ingest';
import type { ObjectResult } from '../../src/objects/outcomes';
import type { StoredObject } from '../../src/stores/store';

/** The README's example partition route, with its schema file. */
export const SALES_YAML = `
buckets: [landing]
routes:
  - match: 'sales/{table}/{yyyy}/{mm}/{dd}/*.csv'
    dataset: sales
    table: '{table}'
    write: partition
    schema: schemas/sales.json
  - match: 'days/{yyyy}/{mm}/{dd}/*.csv'
    dataset: days
    table: items
    write: partition
  - match: 'whole/*.csv'
    dataset: whole
    table: items
    write: truncate
  - match: '**/*.csv'
    write: append
`;

/** The configuration a fixture builds its services from: `SALES_YAML`, schema files from the repository. */
export function salesConfig(env: Record<string, string> = {}): Config {
  const root = path.resolve(__dirname, '..', '..', '..');
  return loadConfig({ INGEST_CONFIG: path.join(root, 'ingest.yaml'), ...env }, (file) =>
    file === path.join(root, 'ingest.yaml') ? SALES_YAML : fs.readFileSync(file, 'utf8'),
  );
}

export interface PartitionFixture {
  services: Services;
  /** Writes an object to bucket `landing`. */
  put(name: string, content: string): Promise<StoredObject>;
  /** The rows of `dataset.table`, or of one partition (YYYYMMDD) of it, each value as text. */
  rows(
    dataset: string,
    table: string,
    partition?: string,
  ): Promise<Record<string, string | null>[]>;
  teardown(): Promise<void>;
}

const ORDERS = `order_id,region,amount,sold_at
1001,north,19.90,2026-11-28T09:15:00Z
1002,south,5.00,2026-11-28T10:02:31Z
`;
const DAY = 'sales/orders/2026/11/28';

/**
 * A partition day made of several files, through the use case, on each backend: a rebuild keeps every
 * current file of the day and quarantines only the files that are themselves bad.
 */
export function testPartitionDays(name: string, setup: () => Promise<PartitionFixture>): void {
  describe(`Partition days: ${name}`, function () {
    this.timeout(60_000);
    let fixture: PartitionFixture;
    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(async () => fixture.teardown());

    async function event(object: StoredObject): Promise<ObjectResult> {
      const request = { objects: [object], ignored: [], force: false };
      const result = await ingest(request, fixture.services, Date.now() + 50_000);
      return result.objects[0] as ObjectResult;
    }
    const orderIds = async () =>
      (await fixture.rows('sales', 'orders', '20261128')).map((r) => r.order_id).sort();
    const quarantined = async (file: string) =>
      fixture.services.store.stat('landing', `_quarantine/${DAY}/${file}`);

    it('loads a file whose header is in another order by name, next to its siblings', async () => {
      expect(await event(await fixture.put(`${DAY}/orders.csv`, ORDERS))).to.include({
        outcome: 'loaded',
        rows: 2,
      });
      const reordered = await fixture.put(
        `${DAY}/reordered.csv`,
        'region,order_id,amount,sold_at\neast,2001,7.50,2026-11-28T11:00:00Z\n',
      );
      const result = await event(reordered);
      expect(result, JSON.stringify(result)).to.include({ outcome: 'loaded', rows: 3 });
      expect(await quarantined('orders.csv')).to.equal(undefined);
      const later = await fixture.put(
        `${DAY}/later.csv`,
        'order_id,region,amount,sold_at\n3001,west,1.00,2026-11-28T12:00:00Z\n',
      );
      expect(await event(later)).to.include({ outcome: 'loaded', rows: 4 });
      expect(await orderIds()).to.deep.equal(['1001', '1002', '2001', '3001']);
      const rows = await fixture.rows('sales', 'orders', '20261128');
      expect(rows.find((r) => r.order_id === '2001')).to.include({ region: 'east' });
    });

    it('rejects only a file that adds a column the route rejects, keeping the rest of the day', async () => {
      await event(await fixture.put(`${DAY}/orders.csv`, ORDERS));
      const wider = await fixture.put(
        `${DAY}/wider.csv`,
        'order_id,region,amount,sold_at,note\n2001,east,7.50,2026-11-28T11:00:00Z,x\n',
      );
      const result = await event(wider);
      expect(result.outcome).to.equal('rejected');
      expect(result.reason).to.match(/note/);
      expect(await quarantined('orders.csv')).to.equal(undefined);
      const later = await fixture.put(
        `${DAY}/later.csv`,
        'order_id,region,amount,sold_at\n3001,west,1.00,2026-11-28T12:00:00Z\n',
      );
      expect(await event(later)).to.include({ outcome: 'loaded', rows: 3 });
      expect(await orderIds()).to.deep.equal(['1001', '1002', '3001']);
    });

    it('quarantines only the file with a NULL in a REQUIRED column, splitting a reason that names all', async () => {
      await event(await fixture.put(`${DAY}/orders.csv`, ORDERS));
      await event(
        await fixture.put(
          `${DAY}/more.csv`,
          'order_id,region,amount,sold_at\n1003,east,2.00,2026-11-28T13:00:00Z\n',
        ),
      );
      const holes = await fixture.put(
        `${DAY}/holes.csv`,
        'order_id,region,amount,sold_at\n,east,7.50,2026-11-28T11:00:00Z\n',
      );
      const result = await event(holes);
      expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
      expect(await quarantined('holes.csv')).to.not.equal(undefined);
      expect(await quarantined('orders.csv')).to.equal(undefined);
      expect(await quarantined('more.csv')).to.equal(undefined);
      expect(await orderIds()).to.deep.equal(['1001', '1002', '1003']);
      const later = await fixture.put(
        `${DAY}/later.csv`,
        'order_id,region,amount,sold_at\n3001,west,1.00,2026-11-28T12:00:00Z\n',
      );
      expect(await event(later)).to.include({ outcome: 'loaded', rows: 4 });
    });

    it('adds a column a file brings whichever order the files arrive in (newColumns: add)', async () => {
      for (const order of [
        ['a.csv', 'b.csv'],
        ['b.csv', 'a.csv'],
      ]) {
        const day = order[0] === 'a.csv' ? '2024/03/01' : '2024/03/02';
        const files: Record<string, string> = {
          'a.csv': 'id,name\n1,x\n',
          'b.csv': 'id,name,extra\n2,y,z\n',
        };
        const results = [];
        for (const file of order) {
          results.push(await event(await fixture.put(`days/${day}/${file}`, files[file]!)));
        }
        expect(
          results.map((r) => r.outcome),
          JSON.stringify(results),
        ).to.deep.equal(['loaded', 'loaded']);
        const rows = await fixture.rows('days', 'items', day.replace(/\//g, ''));
        expect(rows.map((r) => [r.id, r.extra ?? null])).to.deep.equal([
          ['1', null],
          ['2', 'z'],
        ]);
      }
    });

    it('empties the day with a header-only file, the only one left of it', async () => {
      const only = await fixture.put(`days/2024/04/01/a.csv`, 'id,name\n1,x\n2,y\n');
      expect(await event(only)).to.include({ outcome: 'loaded', rows: 2 });
      const emptied = await fixture.put(`days/2024/04/01/a.csv`, 'id,name\n');
      expect(await event(emptied)).to.include({ outcome: 'loaded', rows: 0 });
      expect(await fixture.rows('days', 'items', '20240401')).to.deep.equal([]);
    });

    it('empties a truncate destination with a header-only file', async () => {
      expect(await event(await fixture.put('whole/a.csv', 'id,name\n1,x\n'))).to.include({
        outcome: 'loaded',
        rows: 1,
      });
      expect(await event(await fixture.put('whole/b.csv', 'id,name\n'))).to.include({
        outcome: 'loaded',
        rows: 0,
      });
      expect(await fixture.rows('whole', 'items')).to.deep.equal([]);
    });

    it('answers a header-only file on an append route skipped, without quarantining it', async () => {
      const file = await fixture.put('in/empty-day.csv', 'id,name\n');
      const result = await event(file);
      expect(result.outcome).to.equal('skipped');
      expect(result.reason).to.match(/no data rows/);
      expect(await fixture.services.store.stat('landing', '_quarantine/in/empty-day.csv')).to.equal(
        undefined,
      );
    });
  });
}
