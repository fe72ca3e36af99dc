import { expect } from 'chai';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { post } from '../helpers/server';
import type { Delivered } from '../helpers/steady';
import { isInsert } from '../servers/bigquery-server';
import type { ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';
const CONFIG = `
routes:
  - match: "logs/*.csv"
    table: events
    batch: {jobsPerDay: 1000, burst: 10}
`;
const csvOf = (i: number) => `id,n\n${i},1\n`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The receiver's WARNING lines that match `pattern`. */
const warnings = (output: string, pattern: RegExp) =>
  output.split('\n').filter((line) => /"severity":"WARNING"/.test(line) && pattern.test(line));

describe("end to end: BigQuery's limits with INGEST_BACKEND=gcp", function () {
  this.timeout(180_000);
  let cloud: CloudReceiver | undefined;
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
  });

  it('a forced reprocess under an exhausted load-job quota inserts once per object, warns once and answers 503 at its deadline', async () => {
    cloud = await startCloudReceiver(CONFIG, {
      bigquery: { loadJobsPerTable: { limit: 0, dayMs: 86_400_000 } },
      env: { INGEST_WAIT_SECONDS: '5', LOG_LEVEL: 'warn' },
    });
    const { gcs, bq, receiver } = cloud;
    const objects = Array.from({ length: 20 }, (_, i) =>
      gcs.put(BUCKET, `logs/r${i}.csv`, csvOf(i)),
    );
    const data = { objects: objects.map((o) => ({ bucket: BUCKET, name: o.name })), force: true };
    const message = {
      message: {
        data: Buffer.from(JSON.stringify(data)).toString('base64'),
        messageId: 'm-8',
        publishTime: new Date().toISOString(),
      },
      subscription: `projects/${PROJECT}/subscriptions/reprocess`,
    };
    const answer = await post(receiver.url, JSON.stringify(message), {
      'content-type': 'application/json',
    });
    expect(answer.status, answer.text).to.equal(503);
    const inserts = bq.count(isInsert);
    expect(inserts).to.be.within(1, 20);
    expect(warnings(receiver.output(), /now paced at/)).to.have.length(1);
    // Each object a refused job took stays claimed for it.
    for (const body of bq.inserts()) {
      const name = String((body.configuration?.load?.sourceUris as string[])[0]).slice(
        `gs://${BUCKET}/`.length,
      );
      const claim = JSON.parse(gcs.metadataOf(BUCKET, name)?.['ingest-claim'] ?? '{}') as {
        job?: string;
      };
      expect(claim.job, name).to.equal(body.jobReference?.jobId);
    }
  });

  it('rateLimitExceeded holds the table a few seconds and keeps the pace: 20 files at 2/s all load', async () => {
    cloud = await startCloudReceiver(CONFIG, {
      bigquery: { tableUpdateRate: { limit: 2, windowMs: 4000 } },
      env: { INGEST_WAIT_SECONDS: '60', LOG_LEVEL: 'warn' },
    });
    const { gcs, bq, receiver } = cloud;
    const eventFor = (resource: ObjectResource) =>
      binaryEvent(STORAGE_TYPE, resource, {
        'ce-id': `event-${resource.name}`,
        'ce-source': `//storage.googleapis.com/projects/_/buckets/${BUCKET}`,
        'ce-subject': `objects/${resource.name}`,
      });
    const answers: Promise<Delivered | string>[] = [];
    for (let i = 0; i < 20; i++) {
      const { body, headers } = eventFor(gcs.put(BUCKET, `logs/q${i}.csv`, csvOf(i)));
      answers.push(
        post(receiver.url, body, headers).then((a) =>
          a.status === 200
            ? ((a.json as { objects: Delivered[] }).objects[0] as Delivered)
            : a.text,
        ),
      );
      await sleep(500);
    }
    const outcomes = (await Promise.all(answers)).map((a) =>
      typeof a === 'string' ? a : a.outcome,
    );
    expect(
      outcomes.filter((o) => o === 'loaded'),
      outcomes.join('; '),
    ).to.have.length(20);
    expect(bq.rows(PROJECT, 'ingest', 'events')).to.equal(20);
    const output = receiver.output();
    expect(warnings(output, /rateLimitExceeded/).length).to.be.at.least(1);
    expect(warnings(output, /now paced at/)).to.deep.equal([]);
    expect(warnings(output, /held for \d+ s \(the pace stays at 1000 a day\)/)).to.have.length(
      warnings(output, /rateLimitExceeded/).length,
    );
  });
});
