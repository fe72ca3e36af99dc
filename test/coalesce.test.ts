import { expect } from 'chai';
import * as sinon from 'sinon';
import { CLAIM_METADATA_KEY, formatClaim, parseClaim } from '../src/stores/claims';
import { loadConfig } from '../src/config';
import { TransientError } from '../src/core/errors';
import type { IngestRequest, ObjectRef } from '../src/objects/request';
import { ingest } from '../src/ingest';
import type { IngestResult, ObjectResult } from '../src/objects/outcomes';
import { jobIdFor } from '../src/objects/routing';
import type { ClaimedLoadResult, LoadJob } from '../src/warehouses/warehouse';
import { MemoryStore, MemoryWarehouse, memoryServices } from './fakes/memory';

const TABLE = 'my-proj.ingest.events';

function setup(batch = '{jobsPerDay: 864000, burst: 1}', claimGraceMs = 120_000) {
  const yaml = `project: my-proj\ndefaults:\n  batch: ${batch}\nroutes:\n  - match: "in/*.csv"\n    table: events\n`;
  const config = loadConfig({}, (file) => {
    if (file === 'ingest.yaml') return yaml;
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  });
  const store = new MemoryStore();
  const warehouse = new MemoryWarehouse(store);
  const warnings: string[] = [];
  const services = memoryServices(config, store, warehouse, {
    claimGraceMs,
    log: { warn: (_fields, message) => warnings.push(message) },
  });
  const run = (request: Partial<IngestRequest>, budgetMs = 60_000) =>
    ingest({ objects: [], ignored: [], force: false, ...request }, services, Date.now() + budgetMs);
  const event = async (ref: ObjectRef, budgetMs?: number) =>
    (await run({ objects: [ref] }, budgetMs)).objects[0] as ObjectResult;
  const put = (i: number, content = `id\n${i}\n`) => store.put('landing', `in/f${i}.csv`, content);
  const claimOf = (name: string) =>
    parseClaim(
      store.metadataOf('landing', name)?.[CLAIM_METADATA_KEY],
      TABLE,
      store.objects.get(`landing/${name}`)!.object,
    );
  return { store, warehouse, warnings, services, run, event, put, claimOf };
}

/** Each object generation in exactly one job that loaded. */
function loadsPerObject(warehouse: MemoryWarehouse): Map<string, number> {
  const count = new Map<string, number>();
  for (const [jobId, { result }] of warehouse.claimedJobs) {
    if (result.outcome !== 'loaded') continue;
    const job = warehouse.jobs.find((j) => j.jobId === jobId) as LoadJob;
    for (const s of job.sources) {
      const key = `${s.name}#${s.generation}`;
      count.set(key, (count.get(key) ?? 0) + 1);
    }
  }
  return count;
}

describe('coalesced loads', () => {
  it('loads an object at once when its destination has a token, and claims it for the job', async () => {
    const { put, event, warehouse, claimOf } = setup();
    const result = await event(put(1));
    expect(result).to.include({ outcome: 'loaded', rows: 1, jobObjects: 1, destination: TABLE });
    expect(warehouse.jobs).to.have.length(1);
    expect(claimOf('in/f1.csv')?.jobId).to.equal(result.jobId);
  });

  it('answers a redelivery with the claimed job, as a duplicate, without reading the object', async () => {
    const { put, event, warehouse, store } = setup();
    const object = put(1);
    const first = await event(object);
    const reads = store.headReads.length;
    const again = await event(object);
    expect(again).to.include({ outcome: 'duplicate', jobId: first.jobId, rows: 1 });
    expect(warehouse.jobs).to.have.length(1);
    expect(store.headReads).to.have.length(reads);
  });

  it('coalesces what waits while a job runs into one job, and answers each request', async () => {
    const { put, event, warehouse } = setup();
    const objects = Array.from({ length: 40 }, (_, i) => put(i));
    const results = await Promise.all(objects.map((o) => event(o)));
    expect(results.every((r) => r.outcome === 'loaded')).to.equal(true);
    expect(warehouse.jobs.length).to.be.at.most(3);
    const counts = loadsPerObject(warehouse);
    expect(counts.size).to.equal(40);
    expect([...counts.values()].every((n) => n === 1)).to.equal(true);
  });

  it('puts only files with the same header in one job, and tells a schema change once', async () => {
    const { put, run, warehouse } = setup();
    const plain = Array.from({ length: 6 }, (_, i) => put(i));
    const wider = Array.from({ length: 4 }, (_, i) => put(10 + i, `id,extra\n${i},x\n`));
    warehouse.script = (job) =>
      job.head?.header.includes('extra')
        ? {
            outcome: 'loaded',
            jobId: job.jobId,
            rows: job.sources.length,
            schemaChanges: ['added column extra STRING'],
          }
        : undefined;
    const results = (await run({ objects: [...plain, ...wider] })).objects;
    expect(results.every((r) => r.outcome === 'loaded')).to.equal(true);
    for (const job of warehouse.jobs) {
      const wide = new Set(wider.map((o) => o.name));
      const headers = new Set(job.sources.map((s) => (wide.has(s.name) ? 'wider' : 'plain')));
      expect(headers.size, job.sources.map((s) => s.name).join()).to.equal(1);
      expect(job.head?.header).to.deep.equal(headers.has('wider') ? ['id', 'extra'] : ['id']);
    }
    const told = results.filter((r) => r.schemaChanges);
    expect(told.map((r) => r.schemaChanges)).to.deep.equal([['added column extra STRING']]);
  });

  it('loads one generation once when two deliveries race', async () => {
    const { put, event, warehouse } = setup();
    const object = put(1);
    const results = await Promise.all([event(object), event(object), event(object)]);
    expect(results.map((r) => r.outcome).sort()).to.deep.equal([
      'duplicate',
      'duplicate',
      'loaded',
    ]);
    expect(loadsPerObject(warehouse).get(`in/f1.csv#${object.generation}`)).to.equal(1);
  });

  it('paces jobs with the token bucket: a burst of 1 and 10 jobs a second', async () => {
    const { put, event, warehouse } = setup('{jobsPerDay: 864000, burst: 1}');
    const started = Date.now();
    for (let i = 0; i < 4; i++) await event(put(i));
    // The first job takes the saved token; each later one waits for a new token (100 ms).
    expect(warehouse.jobs).to.have.length(4);
    expect(Date.now() - started).to.be.at.least(250);
  });

  it('keeps a batch of 50 with 2 bad files: 48 loaded, 2 rejected with their reasons', async () => {
    const { put, run, warehouse, store } = setup('{jobsPerDay: 864000, burst: 1}');
    const objects = Array.from({ length: 50 }, (_, i) => put(i));
    const bad = new Set(['in/f7.csv', 'in/f31.csv']);
    // The warehouse names no file, so the batch is halved until each bad file is alone.
    warehouse.script = (job) =>
      job.sources.some((s) => bad.has(s.name))
        ? { outcome: 'rejected', jobId: job.jobId, reason: 'invalid: Could not parse "x" as INT64' }
        : undefined;
    const results = (await run({ objects })).objects;
    const rejected = results.filter((r) => r.outcome === 'rejected');
    expect(results.filter((r) => r.outcome === 'loaded')).to.have.length(48);
    expect(rejected.map((r) => r.uri).sort()).to.deep.equal([
      'gs://landing/in/f31.csv',
      'gs://landing/in/f7.csv',
    ]);
    expect(rejected.every((r) => /Could not parse/.test(r.reason ?? ''))).to.equal(true);
    expect(store.metadataOf('landing', '_quarantine/in/f7.csv')).to.include({
      'ingest-source': 'gs://landing/in/f7.csv',
    });
    expect([...loadsPerObject(warehouse).values()].every((n) => n === 1)).to.equal(true);
    expect(loadsPerObject(warehouse).size).to.equal(48);
  });

  it('rejects the files a content error names and loads the rest in the next job', async () => {
    const { put, run, warehouse } = setup();
    const objects = Array.from({ length: 10 }, (_, i) => put(i));
    warehouse.script = (job) =>
      job.sources.some((s) => s.name === 'in/f3.csv')
        ? {
            outcome: 'rejected',
            jobId: job.jobId,
            reason:
              'invalid: Error while reading data, error message: bad row; (location: gs://landing/in/f3.csv)',
          }
        : undefined;
    const results = (await run({ objects })).objects;
    expect(results.filter((r) => r.outcome === 'rejected').map((r) => r.uri)).to.deep.equal([
      'gs://landing/in/f3.csv',
    ]);
    expect(loadsPerObject(warehouse).size).to.equal(9);
    expect(warehouse.jobs.length).to.be.at.most(4);
  });

  it('halves the pace on a quota error, logs it once, and loads the members in a later job', async () => {
    const { put, event, warehouse, warnings } = setup('{jobsPerDay: 8640000, burst: 1}');
    let refused = 0;
    warehouse.script = (job) =>
      refused++ === 0
        ? {
            outcome: 'failed',
            jobId: job.jobId,
            reason:
              'quotaExceeded: Quota exceeded: Your table exceeded quota for imports or query appends per table',
            quota: 'daily',
          }
        : undefined;
    const result = await event(put(1));
    expect(result.outcome).to.equal('loaded');
    expect(warehouse.jobs).to.have.length(2);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/ingest\.events now paced at 4320000 a day: quotaExceeded/);
  });

  it('claims members again after a transient job failure', async () => {
    const { put, event, warehouse, claimOf } = setup();
    let failed = 0;
    warehouse.script = (job) =>
      failed++ === 0
        ? { outcome: 'failed', jobId: job.jobId, reason: 'backendError', quota: false }
        : undefined;
    const result = await event(put(1));
    expect(result.outcome).to.equal('loaded');
    const [first, second] = warehouse.jobs.map((j) => j.jobId);
    expect(first).to.not.equal(second);
    expect(claimOf('in/f1.csv')?.jobId).to.equal(second);
  });

  it('a forced reprocess loads a loaded object again once; its redelivery does not', async () => {
    const { put, event, run, warehouse } = setup();
    const object = put(1);
    await event(object);
    const forced = () => run({ objects: [object], force: true, forceId: '42' });
    const once = (await forced()).objects[0] as ObjectResult;
    const twice = (await forced()).objects[0] as ObjectResult;
    expect(once.outcome).to.equal('loaded');
    expect(once.jobId).to.match(/_r42_[0-9a-f]{8}$/);
    expect(twice).to.include({ outcome: 'duplicate', jobId: once.jobId });
    expect(warehouse.jobs).to.have.length(2);
  });

  it('waits for a young claim whose job is not found, then claims it again after the grace', async () => {
    const { put, event, store, warehouse } = setup(undefined, 300);
    const object = put(1);
    // Another instance claimed it and died before its insert.
    const entry = store.objects.get('landing/in/f1.csv')!;
    entry.metadata[CLAIM_METADATA_KEY] = formatClaim(
      { jobId: 'ingest_dead', at: Date.now(), destination: TABLE },
      object,
    );
    entry.metageneration += 1;
    const started = Date.now();
    const result = await event(object);
    expect(result.outcome).to.equal('loaded');
    expect(Date.now() - started).to.be.at.least(250);
    expect(warehouse.jobs.map((j) => j.jobId)).to.not.include('ingest_dead');
  });

  it('follows a claim another instance holds to its job', async () => {
    const { put, event, store, warehouse } = setup();
    const object = put(1);
    warehouse.claimedJobs.set('ingest_other', {
      result: { outcome: 'loaded', jobId: 'ingest_other', rows: 7 },
      uris: ['gs://landing/in/f1.csv', 'gs://landing/in/f2.csv'],
    });
    const entry = store.objects.get('landing/in/f1.csv')!;
    entry.metadata[CLAIM_METADATA_KEY] = formatClaim(
      { jobId: 'ingest_other', at: Date.now(), destination: TABLE },
      object,
    );
    entry.metageneration += 1;
    expect(await event(object)).to.include({
      outcome: 'duplicate',
      jobId: 'ingest_other',
      rows: 7,
    });
    expect(warehouse.jobs).to.have.length(0);
  });

  it('claims an object a batch: false route loads, so that a batching route later answers duplicate', async () => {
    const alone = setup('false');
    const object = alone.put(1);
    const first = await alone.event(object);
    const jobId = jobIdFor(
      [object],
      { project: 'my-proj', dataset: 'ingest', table: 'events' },
      'append',
    );
    expect(first).to.include({ outcome: 'loaded', jobId });
    expect(alone.claimOf('in/f1.csv')?.jobId).to.equal(jobId);
    const batching = memoryServices(
      loadConfig({}, (file) => {
        if (file === 'ingest.yaml')
          return 'project: my-proj\nroutes:\n  - match: "in/*.csv"\n    table: events\n';
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      }),
      alone.store,
      alone.warehouse,
    );
    const again = await ingest(
      { objects: [object], ignored: [], force: false },
      batching,
      Date.now() + 60_000,
    );
    expect(again.objects[0]).to.include({ outcome: 'duplicate', jobId });
    expect(alone.warehouse.jobs).to.have.length(1);
  });

  it('a batch: false delivery racing another for the same object loads it once', async () => {
    const { put, event, warehouse } = setup('false');
    const object = put(1);
    const results = await Promise.allSettled([event(object), event(object), event(object)]);
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : '503'));
    expect(outcomes.filter((o) => o === 'loaded')).to.have.length(1);
    expect(outcomes.every((o) => ['loaded', 'duplicate', '503'].includes(o))).to.equal(true);
    expect(warehouse.jobs.filter((j) => warehouse.done.has(j.jobId))).to.have.length(1);
  });

  it('answers 503 when no token comes within the time budget, and claims nothing', async () => {
    const { put, event, claimOf } = setup('{jobsPerDay: 1, burst: 1}');
    await event(put(1));
    const error = await event(put(2), 300).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(TransientError);
    expect(claimOf('in/f2.csv')).to.equal(undefined);
  });

  it('warns when an object is replaced while its job loads it; the new generation is its own', async () => {
    const { put, event, warehouse, warnings } = setup();
    const object = put(1);
    warehouse.script = () => {
      put(1, 'id\n99\n');
      return undefined;
    };
    await event(object);
    expect(
      warnings.some((w) => w.includes('gs://landing/in/f1.csv was replaced while job')),
    ).to.equal(true);
  });

  it('reads no member again after a job that read exactly the bytes it claimed', async () => {
    const { put, run, store, warehouse } = setup();
    const objects = Array.from({ length: 5 }, (_, i) => put(i));
    await run({ objects });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(warehouse.jobs.length).to.be.greaterThan(0);
    // One stat each when the event arrives; none after the job.
    expect(store.stats).to.have.length(objects.length);
  });

  it('after the route stops batching, an object a coalesced job loaded is still a duplicate', async () => {
    const batching = setup();
    const object = batching.put(1);
    const first = await batching.event(object);
    const yaml = `project: my-proj\ndefaults:\n  batch: false\nroutes:\n  - match: "in/*.csv"\n    table: events\n`;
    const config = loadConfig({}, (file) => {
      if (file === 'ingest.yaml') return yaml;
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    });
    const services = memoryServices(config, batching.store, batching.warehouse);
    const again = await ingest(
      { objects: [object], ignored: [], force: false },
      services,
      Date.now() + 60_000,
    );
    expect(again.objects[0]).to.include({ outcome: 'duplicate', jobId: first.jobId });
    expect(batching.warehouse.jobs).to.have.length(1);
  });

  it('keeps one job per object with batch: false', async () => {
    const { put, run, warehouse } = setup('false');
    const objects = Array.from({ length: 5 }, (_, i) => put(i));
    await run({ objects });
    expect(warehouse.jobs.map((j) => j.sources.length)).to.deep.equal([1, 1, 1, 1, 1]);
    expect(warehouse.claimedJobs.size).to.equal(0);
  });
});

describe('pacing under BigQuery limits', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({
      now: Date.parse('2025-03-01T00:00:00Z'),
      toFake: ['Date', 'setTimeout', 'clearTimeout'],
    });
  });
  afterEach(() => clock.restore());
  const DAILY = 'Quota exceeded: Your table exceeded quota for imports or query appends per table';
  const SHORT_TERM = 'Exceeded rate limits: too many table update operations for this table';
  /** Jobs that BigQuery refuses for one of its limits. */
  const failing =
    (reason: string, message: string, limit: 'daily' | 'shortTerm') =>
    (job: LoadJob): ClaimedLoadResult => ({
      outcome: 'failed',
      jobId: job.jobId,
      reason: `${reason}: ${message}`,
      quota: limit,
    });
  /** The request's result, or the 503 its transient failure makes. */
  const answerOf = (request: Promise<IngestResult>) =>
    request.catch((error: Error) => ({ status: 503, error: error.message }));
  /** Moves the clock on by `ms`, letting the real I/O between timers (reading heads) run. */
  async function advance(ms: number): Promise<void> {
    for (let passed = 0; passed < ms; passed += 250) {
      await clock.tickAsync(250);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('holds a table a few seconds on rateLimitExceeded and keeps the daily pace: 40 files at 1/s load within 240 s', async () => {
    const { warehouse, warnings, run, put } = setup('{jobsPerDay: 1000, burst: 10}');
    // Every third job meets the short-term limit on table metadata updates.
    let jobs = 0;
    const limited = failing('rateLimitExceeded', SHORT_TERM, 'shortTerm');
    warehouse.script = (job) => (++jobs % 3 === 1 ? limited(job) : undefined);
    const answers: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      answers.push(answerOf(run({ objects: [put(i)] }, 240_000)));
      await advance(1000);
    }
    await advance(200_000);
    const results = await Promise.all(answers);
    const outcomes = results.map((r) => (r as IngestResult).objects?.[0]?.outcome ?? '503');
    expect(
      outcomes.filter((o) => o === 'loaded'),
      outcomes.join(),
    ).to.have.length(40);
    expect(warnings.filter((w) => /paced at/.test(w))).to.deep.equal([]);
    expect(warnings.length).to.be.at.least(1);
    for (const w of warnings)
      expect(w).to.match(
        /^load jobs into my-proj\.ingest\.events held for 5 s \(the pace stays at 1000 a day\): rateLimitExceeded/,
      );
  });

  it('a forced reprocess under an exhausted daily quota inserts once per object, warns once, keeps the claims and answers 503', async () => {
    const { warehouse, warnings, run, put, claimOf } = setup('{jobsPerDay: 1000, burst: 10}');
    warehouse.script = failing('quotaExceeded', DAILY, 'daily');
    const objects = Array.from({ length: 20 }, (_, i) => put(i));
    const answer = answerOf(run({ objects, force: true, forceId: 'm-8' }, 30_000));
    await advance(31_000);
    expect(await answer).to.include({ status: 503 });
    // At most one job per object: those that came after the first refusal waited for a token.
    const inserted = warehouse.jobs.length;
    expect(inserted).to.be.within(1, 20);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/now paced at 500 a day: quotaExceeded/);
    // Each object a refused job took stays claimed for that job; the others were never claimed.
    for (const job of warehouse.jobs) {
      const name = job.sources[0]?.name ?? '';
      expect(claimOf(name)?.jobId, name)
        .to.equal(job.jobId)
        .and.match(/_rm-8_[0-9a-f]{8}$/);
    }
    // Its redelivery waits in the queue too, under the claims it left.
    const again = answerOf(run({ objects, force: true, forceId: 'm-8' }, 30_000));
    await advance(31_000);
    expect(await again).to.include({ status: 503 });
    expect(warehouse.jobs).to.have.length(inserted);
    expect(warnings).to.have.length(1);
  });

  it('loads a forced reprocess held by a rate limit once the hold is over', async () => {
    const { warehouse, run, put } = setup('{jobsPerDay: 1000, burst: 10}');
    let jobs = 0;
    const limited = failing('rateLimitExceeded', SHORT_TERM, 'shortTerm');
    warehouse.script = (job) => (++jobs === 1 ? limited(job) : undefined);
    const answer = answerOf(run({ objects: [put(1)], force: true, forceId: 'm-9' }, 60_000));
    await advance(60_000);
    expect(((await answer) as IngestResult).objects?.[0]?.outcome).to.equal('loaded');
    expect(warehouse.jobs).to.have.length(2);
  });
});
