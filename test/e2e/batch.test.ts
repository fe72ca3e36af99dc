import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { finalizedEvent } from '../../src/cli/events';
import type { ObjectResult } from '../../src/objects/outcomes';
import { createLocalStore } from '../../src/stores/local';
import type { StoredObject } from '../../src/stores/store';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { queryDuckDb } from '../helpers/duckdb';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { post, startReceiver, type RunningServer } from '../helpers/server';
import { countLoads, steadyDeliveries, type Delivered } from '../helpers/steady';
import { isInsert } from '../servers/bigquery-server';
import type { ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';
/** A compressed day: the budget and BigQuery's quota both count per DAY_S seconds. */
const DAY_S = 10;
const JOBS_PER_DAY = 30;
const SCALE = 86_400 / DAY_S;
const config = (batch: string) => `
routes:
  - match: "logs/*.csv"
    table: events
    batch: ${batch}
`;
const STEADY_BATCH = `{jobsPerDay: ${JOBS_PER_DAY * SCALE}, burst: 2}`;
const rowsOf = (i: number) => 1 + (i % 3);
const csvOf = (i: number) =>
  `id,n\n${Array.from({ length: rowsOf(i) }, (_, r) => `${i},${r}`).join('\n')}\n`;

/** The objects' answers, checked: only loaded or duplicate, at most one loaded per object. */
function checkAnswers(answers: Delivered[], count: number): void {
  const byUri = new Map<string, string[]>();
  for (const a of answers) byUri.set(a.uri, [...(byUri.get(a.uri) ?? []), a.outcome]);
  expect(byUri.size).to.equal(count);
  for (const [uri, outcomes] of byUri) {
    expect(
      outcomes.every((o) => o === 'loaded' || o === 'duplicate'),
      `${uri}: ${outcomes.join()}`,
    ).to.equal(true);
    expect(outcomes.filter((o) => o === 'loaded').length, uri).to.be.at.most(1);
  }
}

describe('end to end: coalesced loads with INGEST_BACKEND=gcp', function () {
  this.timeout(180_000);
  let cloud: CloudReceiver | undefined;
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
  });

  const eventFor = (resource: ObjectResource, delivery = 0) =>
    binaryEvent(STORAGE_TYPE, resource, {
      'ce-id': `event-${resource.name}-${resource.generation}-${delivery}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
      'ce-subject': `objects/${resource.name}`,
    });

  /** Each object URI's count among the jobs that succeeded, and the jobs that failed for quota. */
  function jobsOf(c: CloudReceiver) {
    const done = c.bq.inserts().map((body) => {
      const id = body.jobReference?.jobId ?? '';
      const status = c.bq.job(PROJECT, id)?.status as { errorResult?: { reason?: string } };
      return { sources: (body.configuration?.load?.sourceUris as string[]) ?? [], status };
    });
    return {
      loads: countLoads(done.filter((j) => !j.status.errorResult)),
      quotaFailures: done.filter((j) => j.status.errorResult?.reason === 'quotaExceeded').length,
    };
  }

  it('loads 2,000 objects sent at a steady rate with duplicates exactly once, within the budget', async () => {
    cloud = await startCloudReceiver(config(STEADY_BATCH), {
      bigquery: { loadJobsPerTable: { limit: JOBS_PER_DAY * 1.5, dayMs: DAY_S * 1000 } },
    });
    const { gcs, bq, receiver } = cloud;
    const count = 2000;
    const run = await steadyDeliveries({
      count,
      perSecond: 100,
      duplicates: 0.1,
      concurrent: 0.02,
      url: receiver.url,
      create: (i) => gcs.put(BUCKET, `logs/f${i}.csv`, csvOf(i)),
      event: eventFor,
    });
    checkAnswers(run.answers, count);
    const { loads, quotaFailures } = jobsOf(cloud);
    expect(loads.size).to.equal(count);
    expect([...loads.values()].every((n) => n === 1)).to.equal(true);
    let rows = 0;
    for (let i = 0; i < count; i++) rows += rowsOf(i);
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(rows);
    expect(quotaFailures).to.equal(0);
    const budget = 2 + (JOBS_PER_DAY / DAY_S) * (run.elapsedMs / 1000);
    expect(bq.jobsFor(PROJECT, 'ingest', 'events')).to.be.at.most(Math.ceil(budget));
  });

  it('keeps a batch of 50 with two bad files: 48 loaded, 2 rejected with their reasons', async () => {
    cloud = await startCloudReceiver(config(`{jobsPerDay: ${10 * 86_400}, burst: 1}`), {
      jobDurationMs: 300,
    });
    const { gcs, receiver } = cloud;
    const objects = Array.from({ length: 50 }, (_, i) =>
      gcs.put(BUCKET, `logs/b${i}.csv`, i === 11 || i === 37 ? 'id,n\n1,2,3\n' : csvOf(i)),
    );
    const answers = await Promise.all(
      objects.map(async (o) => {
        const { body, headers } = eventFor(o);
        const answer = await post(receiver.url, body, headers);
        expect(answer.status, answer.text).to.equal(200);
        return (answer.json as { objects: Delivered[] & { reason?: string }[] }).objects[0];
      }),
    );
    const rejected = answers.filter((a) => a?.outcome === 'rejected');
    expect(answers.filter((a) => a?.outcome === 'loaded')).to.have.length(48);
    expect(rejected.map((a) => a?.uri).sort()).to.deep.equal([
      `gs://${BUCKET}/logs/b11.csv`,
      `gs://${BUCKET}/logs/b37.csv`,
    ]);
    for (const a of rejected) expect((a as { reason: string }).reason).to.contain(a?.uri);
    expect(gcs.metadataOf(BUCKET, '_quarantine/logs/b11.csv')).to.have.property('ingest-reason');
    const { loads } = jobsOf(cloud);
    expect(loads.size).to.equal(48);
    expect([...loads.values()].every((n) => n === 1)).to.equal(true);
  });

  it('slows down on quotaExceeded, logs the new pace, and still loads everything once', async () => {
    cloud = await startCloudReceiver(config(`{jobsPerDay: ${50 * SCALE}, burst: 5}`), {
      bigquery: { loadJobsPerTable: { limit: 4, dayMs: 2000 } },
      env: { LOG_LEVEL: 'warn' },
    });
    const { gcs, receiver } = cloud;
    const count = 60;
    const run = await steadyDeliveries({
      count,
      perSecond: 30,
      duplicates: 0,
      concurrent: 0,
      url: receiver.url,
      create: (i) => gcs.put(BUCKET, `logs/q${i}.csv`, csvOf(i)),
      event: eventFor,
    });
    checkAnswers(run.answers, count);
    const { loads, quotaFailures } = jobsOf(cloud);
    expect(quotaFailures).to.be.at.least(1);
    expect(loads.size).to.equal(count);
    expect([...loads.values()].every((n) => n === 1)).to.equal(true);
    expect(receiver.output()).to.match(
      /"severity":"WARNING".*now paced at \d+ a day: quotaExceeded/,
    );
  });

  it('after kill -9 between claim and insert, the redelivery waits out the claim and loads once', async () => {
    cloud = await startCloudReceiver(config('{burst: 1}'), {
      env: { INGEST_CLAIM_GRACE_SECONDS: '2' },
    });
    const { gcs, bq, receiver } = cloud;
    const object = gcs.put(BUCKET, 'logs/k.csv', csvOf(1));
    // The insert never reaches BigQuery: the process dies while it is on its way.
    bq.fail({ match: isInsert, delayMs: 60_000, reset: true });
    const { body, headers } = eventFor(object);
    void post(receiver.url, body, headers).catch(() => undefined);
    const until = Date.now() + 20_000;
    while (bq.count(isInsert) === 0 && Date.now() < until) await sleep(20);
    const claim = gcs.metadataOf(BUCKET, 'logs/k.csv')?.['ingest-claim'];
    expect(claim, 'claimed before the insert').to.be.a('string');
    await receiver.stop('SIGKILL');
    bq.clearFaults();

    const next = await cloud.startAnother();
    const answer = await post(next.url, body, headers);
    expect(answer.status, answer.text).to.equal(200);
    const result = (answer.json as { objects: Delivered[] }).objects[0] as Delivered;
    expect(result.outcome).to.equal('loaded');
    // Taken over no sooner than the grace (2 s) after the claim was made.
    expect(Date.now() - Date.parse(JSON.parse(claim as string).at)).to.be.at.least(1950);
    expect(result.jobId).to.not.equal(JSON.parse(claim as string).job);
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(rowsOf(1));
    const again = await post(next.url, body, headers);
    expect((again.json as { objects: Delivered[] }).objects[0]).to.include({
      outcome: 'duplicate',
      jobId: result.jobId,
    });
  });

  it('loads one generation once when two receivers on the same bucket get it at once', async () => {
    cloud = await startCloudReceiver(config('{burst: 2}'), { jobDurationMs: 200 });
    const { gcs, bq, receiver } = cloud;
    const other = await cloud.startAnother();
    const object = gcs.put(BUCKET, 'logs/two.csv', csvOf(4));
    const { body, headers } = eventFor(object);
    const answers = await Promise.all(
      [receiver, other, receiver, other].map((r) => post(r.url, body, headers)),
    );
    const outcomes = answers.map((a) => (a.json as { objects: Delivered[] }).objects[0]?.outcome);
    expect(
      outcomes.filter((o) => o === 'loaded'),
      JSON.stringify(outcomes),
    ).to.have.length(1);
    expect(outcomes.filter((o) => o === 'duplicate')).to.have.length(3);
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(rowsOf(4));
  });

  it('a redelivery while the job runs waits for the same job', async () => {
    cloud = await startCloudReceiver(config('{burst: 2}'), { jobDurationMs: 1500 });
    const { gcs, bq, receiver } = cloud;
    const object = gcs.put(BUCKET, 'logs/slow.csv', csvOf(5));
    const { body, headers } = eventFor(object);
    const first = post(receiver.url, body, headers);
    const until = Date.now() + 10_000;
    while (bq.count(isInsert) === 0 && Date.now() < until) await sleep(20);
    const again = await post(receiver.url, body, headers);
    const loaded = (await first).json as { objects: Delivered[] };
    expect((again.json as { objects: Delivered[] }).objects[0]).to.include({
      outcome: 'duplicate',
      jobId: loaded.objects[0]?.jobId,
    });
    expect(bq.count(isInsert)).to.equal(1);
  });

  it('when the answer to an insert is lost, the redelivery finds the job and loads nothing more', async () => {
    cloud = await startCloudReceiver(config('{burst: 2}'));
    const { gcs, bq, receiver } = cloud;
    const object = gcs.put(BUCKET, 'logs/lost.csv', csvOf(6));
    // The job is created, but neither the answer nor the client's own retries get back.
    bq.fail({ match: isInsert, loseAnswer: true, times: 10 });
    const { body, headers } = eventFor(object);
    const first = await post(receiver.url, body, headers);
    expect(first.status, first.text).to.equal(503);
    bq.clearFaults();
    const again = await post(receiver.url, body, headers);
    expect(again.status, again.text).to.equal(200);
    const result = (again.json as { objects: Delivered[] }).objects[0] as Delivered;
    expect(result.outcome).to.equal('duplicate');
    expect(result.jobId).to.equal(
      JSON.parse(gcs.metadataOf(BUCKET, 'logs/lost.csv')?.['ingest-claim'] ?? '{}').job,
    );
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(rowsOf(6));
  });

  it('a forced reprocess of a loaded member loads it again once; its redelivery does not', async () => {
    cloud = await startCloudReceiver(config('{burst: 2}'));
    const { gcs, bq, receiver } = cloud;
    const object = gcs.put(BUCKET, 'logs/r.csv', csvOf(2));
    const { body, headers } = eventFor(object);
    expect((await post(receiver.url, body, headers)).status).to.equal(200);
    const message = {
      message: {
        data: Buffer.from(
          JSON.stringify({ bucket: BUCKET, name: 'logs/r.csv', force: true }),
        ).toString('base64'),
        messageId: 'm-7',
        publishTime: new Date().toISOString(),
      },
      subscription: 'projects/test-project/subscriptions/s',
    };
    const forced = async () => {
      const answer = await post(receiver.url, JSON.stringify(message), {
        'content-type': 'application/json',
      });
      expect(answer.status, answer.text).to.equal(200);
      return (answer.json as { objects: Delivered[] }).objects[0] as Delivered;
    };
    expect((await forced()).outcome).to.equal('loaded');
    expect((await forced()).outcome).to.equal('duplicate');
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(2 * rowsOf(2));
  });
});

describe('end to end: coalesced loads on the local backend', function () {
  this.timeout(180_000);
  let dir: string;
  let server: RunningServer | undefined;
  const data = () => path.join(dir, 'data');
  const warehouse = () => path.join(data(), 'warehouse.duckdb');

  async function start(batch: string, env: Record<string, string> = {}) {
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), config(batch));
    server = await startReceiver(
      { LOCAL_DATA_DIR: data(), INGEST_CONFIG: path.join(dir, 'ingest.yaml'), ...env },
      dir,
    );
    return server;
  }
  async function put(name: string, content: string): Promise<StoredObject> {
    const file = path.join(data(), 'buckets', BUCKET, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    const object = await createLocalStore(data()).stat(BUCKET, name);
    if (!object) throw new Error(`${file} was not written`);
    return object;
  }
  const eventFor = (object: StoredObject, delivery = 0) => {
    const event = finalizedEvent(object);
    return binaryEvent(STORAGE_TYPE, event.data, {
      'ce-id': `${event.id}-${delivery}`,
      'ce-source': event.source,
    });
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-batch-'));
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads 2,000 objects sent at a steady rate with duplicates exactly once, within the budget', async () => {
    const receiver = await start(STEADY_BATCH);
    const count = 2000;
    const run = await steadyDeliveries({
      count,
      perSecond: 200,
      duplicates: 0.1,
      concurrent: 0.02,
      url: receiver.url,
      create: (i) => put(`logs/f${i}.csv`, csvOf(i)),
      event: eventFor,
    });
    checkAnswers(run.answers, count);
    await server?.stop();
    const jobs = await queryDuckDb(
      warehouse(),
      `SELECT uris, generations FROM _ingest.loads WHERE destination LIKE '%ingest.events'`,
    );
    const loads = countLoads(
      jobs.map((j) => ({
        sources: (j.uris as string[]).map((u, i) => `${u}#${(j.generations as string[])[i]}`),
      })),
    );
    expect(loads.size).to.equal(count);
    expect([...loads.values()].every((n) => n === 1)).to.equal(true);
    let rows = 0;
    for (let i = 0; i < count; i++) rows += rowsOf(i);
    const [table] = await queryDuckDb(warehouse(), 'SELECT count(*) AS n FROM ingest.events');
    expect(Number(table?.n)).to.equal(rows);
    const budget = 2 + (JOBS_PER_DAY / DAY_S) * (run.elapsedMs / 1000);
    expect(jobs.length).to.be.at.most(Math.ceil(budget));
  });

  it('loads one generation once when two receivers on the same folder get it at once', async () => {
    const object = await put('logs/two.csv', csvOf(4));
    const receiver = await start('{burst: 2}');
    const other = await startReceiver(
      { LOCAL_DATA_DIR: data(), INGEST_CONFIG: path.join(dir, 'ingest.yaml') },
      dir,
    );
    try {
      const { body, headers } = eventFor(object);
      const answers = await Promise.all(
        [receiver, other, receiver, other].map((r) => post(r.url, body, headers)),
      );
      for (const a of answers) expect(a.status, a.text).to.be.oneOf([200, 503]);
      // A 503 (the other process held the file) is redelivered, as Eventarc would.
      const outcomes: string[] = [];
      for (const a of answers) {
        const answer = a.status === 200 ? a : await post(receiver.url, body, headers);
        outcomes.push((answer.json as { objects: Delivered[] }).objects[0]?.outcome ?? '');
      }
      expect(
        outcomes.filter((o) => o === 'loaded'),
        JSON.stringify(outcomes),
      ).to.have.length(1);
    } finally {
      await other.stop();
    }
    await server?.stop();
    const [table] = await queryDuckDb(warehouse(), 'SELECT count(*) AS n FROM ingest.events');
    expect(Number(table?.n)).to.equal(rowsOf(4));
  });

  it('a claim left by a process killed before its load commits is taken over after the grace', async () => {
    const object = await put('logs/k.csv', csvOf(1));
    // The state kill -9 leaves between claim and commit: a claim whose job never committed.
    const receiver = await start('{burst: 1}', { INGEST_CLAIM_GRACE_SECONDS: '1' });
    const { body, headers } = eventFor(object);
    await post(receiver.url, body, headers); // creates the ledger
    await server?.stop();
    const db = await DuckDBInstance.create(warehouse());
    const c = await db.connect();
    const claimed = Date.now();
    await c.run(
      `UPDATE _ingest.claims SET job_id = 'ingest_dead', claimed_at = now()
       WHERE uri = 'gs://${BUCKET}/logs/k.csv'`,
    );
    await c.run(`DELETE FROM _ingest.loads`);
    await c.run(`DELETE FROM ingest.events`);
    c.closeSync();
    db.closeSync();

    const next = await start('{burst: 1}', { INGEST_CLAIM_GRACE_SECONDS: '1' });
    const answer = await post(next.url, body, headers);
    expect(answer.status, answer.text).to.equal(200);
    expect((answer.json as { objects: Delivered[] }).objects[0]?.outcome).to.equal('loaded');
    // Taken over no sooner than the grace after the claim was made.
    expect(Date.now() - claimed).to.be.at.least(950);
    await server?.stop();
    const [table] = await queryDuckDb(warehouse(), 'SELECT count(*) AS n FROM ingest.events');
    expect(Number(table?.n)).to.equal(rowsOf(1));
  });

  it('keeps a batch of 50 with two bad files: 48 loaded, 2 rejected with their reasons', async () => {
    const objects: StoredObject[] = [];
    for (let i = 0; i < 50; i++)
      objects.push(await put(`logs/b${i}.csv`, i === 11 || i === 37 ? 'id,n\n1,2,3\n' : csvOf(i)));
    const receiver = await start('{burst: 1}');
    const answers = await Promise.all(
      objects.map(async (o) => {
        const { body, headers } = eventFor(o);
        const answer = await post(receiver.url, body, headers);
        expect(answer.status, answer.text).to.equal(200);
        return (answer.json as { objects: (Delivered & { reason?: string })[] }).objects[0];
      }),
    );
    const rejected = answers.filter((a) => a?.outcome === 'rejected');
    expect(answers.filter((a) => a?.outcome === 'loaded')).to.have.length(48);
    expect(rejected.map((a) => a?.uri).sort()).to.deep.equal([
      `gs://${BUCKET}/logs/b11.csv`,
      `gs://${BUCKET}/logs/b37.csv`,
    ]);
    for (const a of rejected) expect(a?.reason).to.contain(a?.uri);
    // Each loaded object's answer has its own rows, also where its job loaded several.
    const loaded = answers.filter((a) => a?.outcome === 'loaded') as ObjectResult[];
    expect(loaded.some((a) => (a.jobObjects ?? 1) > 1)).to.equal(true);
    for (const a of loaded) {
      const i = Number(/b(\d+)\.csv$/.exec(a.uri)?.[1]);
      expect(a.objectRows ?? a.rows, JSON.stringify(a)).to.equal(rowsOf(i));
      if ((a.jobObjects ?? 1) > 1) expect(a.objectRows, JSON.stringify(a)).to.be.a('number');
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
