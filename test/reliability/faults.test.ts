import { expect } from 'chai';
import { jobIdFor } from '../../src/objects/routing';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { post, type RunningServer } from '../helpers/server';
import { isInsert, type BigQueryServer } from '../servers/bigquery-server';
import type { GcsServer, ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const OBJECTS = 200;
const FAULT_RATE = 0.2;

describe('faults on the cloud path: 20% of Cloud Storage and BigQuery calls fail', function () {
  this.timeout(600_000);
  let cloud: CloudReceiver;
  let gcs: GcsServer;
  let bq: BigQueryServer;
  let receiver: RunningServer;
  // A fixed sequence, so that a failure can be replayed.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const sometimes = () => random() < FAULT_RATE / 4;

  before(async () => {
    // A short budget turns a slow BigQuery answer into a timeout the redelivery retries.
    cloud = await startCloudReceiver('', { env: { INGEST_WAIT_SECONDS: '3' }, jobDurationMs: 50 });
    ({ gcs, bq, receiver } = cloud);
  });
  after(async () => cloud?.stop());

  it(`loads each of ${OBJECTS} objects exactly once when every 503 is redelivered`, async () => {
    const objects: ObjectResource[] = [];
    for (let i = 0; i < OBJECTS; i++)
      objects.push(gcs.put('landing', `in/part-${i}.csv`, `id,value\n${i},a\n${i},b\n`));
    // A fifth of the load jobs end with a transient error of their own, to be retried under _2.
    for (const o of objects.filter(() => random() < FAULT_RATE)) {
      const destination = {
        project: PROJECT,
        dataset: 'ingest',
        table: `part_${o.name.slice(8, -4)}`,
      };
      const jobId = jobIdFor(
        [{ bucket: o.bucket, name: o.name, generation: String(o.generation) }],
        destination,
        'append',
      );
      bq.script(jobId, {
        errorResult: {
          reason: random() < 0.5 ? 'backendError' : 'rateLimitExceeded',
          message: 'injected',
        },
      });
    }
    // The other faults hit about 20% of HTTP calls, spread over four kinds.
    for (const server of [gcs, bq]) {
      server.fail({ times: Infinity, match: sometimes, status: 503 });
      server.fail({ times: Infinity, match: sometimes, status: 500 });
      server.fail({ times: Infinity, match: sometimes, status: 429 });
      server.fail({ times: Infinity, match: sometimes, reset: true });
    }
    bq.fail({ times: Infinity, match: () => random() < 0.02, delayMs: 5_000 });

    const deliveries = new Map<string, number>();
    const statuses = new Map<number, number>();
    let next = 0;
    const deliverUntilAcknowledged = async () => {
      while (next < objects.length) {
        const object = objects[next++] as ObjectResource;
        for (let attempt = 1; ; attempt++) {
          const event = binaryEvent(STORAGE_TYPE, object, { 'ce-id': `${object.name}-${attempt}` });
          const answer = await post(receiver.url, event.body, event.headers).catch(() => ({
            status: 0,
            json: {},
          }));
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          deliveries.set(object.name, attempt);
          if (answer.status === 200) {
            expect(answer.json, object.name)
              .to.have.property('outcome')
              .that.is.oneOf(['loaded', 'duplicate']);
            break;
          }
          expect([0, 503], JSON.stringify(answer.json)).to.include(answer.status);
          if (attempt > 50)
            throw new Error(`${object.name} was not acknowledged after 50 deliveries`);
        }
      }
    };
    const started = Date.now();
    await Promise.all(Array.from({ length: 50 }, deliverUntilAcknowledged));
    gcs.clearFaults();
    bq.clearFaults();
    const redelivered = [...deliveries.values()].filter((n) => n > 1).length;
    console.log(
      `      ${OBJECTS} objects in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${redelivered} needed redelivery`,
    );

    // Exactly one successful load job per object generation, and every row there once.
    const successes = new Map<string, number>();
    const jobs = new Map(bq.inserts().map((body) => [body.jobReference?.jobId ?? '', body]));
    for (const body of jobs.values()) {
      const job = bq.job(PROJECT, body.jobReference?.jobId ?? '') as
        { status?: { state?: string; errorResult?: unknown } } | undefined;
      if (job?.status?.state !== 'DONE' || job.status.errorResult) continue;
      const uris = (body.configuration?.load?.sourceUris as string[] | undefined) ?? [];
      for (const uri of uris) successes.set(uri, (successes.get(uri) ?? 0) + 1);
    }
    for (const object of objects) {
      const uri = `gs://landing/${object.name}`;
      expect(successes.get(uri) ?? 0, uri).to.equal(1);
      expect(bq.rows(PROJECT, 'ingest', `part_${object.name.slice(8, -4)}`), uri).to.equal(2);
    }
    expect(redelivered).to.be.greaterThan(10);
    expect(bq.count(isInsert)).to.be.at.least(OBJECTS);
  });
});
