import { expect } from 'chai';
import { DEFAULT_COLUMNS, loadConfig } from '../src/config';
import type { IngestRequest, ObjectRef } from '../src/objects/request';
import { ingest, type Services } from '../src/ingest';
import { listingPrefix } from '../src/ingest/partition';
import type { StoredObject } from '../src/stores/store';
import { partitionedTableId, type LoadJob, type LoadResult } from '../src/warehouses/warehouse';
import { MemoryStore, MemoryWarehouse, memoryServices } from './fakes/memory';

const YAML = `
buckets: [landing]
routes:
  - match: "sales/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: "{table}"
    write: partition
  - match: "**/*.csv"
`;

/**
 * A warehouse that keeps what a partition holds as BigQuery does: the sources of the last job to
 * finish writing it. A test can hold a job until it says so, to make rebuilds finish in any order.
 */
class PartitionWarehouse extends MemoryWarehouse {
  readonly partitions = new Map<string, string[]>();
  readonly held = new Map<string, Promise<void>>();
  readonly running = new Map<string, Promise<LoadResult>>();
  reject?: (job: LoadJob) => string | undefined;

  override load(job: LoadJob): Promise<LoadResult> {
    const work = this.run(job);
    this.running.set(job.jobId, work);
    return work;
  }

  /** As BigQuery's: waits for a job that may still be running from an earlier delivery. */
  async settle(job: LoadJob): Promise<void> {
    await this.running.get(job.jobId)?.catch(() => undefined);
  }

  private async run(job: LoadJob): Promise<LoadResult> {
    const reason = this.reject?.(job);
    if (reason !== undefined) {
      this.jobs.push(job);
      return { outcome: 'rejected', jobId: job.jobId, reason };
    }
    // A trial load writes nothing.
    if (job.trial) return { outcome: 'loaded', jobId: job.jobId, rows: 0 };
    const result = await super.load(job);
    for (const [match, gate] of this.held)
      if (job.sources.some((s) => s.name === match)) await gate;
    if (result.outcome === 'loaded') {
      this.partitions.set(
        partitionedTableId(job.destination),
        job.sources.map((s) => s.name),
      );
    }
    return result;
  }
}

function setup() {
  const config = loadConfig({}, (file) => {
    if (file === 'ingest.yaml') return YAML;
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  });
  const store = new MemoryStore();
  const warehouse = new PartitionWarehouse(store);
  const services: Services = memoryServices(config, store, warehouse);
  const run = (request: Partial<IngestRequest>) =>
    ingest({ objects: [], ignored: [], force: false, ...request }, services, Date.now() + 60_000);
  const event = (ref: ObjectRef) => run({ objects: [ref] });
  // Another instance on the same bucket and warehouse: its rebuilds are not coalesced with these.
  const elsewhere = (ref: ObjectRef) =>
    ingest({ objects: [ref], ignored: [], force: false }, { ...services }, Date.now() + 60_000);
  const day = (name: string) => `sales/orders/2024/03/01/${name}`;
  const held = () => warehouse.partitions.get('sales.orders$20240301');
  return { config, store, warehouse, run, event, elsewhere, day, held };
}

describe('partition rebuilds', () => {
  it('keeps every file of the day: p2 (2 rows) then p3 (1 row) leave 3 rows', async () => {
    const { store, event, day, held } = setup();
    const p2 = store.put('landing', day('p2.csv'), 'id,v\n1,a\n2,b\n');
    const first = await event(p2);
    expect(first.objects[0]).to.include({ outcome: 'loaded', rows: 2 });
    const p3 = store.put('landing', day('p3.csv'), 'id,v\n3,c\n');
    const second = await event(p3);
    expect(second.objects[0]).to.include({
      outcome: 'loaded',
      rows: 3,
      destination: 'sales.orders',
      reason: 'partition 20240301 holds 2 objects',
    });
    expect(held()).to.deep.equal([day('p2.csv'), day('p3.csv')]);
  });

  it('answers a redelivered event as a duplicate of its own rebuild', async () => {
    const { store, event, day, warehouse } = setup();
    const p2 = store.put('landing', day('p2.csv'), 'id,v\n1,a\n');
    const first = await event(p2);
    const again = await event(p2);
    expect(again.objects[0]).to.include({ outcome: 'duplicate', jobId: first.objects[0]?.jobId });
    expect(new Set(warehouse.jobs.map((j) => j.jobId)).size).to.equal(1);
  });

  it('leaves out other days, other tables, empty and non-CSV objects', async () => {
    const { store, event, day, held } = setup();
    store.put('landing', 'sales/orders/2024/03/02/other-day.csv', 'id\n1\n');
    store.put('landing', 'sales/refunds/2024/03/01/other-table.csv', 'id\n1\n');
    store.put('landing', day('empty.csv'), '');
    store.put('landing', day('notes.txt'), 'hello');
    const p1 = store.put('landing', day('p1.csv'), 'id\n1\n');
    await event(p1);
    expect(held()).to.deep.equal([day('p1.csv')]);
  });

  it('never ends with an older, smaller set when that rebuild finishes last', async () => {
    const { store, warehouse, event, elsewhere, day, held } = setup();
    const p2 = store.put('landing', day('p2.csv'), 'id\n1\n2\n');
    let release = () => undefined as void;
    warehouse.held.set(day('p2.csv'), new Promise<void>((r) => (release = r)));
    const slow = event(p2); // lists {p2}, its job is held
    await until(() => warehouse.jobs.length === 1); // its job runs, held
    warehouse.held.clear();
    const p3 = store.put('landing', day('p3.csv'), 'id\n3\n');
    const fast = await elsewhere(p3); // lists {p2, p3} and finishes first
    expect(fast.objects[0]).to.include({ outcome: 'loaded', rows: 3 });
    expect(held()).to.deep.equal([day('p2.csv'), day('p3.csv')]);
    release(); // the {p2} job now finishes last and writes the stale set...
    const late = await slow;
    // ...and its request, listing again, writes the whole day after it.
    expect(late.objects[0]).to.include({ outcome: 'loaded', rows: 3 });
    expect(held()).to.deep.equal([day('p2.csv'), day('p3.csv')]);
    expect(warehouse.jobs.map((j) => j.sources.length)).to.deep.equal([1, 2, 2]);
  });

  it('rebuilds again on redelivery when a stale job was the last write before a crash', async () => {
    const { store, warehouse, event, day, held, config } = setup();
    const p2 = store.put('landing', day('p2.csv'), 'id\n1\n');
    const p3 = store.put('landing', day('p3.csv'), 'id\n2\n');
    await event(p3); // {p2, p3}
    // The first delivery of p2's event listed {p2} before p3 existed, wrote it last, then died.
    const route = config.routes[0]!;
    const { jobIdFor } = await import('../src/objects/routing');
    const destination = { dataset: 'sales', table: 'orders', partition: '20240301' };
    const staleId = jobIdFor([p2], destination, 'partition', undefined, { rebuiltFor: [p2] });
    await warehouse.load({ ...staleJob(p2, route.csv), jobId: staleId, destination });
    expect(held()).to.deep.equal([day('p2.csv')]);
    const redelivered = await event(p2);
    expect(redelivered.objects[0]).to.include({ outcome: 'loaded', rows: 2 });
    expect(held()).to.deep.equal([day('p2.csv'), day('p3.csv')]);
  });

  it('awaits the job a dead delivery left running before rebuilding, so that job cannot finish last', async () => {
    const { store, warehouse, event, elsewhere, day, held } = setup();
    const p2 = store.put('landing', day('p2.csv'), 'id\n1\n');
    // The first delivery of p2's event marked p2 with its job, inserted it ({p2}) and died.
    let release = () => undefined as void;
    warehouse.held.set(day('p2.csv'), new Promise<void>((r) => (release = r)));
    const dying = event(p2);
    await until(() => warehouse.jobs.length === 1); // its job runs, held
    warehouse.held.clear();
    const p3 = store.put('landing', day('p3.csv'), 'id\n2\n');
    await elsewhere(p3); // {p2, p3}
    expect(store.metadataOf('landing', p2.name)).to.have.property('ingest-rebuild-job');
    let redelivered = false;
    const redelivery = elsewhere({ ...p2 }).then((r) => ((redelivered = true), r));
    await new Promise((r) => setTimeout(r, 20));
    expect(redelivered, 'the redelivery wrote before the orphaned job finished').to.equal(false);
    release(); // the orphaned {p2} job finishes, writing its older set...
    await dying.catch(() => undefined);
    const result = await redelivery;
    // ...and only then does the redelivery rebuild, so the day ends whole.
    expect(result.objects[0]).to.include({ outcome: 'loaded', rows: 2 });
    expect(held()).to.deep.equal([day('p2.csv'), day('p3.csv')]);
  });

  it('rebuilds a day once for the events that arrive while its rebuild runs (one instance)', async () => {
    const { store, warehouse, event, day, held } = setup();
    const first = store.put('landing', day('p00.csv'), 'id\n0\n');
    let release = () => undefined as void;
    warehouse.held.set(first.name, new Promise<void>((r) => (release = r)));
    const running = event(first);
    await until(() => warehouse.jobs.length === 1); // its job runs, held
    warehouse.held.clear();
    const later = Array.from({ length: 20 }, (_, i) =>
      event(store.put('landing', day(`p${String(i + 1).padStart(2, '0')}.csv`), `id\n${i + 1}\n`)),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(warehouse.jobs, 'a later event rebuilt while the first rebuild ran').to.have.length(1);
    release();
    const results = [await running, ...(await Promise.all(later))];
    expect(results.map((r) => r.objects[0]?.outcome)).to.deep.equal(Array(21).fill('loaded'));
    expect(results.at(-1)?.objects[0]).to.include({ rows: 21 });
    expect(warehouse.jobs.map((j) => j.sources.length)).to.deep.equal([1, 21]);
    expect(held()).to.have.length(21);
  });

  it('quarantines a file its rebuild names as bad and rebuilds without it', async () => {
    const { store, warehouse, event, day, held } = setup();
    const bad = store.put('landing', day('bad.csv'), 'id\nx\n');
    warehouse.reject = (job) =>
      job.sources.some((s) => s.name === bad.name)
        ? `Could not convert "x" to INT64 (line 2 of gs://landing/${bad.name})`
        : undefined;
    const first = await event(bad);
    expect(first.objects[0]).to.include({ outcome: 'rejected' });
    expect(store.metadataOf('landing', `_quarantine/${bad.name}`)).to.include({
      'ingest-generation': bad.generation,
    });
    const good = store.put('landing', day('good.csv'), 'id\n1\n');
    const second = await event(good);
    expect(second.objects[0]).to.include({ outcome: 'loaded', rows: 1 });
    expect(held()).to.deep.equal([day('good.csv')]);
    // A redelivery of the bad file's event is answered from its quarantined copy.
    const again = await event(bad);
    expect(again.objects[0]?.outcome).to.equal('rejected');
    expect(again.objects[0]?.reason).to.match(/^rejected earlier: Could not convert/);
  });

  it('rejects an event whose own file has a bad head without touching the partition', async () => {
    const { store, warehouse, event, day, held } = setup();
    await event(store.put('landing', day('a.csv'), 'id\n1\n'));
    const jobs = warehouse.jobs.length;
    const result = await event(store.put('landing', day('b.csv'), 'id,ID\n1,2\n'));
    expect(result.objects[0]).to.include({ outcome: 'rejected' });
    expect(warehouse.jobs).to.have.length(jobs);
    expect(held()).to.deep.equal([day('a.csv')]);
  });

  it('rejects a day of more files than one load job takes, before any job runs', async () => {
    const { store, warehouse, event, day } = setup();
    for (let i = 0; i < 10_000; i++) store.put('landing', day(`part-${i}.csv`), 'id\n1\n');
    const last = store.put('landing', day('last.csv'), 'id\n1\n');
    const result = await event(last);
    expect(result.objects[0]?.outcome).to.equal('rejected');
    expect(result.objects[0]?.reason).to.match(
      /10001 objects for one destination exceed BigQuery's 10000 URIs/,
    );
    expect(warehouse.jobs).to.have.length(0);
  });

  it('loads again when forced, even a quarantined file', async () => {
    const { store, warehouse, run, event, day, held } = setup();
    const p = store.put('landing', day('p.csv'), 'id\n1\n');
    warehouse.reject = () => 'Could not convert (gs://landing/' + p.name + ')';
    await event(p);
    warehouse.reject = undefined;
    const forced = await run({ objects: [p], force: true, forceId: 'm1' });
    expect(forced.objects[0]).to.include({ outcome: 'loaded', rows: 1 });
    expect(held()).to.deep.equal([day('p.csv')]);
  });
});

describe('listingPrefix', () => {
  const { config } = setup();
  const route = config.routes[0]!;
  it('fills the captured names up to the first wildcard, back to a folder', () => {
    expect(listingPrefix(route, 'sales/orders/2024/03/01/x.csv')).to.equal(
      'sales/orders/2024/03/01/',
    );
  });
  it('stops at a wildcard before the file name', () => {
    const wide = loadConfig(
      {},
      () => 'routes: [{match: "in/**/{yyyy}{mm}{dd}.csv", write: partition}]',
    );
    expect(listingPrefix(wide.routes[0]!, 'in/a/b/20240301.csv')).to.equal('in/');
  });
});

describe('prefix requests', () => {
  it('skips a prefix in a bucket that does not exist, saying so', async () => {
    const { run } = setup();
    const result = await run({ prefix: { bucket: 'landing', prefix: 'sales/' } });
    expect(result.objects[0]).to.include({ outcome: 'skipped', uri: 'gs://landing/sales/' });
    expect(result.objects[0]?.reason).to.match(/bucket landing does not exist/);
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r));
}

function staleJob(source: StoredObject, csv: LoadJob['csv']): LoadJob {
  return {
    jobId: '',
    sources: [source],
    destination: { dataset: 'sales', table: 'orders', partition: '20240301' },
    write: 'partition',
    schema: 'auto',
    csv,
    columns: DEFAULT_COLUMNS,
    createDisposition: 'CREATE_IF_NEEDED',
    location: 'US',
    labels: {},
    deadline: Date.now() + 60_000,
  };
}
