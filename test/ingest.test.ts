import { expect } from 'chai';
import { loadConfig, type Config } from '../src/config';
import { RequestError, TransientError } from '../src/core/errors';
import type { IngestRequest, ObjectRef } from '../src/objects/request';
import { ingest, type Services } from '../src/ingest';
import { overallOutcome } from '../src/objects/outcomes';
import type { StoredObject } from '../src/stores/store';
import { jobIdFor } from '../src/objects/routing';
import { MemoryPublisher, MemoryStore, MemoryWarehouse, memoryServices } from './fakes/memory';

const YAML = `
project: my-proj
buckets: [landing]
reprocess: {topic: projects/my-proj/topics/reprocess, inlineLimit: 3}
# One job per object: coalesced loads are tested in coalesce.test.ts.
defaults: {batch: false}
routes:
  - match: "typed/*.csv"
    dataset: typed
    schema: schema.json
  - match: "snap/{table}/*.csv"
    dataset: snap
    table: "{table}"
    write: truncate
  - match: "**/*.csv"
`;
const SCHEMA = JSON.stringify([
  { name: 'id', type: 'INT64' },
  { name: 'name', type: 'STRING' },
]);

function setup(yaml = YAML, env: Record<string, string> = {}, claimGraceMs?: number) {
  const config: Config = loadConfig(env, (file) => {
    if (file === 'ingest.yaml') return yaml;
    if (file.endsWith('schema.json')) return SCHEMA;
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  });
  const store = new MemoryStore();
  const warehouse = new MemoryWarehouse(store);
  const publisher = new MemoryPublisher();
  const services: Services = memoryServices(config, store, warehouse, {
    publisher,
    ...(claimGraceMs === undefined ? {} : { claimGraceMs }),
  });
  const run = (request: Partial<IngestRequest>) =>
    ingest({ objects: [], ignored: [], force: false, ...request }, services, Date.now() + 60_000);
  const event = (ref: ObjectRef) => run({ objects: [ref] });
  return { config, store, warehouse, publisher, run, event };
}

const CSV = 'id,name\n1,a\n2,b\n';

/** The job id of `a.csv` loaded alone into the catch-all route's table. */
function oneObjectJobId(object: StoredObject): string {
  return jobIdFor([object], { project: 'my-proj', dataset: 'ingest', table: 'a' }, 'append');
}

describe('ingest', () => {
  it('loads a new object generation and reports rows, destination and job id', async () => {
    const { store, event } = setup();
    const object = store.put('landing', 'in/us-states.csv', CSV);
    const result = await event(object);
    const jobId = jobIdFor(
      [object],
      { project: 'my-proj', dataset: 'ingest', table: 'us_states' },
      'append',
    );
    expect(result).to.deep.equal({
      outcome: 'loaded',
      objects: [
        {
          uri: 'gs://landing/in/us-states.csv',
          generation: object.generation,
          outcome: 'loaded',
          destination: 'my-proj.ingest.us_states',
          jobId,
          rows: 2,
        },
      ],
    });
  });

  it('reads at most 64 KiB of an object; a duplicate the warehouse knows of, not at all', async () => {
    const { store, event, warehouse } = setup();
    const object = store.put('landing', 'big.csv', `id,name\n${'1,a\n'.repeat(100_000)}`);
    await event(object);
    const again = await event(object);
    expect(again.objects[0]).to.include({ outcome: 'duplicate', rows: 100_000 });
    expect(warehouse.jobs).to.have.length(1);
    expect(store.headReads.map((r) => r.bytes)).to.deep.equal([64 * 1024]);
  });

  it('answers a duplicate the warehouse does not know of by following the claim to its job', async () => {
    const { store, event, warehouse } = setup();
    const object = store.put('landing', 'a.csv', CSV);
    const first = await event(object);
    warehouse.completedRows = () => undefined;
    const again = await event(object);
    expect(again.objects[0]).to.include({ outcome: 'duplicate', jobId: first.objects[0]?.jobId });
    expect(warehouse.jobs).to.have.length(1);
  });

  it('loads once more under the same job id when the claimed job was never inserted', async () => {
    const { store, event, warehouse } = setup(YAML, {}, 200);
    const object = store.put('landing', 'a.csv', CSV);
    const jobId = oneObjectJobId(object);
    warehouse.outcomes.set(jobId, new TransientError('insert answer lost'));
    await event(object).catch(() => undefined);
    warehouse.outcomes.delete(jobId);
    // The redelivery waits out the claim's grace (the insert might still land), then loads.
    const again = await event(object);
    expect(again.objects[0]).to.include({ outcome: 'loaded', jobId });
    expect(warehouse.jobs.map((j) => j.jobId)).to.deep.equal([jobId, jobId]);
  });

  const skips: { name: string; arrange: (s: MemoryStore) => ObjectRef; reason: RegExp }[] = [
    {
      name: 'a bucket outside the allowlist',
      arrange: (s) => s.put('elsewhere', 'a.csv', CSV),
      reason: /not in the allowlist/,
    },
    {
      name: 'a file that is not a CSV',
      arrange: (s) => s.put('landing', 'a.json', '{}'),
      reason: /not a CSV/,
    },
    {
      name: 'a folder placeholder',
      arrange: () => ({ bucket: 'landing', name: 'dir/', generation: '1' }),
      reason: /folder placeholder/,
    },
    {
      name: 'the quarantine prefix',
      arrange: (s) => s.put('landing', '_quarantine/a.csv', CSV),
      reason: /quarantine prefix/,
    },
    {
      name: 'an empty object (from the event)',
      arrange: (s) => ({ ...s.put('landing', 'e.csv', ''), size: 0 }),
      reason: /^empty object$/,
    },
    {
      name: 'an empty object (from the store)',
      arrange: (s) => ({ ...s.put('landing', 'e.csv', ''), size: undefined }),
      reason: /^empty object$/,
    },
    {
      name: 'an object deleted before it could be read',
      arrange: (s) => {
        const o = s.put('landing', 'gone.csv', CSV);
        s.remove('landing', 'gone.csv');
        return o;
      },
      reason: /no longer exists/,
    },
    {
      name: 'a generation replaced by a newer one',
      arrange: (s) => {
        const old = s.put('landing', 'a.csv', CSV);
        s.put('landing', 'a.csv', CSV + '3,c\n');
        return old;
      },
      reason: /was replaced by \d+, whose own event loads it/,
    },
  ];
  for (const c of skips) {
    it(`skips ${c.name}`, async () => {
      const { store, event, warehouse } = setup();
      const result = await event(c.arrange(store));
      expect(result.outcome).to.equal('skipped');
      expect(result.objects[0]?.reason).to.match(c.reason);
      expect(warehouse.jobs).to.have.length(0);
    });
  }

  it('skips a generation that never existed', async () => {
    const { store, event } = setup();
    const object = store.put('landing', 'a.csv', CSV);
    const result = await event({ ...object, generation: '99999999999' });
    expect(result.objects[0]?.reason).to.equal(
      `generation 99999999999 does not exist (the current one is ${object.generation})`,
    );
  });

  describe('columns that drift', () => {
    const fruit = 'my-proj.ingest.fruit';
    const required = [
      { name: 'id', type: 'INT64', mode: 'REQUIRED' as const },
      { name: 'name', type: 'STRING', mode: 'REQUIRED' as const },
    ];

    it('rejects a file the table cannot take before any job, naming the column', async () => {
      const { store, event, warehouse } = setup();
      warehouse.columns.set(fruit, required);
      const result = await event(store.put('landing', 'in/fruit.csv', 'id\n1\n'));
      expect(result.objects[0]).to.include({ outcome: 'rejected' });
      expect(result.objects[0]?.reason).to.equal(
        'column "name" of table my-proj.ingest.fruit is REQUIRED and missing from the file (relaxColumns: true would make it NULLABLE)',
      );
      expect(warehouse.jobs).to.have.length(0);
      expect(store.metadataOf('landing', '_quarantine/in/fruit.csv')).to.not.equal(undefined);
    });

    it('never rejects on a stale cache: a rejection is confirmed against fresh columns', async () => {
      const { store, event, warehouse } = setup();
      warehouse.cached.set(fruit, required);
      warehouse.columns.set(fruit, [required[0]!, { ...required[1]!, mode: 'NULLABLE' }]);
      const result = await event(store.put('landing', 'in/fruit.csv', 'id\n1\n'));
      expect(result.objects[0]).to.include({ outcome: 'loaded' });
      expect(warehouse.columnReads.map((r) => r.fresh)).to.deep.equal([false, true]);
    });

    it("hands the job the header and first rows it read, and reads a table's columns from the cache", async () => {
      const { store, event, warehouse } = setup();
      warehouse.columns.set(fruit, required);
      await event(store.put('landing', 'in/fruit.csv', 'name,id\nkiwi,1\n'));
      expect(warehouse.jobs[0]?.head).to.deep.equal({
        header: ['name', 'id'],
        rows: [['kiwi', '1']],
      });
      expect(warehouse.columnReads).to.deep.equal([{ table: fruit, fresh: false }]);
    });

    it("tells a job's schema changes on its first object only", async () => {
      const { store, run, warehouse } = setup();
      const a = store.put('landing', 'snap/t/a.csv', 'id,name\n1,a\n');
      const b = store.put('landing', 'snap/t/b.csv', 'id,name\n2,b\n');
      const jobId = jobIdFor(
        [a, b],
        { project: 'my-proj', dataset: 'snap', table: 't' },
        'truncate',
      );
      const schemaChanges = ['dropped column extra'];
      warehouse.outcomes.set(jobId, { outcome: 'loaded', jobId, rows: 2, schemaChanges });
      const result = await run({ objects: [a, b] });
      expect(result.objects.map((o) => o.schemaChanges)).to.deep.equal([schemaChanges, undefined]);
    });

    it('rejects a truncate batch whose files have different headers, naming both', async () => {
      const { store, run, warehouse } = setup();
      const a = store.put('landing', 'snap/t/a.csv', 'id,name\n1,a\n');
      const b = store.put('landing', 'snap/t/b.csv', 'id,extra\n2,b\n');
      const result = await run({ objects: [a, b] });
      expect(result.objects.map((o) => o.outcome)).to.deep.equal(['rejected', 'rejected']);
      expect(result.objects.find((o) => o.uri.endsWith('b.csv'))?.reason).to.match(
        /its header \(id,extra\) differs from that of gs:\/\/landing\/snap\/t\/a\.csv/,
      );
      expect(warehouse.jobs).to.have.length(0);
    });
  });

  it('rejects a header that does not match the schema, quarantines it with the reason and records it', async () => {
    const { store, event, warehouse } = setup();
    const object = store.put('landing', 'typed/a.csv', 'id,nom\n1,a\n');
    const result = await event(object);
    expect(result.outcome).to.equal('rejected');
    const [only] = result.objects;
    expect(only?.reason).to.equal(
      'column "nom" is not in table my-proj.typed.a (newColumns: reject)',
    );
    expect(warehouse.jobs).to.have.length(0);
    expect(warehouse.rejections).to.deep.equal([{ jobId: only?.jobId, reason: only?.reason }]);
    expect(store.metadataOf('landing', '_quarantine/typed/a.csv')).to.deep.equal({
      'ingest-reason': only?.reason,
      'ingest-source': 'gs://landing/typed/a.csv',
      'ingest-generation': object.generation,
      'ingest-job-id': only?.jobId,
    });
  });

  it('records a rejection made before any job, and quarantines a generation once', async () => {
    const yaml = `
routes:
  - match: "sales/{yyyy}/{mm}/{dd}/*.csv"
    write: partition
    table: sales
  - match: "**/*.csv"
`;
    const { store, event, warehouse } = setup(yaml);
    const copies: string[] = [];
    const copyTo = store.copyTo.bind(store);
    store.copyTo = (object, target, metadata) => (
      copies.push(target),
      copyTo(object, target, metadata)
    );
    const object = store.put('landing', 'sales/2026/13/40/a.csv', CSV);
    const first = await event(object);
    expect(first.objects[0]).to.include({ outcome: 'rejected' });
    expect(first.objects[0]?.reason).to.match(/^partition "20261340" .* is not a date/);
    expect(warehouse.rejections).to.deep.equal([
      { uris: ['gs://landing/sales/2026/13/40/a.csv'], reason: first.objects[0]?.reason },
    ]);
    const again = await event(object);
    expect(again.objects[0]).to.deep.equal(first.objects[0]);
    expect(copies).to.deep.equal(['_quarantine/sales/2026/13/40/a.csv']);
    const next = store.put('landing', 'sales/2026/13/40/a.csv', `${CSV}3,c\n`);
    await event(next);
    expect(copies, 'a new generation is quarantined again').to.have.length(2);
  });

  it('rejects a header with two names equal but for case before any job, on every backend', async () => {
    const { store, event, warehouse } = setup();
    const result = await event(store.put('landing', 'in/dup.csv', 'id,Name,name\n1,a,b\n'));
    expect(result.objects[0]).to.include({ outcome: 'rejected' });
    expect(result.objects[0]?.reason).to.match(/^duplicate column name "name" in the header/);
    expect(warehouse.jobs).to.have.length(0);
    expect(store.metadataOf('landing', '_quarantine/in/dup.csv')).to.have.property('ingest-reason');
  });

  it('quarantines what the warehouse rejects, with its reason', async () => {
    const { store, event, warehouse } = setup();
    const object = store.put('landing', 'a.csv', CSV);
    const jobId = oneObjectJobId(object);
    warehouse.outcomes.set(jobId, {
      outcome: 'rejected',
      jobId,
      reason: 'Error while reading data, error message: row 2, column 1',
    });
    const result = await event(object);
    expect(result.objects[0]).to.include({
      outcome: 'rejected',
      reason: 'Error while reading data, error message: row 2, column 1',
      jobId,
    });
    expect(store.metadataOf('landing', '_quarantine/a.csv')).to.include({ 'ingest-job-id': jobId });
  });

  it('rejects an object whose path makes an invalid table name, and never loads it', async () => {
    const { store, event, warehouse } = setup();
    const result = await event(store.put('landing', 'snap/x;drop/a.csv', CSV));
    expect(result.objects[0]?.outcome).to.equal('rejected');
    expect(result.objects[0]?.reason).to.match(
      /table "x;drop" .* is not a valid BigQuery table name/,
    );
    expect(warehouse.jobs).to.have.length(0);
    expect(store.metadataOf('landing', '_quarantine/snap/x;drop/a.csv')).to.have.property(
      'ingest-reason',
    );
  });

  it('rejects objects over INGEST_MAX_OBJECT_BYTES', async () => {
    const { store, event } = setup(YAML, { INGEST_MAX_OBJECT_BYTES: '10' });
    const result = await event(store.put('landing', 'a.csv', CSV));
    expect(result.objects[0]?.reason).to.match(/over the limit of 10/);
  });

  it('passes a transient warehouse failure on as TransientError', async () => {
    const { store, event, warehouse } = setup();
    const object = store.put('landing', 'a.csv', CSV);
    const jobId = oneObjectJobId(object);
    warehouse.outcomes.set(jobId, new TransientError('backendError'));
    const error = await event(object).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TransientError);
    expect((error as Error).message).to.match(/1 failure\(s\) among 1 objects.*backendError/);
  });

  it('loads again when forced, under a job id that carries the force id', async () => {
    const { store, run } = setup();
    const object = store.put('landing', 'a.csv', CSV);
    await run({ objects: [object] });
    const forced = await run({ objects: [object], force: true, forceId: '42' });
    expect(forced.objects[0]?.outcome).to.equal('loaded');
    expect(forced.objects[0]?.jobId).to.match(/_r42$/);
    const redelivered = await run({ objects: [object], force: true, forceId: '42' });
    expect(redelivered.objects[0]?.outcome).to.equal('duplicate');
  });

  it('says that a forced load on an append route added the rows again, coalesced or not', async () => {
    for (const yaml of [YAML, YAML.replace('defaults: {batch: false}', '')]) {
      const { store, run } = setup(yaml);
      const object = store.put('landing', 'a.csv', CSV);
      const first = await run({ objects: [object] });
      expect(first.objects[0], yaml).to.not.have.property('appendedAgain');
      const forced = await run({ objects: [object], force: true, forceId: '42' });
      expect(forced.objects[0], yaml).to.include({ outcome: 'loaded', appendedAgain: true });
      const redelivered = await run({ objects: [object], force: true, forceId: '42' });
      expect(redelivered.objects[0], yaml).to.include({ outcome: 'duplicate' });
      expect(redelivered.objects[0], yaml).to.not.have.property('appendedAgain');
    }
    const { store, run } = setup();
    const snapshot = store.put('landing', 'snap/accounts/a.csv', CSV);
    await run({ objects: [snapshot] });
    const replaced = await run({ objects: [snapshot], force: true, forceId: '43' });
    expect(replaced.objects[0]).to.include({ outcome: 'loaded' });
    expect(replaced.objects[0]).to.not.have.property('appendedAgain');
  });

  it('loads objects of one truncating destination in one job', async () => {
    const { store, run, warehouse } = setup();
    const a = store.put('landing', 'snap/accounts/a.csv', CSV);
    const b = store.put('landing', 'snap/accounts/b.csv', CSV);
    const c = store.put('landing', 'snap/other/c.csv', CSV);
    const result = await run({ objects: [a, b, c] });
    expect(result.outcome).to.equal('loaded');
    expect(warehouse.jobs.map((j) => j.sources.map((s) => s.name)).sort()).to.deep.equal([
      ['snap/accounts/a.csv', 'snap/accounts/b.csv'],
      ['snap/other/c.csv'],
    ]);
    expect(result.objects[0]?.jobId).to.equal(result.objects[1]?.jobId);
  });

  it('rejects a whole truncating batch when one of its files is bad, quarantining only that file', async () => {
    const { store, run, warehouse } = setup();
    const good = store.put('landing', 'snap/accounts/a.csv', CSV);
    const bad = store.put('landing', 'snap/accounts/b.csv', 'id,name,ID\n1,x,2\n');
    const result = await run({ objects: [good, bad] });
    expect(result.objects.map((o) => o.outcome)).to.deep.equal(['rejected', 'rejected']);
    expect(result.objects.find((o) => o.uri.endsWith('a.csv'))?.reason).to.match(
      /b\.csv in the same truncate batch was rejected/,
    );
    expect(warehouse.jobs).to.have.length(0);
    expect(store.metadataOf('landing', '_quarantine/snap/accounts/b.csv')).to.not.equal(undefined);
    expect(store.metadataOf('landing', '_quarantine/snap/accounts/a.csv')).to.equal(undefined);
  });

  it('handles a prefix within inlineLimit in the request', async () => {
    const { store, run, publisher } = setup();
    for (const n of ['p/1.csv', 'p/2.csv', 'p/3.csv', 'p/readme.txt']) store.put('landing', n, CSV);
    const result = await run({ prefix: { bucket: 'landing', prefix: 'p/' } });
    expect(result.objects.map((o) => o.outcome)).to.deep.equal(['loaded', 'loaded', 'loaded']);
    expect(publisher.published).to.have.length(0);
  });

  it('fans a larger prefix out: one message per appending object, one per truncating destination', async () => {
    const { store, run, publisher, warehouse } = setup();
    for (let i = 0; i < 4; i++) store.put('landing', `p/${i}.csv`, CSV);
    store.put('landing', 'p/x.txt', CSV);
    const snapA = store.put('landing', 'snap/accounts/a.csv', CSV);
    const snapB = store.put('landing', 'snap/accounts/b.csv', CSV);
    const result = await run({
      prefix: { bucket: 'landing', prefix: '' },
      force: true,
      forceId: '9',
    });
    expect(result.outcome).to.equal('queued');
    expect(result.objects).to.have.length(6);
    expect(warehouse.jobs).to.have.length(0);
    const messages = publisher.published.map((p) => p.message);
    expect(
      publisher.published.every((p) => p.topic === 'projects/my-proj/topics/reprocess'),
    ).to.equal(true);
    expect(messages).to.have.length(5);
    expect(messages.every((m) => m.attributes?.ingestForceId === '9')).to.equal(true);
    expect(messages[4]?.json).to.deep.equal({
      objects: [snapA, snapB].map(({ bucket, name, generation }) => ({ bucket, name, generation })),
      force: true,
    });
  });

  it('never lists a bucket outside the allowlist for a prefix request', async () => {
    const { store, run } = setup();
    store.put('elsewhere', 'p/1.csv', CSV);
    const listed: string[] = [];
    const list = store.list.bind(store);
    store.list = (bucket, prefix) => (listed.push(bucket), list(bucket, prefix));
    const result = await run({ prefix: { bucket: 'elsewhere', prefix: 'p/' } });
    expect(result.objects).to.deep.equal([
      {
        uri: 'gs://elsewhere/p/',
        outcome: 'skipped',
        reason: 'bucket elsewhere is not in the allowlist',
      },
    ]);
    expect(listed).to.deep.equal([]);
  });

  it('refuses a large prefix when no topic is configured', async () => {
    const { store, run } = setup(YAML.replace(/reprocess:.*\n/, 'reprocess: {inlineLimit: 1}\n'));
    store.put('landing', 'p/1.csv', CSV);
    store.put('landing', 'p/2.csv', CSV);
    const error = await run({ prefix: { bucket: 'landing', prefix: 'p/' } }).catch(
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(RequestError);
    expect((error as Error).message).to.match(/reprocess\.topic is not configured/);
  });

  it('reports ignored notifications as skipped', async () => {
    const { run } = setup();
    const result = await run({
      ignored: [
        {
          ref: { bucket: 'landing', name: 'a.csv', generation: '1' },
          reason: 'notification OBJECT_DELETE is not a finalize',
        },
      ],
    });
    expect(result).to.deep.equal({
      outcome: 'skipped',
      objects: [
        {
          uri: 'gs://landing/a.csv',
          generation: '1',
          outcome: 'skipped',
          reason: 'notification OBJECT_DELETE is not a finalize',
        },
      ],
    });
  });
});

describe('overallOutcome', () => {
  const cases: [string[], string][] = [
    [[], 'skipped'],
    [['loaded'], 'loaded'],
    [['rejected'], 'rejected'],
    [['loaded', 'loaded'], 'loaded'],
    [['loaded', 'duplicate'], 'partial'],
    [['queued', 'queued'], 'queued'],
  ];
  for (const [outcomes, expected] of cases) {
    it(`[${outcomes.join(', ')}] -> ${expected}`, () => {
      const results = outcomes.map((outcome) => ({ uri: 'gs://b/a', outcome })) as Parameters<
        typeof overallOutcome
      >[0];
      expect(overallOutcome(results)).to.equal(expected);
    });
  }
});
