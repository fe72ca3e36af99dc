import { expect } from 'chai';
import { loadConfig, type Config } from '../../src/config';
import { ingest, type Services } from '../../src/ingest';
import type { ObjectResult } from '../../src/objects/outcomes';
import type { IngestRequest } from '../../src/objects/request';
import type { StoredObject } from '../../src/stores/store';

/**
 * Lineage routes next to a plain one; `shared.items` is written by a plain route and by a lineage
 * route, as a table is when a route switches lineage on. A second's pacing lets the objects of one
 * request coalesce into one job.
 */
export const LINEAGE_YAML = `
buckets: [landing]
defaults:
  batch: { jobsPerDay: 86400, burst: 1 }
routes:
  - match: 'plain/*.csv'
    dataset: plain
    table: items
  - match: 'tracked/*.csv'
    dataset: tracked
    table: items
    lineage: true
  - match: 'one/*.csv'
    dataset: one
    table: items
    lineage: true
    batch: false
  - match: 'before/*.csv'
    dataset: shared
    table: items
  - match: 'after/*.csv'
    dataset: shared
    table: items
    lineage: true
`;

export function lineageConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ INGEST_CONFIG: '/lineage/ingest.yaml', ...env }, () => LINEAGE_YAML);
}

type Row = Record<string, string | null>;

export interface LineageFixture {
  services: Services;
  /** Writes (or overwrites, as a new generation) an object of bucket `landing`. */
  put(name: string, content: string): Promise<StoredObject>;
  /** The rows of `dataset.table`, each value as text (null for NULL); [] when there is no table. */
  rows(dataset: string, table: string): Promise<Row[]>;
  /** Runs `action` once, as the next load starts reading its sources. */
  duringNextLoad(action: () => Promise<unknown>): void;
  teardown(): Promise<void>;
}

const A1 = 'id,name\n1,ann\n2,bob\n';
const A2 = 'id,name\n10,cat\n11,dan\n12,eve\n';
const B1 = 'id,name\n3,fay\n';

/**
 * Per-file replace through the use case, on each backend: after any sequence of events an object's
 * rows are exactly those of its newest loaded generation, once, and each row names its object.
 */
export function testLineage(name: string, setup: () => Promise<LineageFixture>): void {
  describe(`Lineage routes: ${name}`, function () {
    this.timeout(60_000);
    let fixture: LineageFixture;
    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(async () => fixture.teardown());

    async function run(objects: StoredObject[], force?: string): Promise<ObjectResult[]> {
      const request: IngestRequest = { objects, ignored: [], force: force !== undefined };
      if (force !== undefined) request.forceId = force;
      return (await ingest(request, fixture.services, Date.now() + 50_000)).objects;
    }
    const event = async (object: StoredObject) => (await run([object]))[0] as ObjectResult;
    const table = (dataset = 'tracked') => fixture.rows(dataset, 'items');
    /** `id@uri#generation` per row, sorted: what each row is and which object wrote it. */
    const lineage = async (dataset = 'tracked') =>
      (await table(dataset)).map((r) => `${r.id}@${r._source_uri}#${r._source_generation}`).sort();
    const uri = (object: StoredObject) => `gs://landing/${object.name}`;
    const tagged = (object: StoredObject, ids: string[]) =>
      ids.map((id) => `${id}@${uri(object)}#${object.generation}`);

    it('writes the three columns on every row of a first load, replacing nothing', async () => {
      const a = await fixture.put('tracked/a.csv', A1);
      expect(await event(a)).to.include({ outcome: 'loaded', rows: 2, replacedRows: 0 });
      expect(await lineage()).to.deep.equal(tagged(a, ['1', '2']));
      const rows = await table();
      expect(rows.every((r) => r._loaded_at !== null && r._loaded_at !== '')).to.equal(true);
    });

    it("leaves an object's rows alone when another object loads", async () => {
      const a = await fixture.put('tracked/a.csv', A1);
      await event(a);
      const loadedAt = (await table()).map((r) => r._loaded_at);
      const b = await fixture.put('tracked/b.csv', B1);
      expect(await event(b)).to.include({ outcome: 'loaded', replacedRows: 0 });
      expect(await lineage()).to.deep.equal([...tagged(a, ['1', '2']), ...tagged(b, ['3'])].sort());
      const aRows = (await table()).filter((r) => r._source_uri === uri(a));
      expect(aRows.map((r) => r._loaded_at)).to.deep.equal(loadedAt);
    });

    it("replaces the rows of an object's earlier generation with its new one", async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      await event(a1);
      const b = await fixture.put('tracked/b.csv', B1);
      await event(b);
      const a2 = await fixture.put('tracked/a.csv', A2);
      expect(a2.generation).to.not.equal(a1.generation);
      expect(await event(a2)).to.include({ outcome: 'loaded', replacedRows: 2 });
      expect(await lineage()).to.deep.equal(
        [...tagged(a2, ['10', '11', '12']), ...tagged(b, ['3'])].sort(),
      );
    });

    it('replaces the same generation on a forced reprocess: its rows once, counted as replaced', async () => {
      const a = await fixture.put('tracked/a.csv', A1);
      await event(a);
      const [forced] = await run([a], 'reprocess-1');
      expect(forced).to.include({ outcome: 'loaded', replacedRows: 2 });
      expect(forced).to.not.have.property('appendedAgain');
      expect(await lineage()).to.deep.equal(tagged(a, ['1', '2']));
    });

    it('changes nothing on a late redelivery of the generation before', async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      await event(a1);
      const a2 = await fixture.put('tracked/a.csv', A2);
      await event(a2);
      const late = await event(a1);
      expect(['skipped', 'duplicate']).to.include(late.outcome);
      expect(await lineage()).to.deep.equal(tagged(a2, ['10', '11', '12']));
    });

    it('keeps the old rows when the new generation is rejected', async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      await event(a1);
      const bad = await fixture.put('tracked/a.csv', 'id,name\n20,gus\nnot-a-number,hal\n');
      const result = await event(bad);
      expect(result.outcome, JSON.stringify(result)).to.equal('rejected');
      expect(await lineage()).to.deep.equal(tagged(a1, ['1', '2']));
    });

    it("empties an object's rows when its new generation has only the header", async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      await event(a1);
      const b = await fixture.put('tracked/b.csv', B1);
      await event(b);
      const emptied = await fixture.put('tracked/a.csv', 'id,name\n');
      expect(await event(emptied)).to.include({ outcome: 'loaded', rows: 0, replacedRows: 2 });
      expect(await lineage()).to.deep.equal(tagged(b, ['3']));
    });

    it('gives every row of 20 objects coalesced into one job its own object, then replaces one', async () => {
      // The first object takes the one token: the next 20 wait for the following one, together.
      await event(await fixture.put('tracked/first.csv', 'id,name\n0,zed\n'));
      const objects = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fixture.put(`tracked/f${i}.csv`, `id,name\n${100 + i},n${i}\n${200 + i},m${i}\n`),
        ),
      );
      const results = await run(objects);
      expect(results.map((r) => r.outcome)).to.deep.equal(Array(20).fill('loaded'));
      expect(results.map((r) => r.jobObjects)).to.deep.equal(Array(20).fill(20));
      expect(new Set(results.map((r) => r.jobId)).size).to.equal(1);
      const seven = objects[7] as StoredObject;
      const expected = objects.flatMap((o, i) => tagged(o, [`${100 + i}`, `${200 + i}`]));
      expect((await lineage()).filter((r) => !r.startsWith('0@'))).to.deep.equal(expected.sort());
      const replaced = await fixture.put('tracked/f7.csv', 'id,name\n777,new\n');
      expect(replaced.generation).to.not.equal(seven.generation);
      expect(await event(replaced)).to.include({ outcome: 'loaded', replacedRows: 2 });
      const rows = await lineage();
      expect(rows.filter((r) => r.includes('/f7.csv#'))).to.deep.equal(tagged(replaced, ['777']));
      expect(rows).to.have.length(1 + 19 * 2 + 1);
    });

    it('replaces per file on a route that loads each object alone (batch: false)', async () => {
      const a1 = await fixture.put('one/a.csv', A1);
      expect(await event(a1)).to.include({ outcome: 'loaded', replacedRows: 0 });
      const a2 = await fixture.put('one/a.csv', A2);
      expect(await event(a2)).to.include({ outcome: 'loaded', replacedRows: 2 });
      expect(await lineage('one')).to.deep.equal(tagged(a2, ['10', '11', '12']));
    });

    it('ends with the newer generation once when two generations arrive at once', async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      const a2 = await fixture.put('tracked/a.csv', A2);
      await Promise.all([event(a1), event(a2)]);
      expect(await lineage()).to.deep.equal(tagged(a2, ['10', '11', '12']));
    });

    it('ends with the newest generation once when the object is overwritten while it loads', async () => {
      const a1 = await fixture.put('tracked/a.csv', A1);
      await event(a1);
      const a2 = await fixture.put('tracked/a.csv', A2);
      let a3: StoredObject | undefined;
      fixture.duringNextLoad(async () => {
        a3 = await fixture.put('tracked/a.csv', 'id,name\n30,ida\n');
      });
      const during = await event(a2);
      expect(['loaded', 'skipped'], JSON.stringify(during)).to.include(during.outcome);
      expect(a3, 'the overwrite ran').to.not.equal(undefined);
      expect(await event(a3 as StoredObject)).to.include({ outcome: 'loaded' });
      expect(await lineage()).to.deep.equal(tagged(a3 as StoredObject, ['30']));
    });

    it('adds no column on a route without lineage', async () => {
      await event(await fixture.put('plain/a.csv', A1));
      const rows = await table('plain');
      expect(rows).to.have.length(2);
      expect(Object.keys(rows[0] as Row).sort()).to.deep.equal(['id', 'name']);
    });

    it('adds the columns to a table loaded before lineage, its old rows NULL there', async () => {
      await event(await fixture.put('before/a.csv', A1));
      const b = await fixture.put('after/b.csv', B1);
      const result = await event(b);
      expect(result).to.include({ outcome: 'loaded', replacedRows: 0 });
      expect(result.schemaChanges?.join(', ')).to.match(/_source_uri/);
      const rows = await table('shared');
      const old = rows.filter((r) => r.id === '1' || r.id === '2');
      expect(old.map((r) => r._source_uri)).to.deep.equal([null, null]);
      expect(old.map((r) => r._source_generation)).to.deep.equal([null, null]);
      expect(rows.filter((r) => r.id === '3').map((r) => r._source_uri)).to.deep.equal([uri(b)]);
    });

    it('rejects a file whose header names a lineage column, saying so', async () => {
      const own = await fixture.put('tracked/own.csv', 'id,_source_uri\n1,x\n');
      const result = await event(own);
      expect(result.outcome).to.equal('rejected');
      expect(result.reason)
        .to.match(/_source_uri/)
        .and.to.match(/lineage/);
      expect(await table()).to.deep.equal([]);
    });
  });
}
