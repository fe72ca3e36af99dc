import { expect } from 'chai';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { post } from '../helpers/server';
import type { RecordedRequest } from '../servers/gcs-server';

const BUCKET = 'landing';
const BUDGET_S = 3;
const CONFIG = `
routes:
  - match: "logs/*.csv"
    table: events
`;

/** A call that never answers, on the Cloud Storage or the BigQuery test server. */
const HUNG: [string, 'gcs' | 'bq', (r: RecordedRequest) => boolean][] = [
  [
    'Cloud Storage objects.get',
    'gcs',
    (r) => r.method === 'GET' && r.path === `/b/${BUCKET}/o/logs/h.csv` && r.query.alt !== 'media',
  ],
  [
    'BigQuery tables.get',
    'bq',
    (r) => r.method === 'GET' && /\/datasets\/ingest\/tables\/events$/.test(r.path),
  ],
];

describe('end to end: a call that never answers, with INGEST_BACKEND=gcp', function () {
  this.timeout(120_000);
  let cloud: CloudReceiver | undefined;
  afterEach(async () => {
    await cloud?.stop();
    cloud = undefined;
  });

  for (const [what, server, match] of HUNG) {
    it(`${what}: the request answers 503 by its deadline, and a redelivery loads the object`, async () => {
      cloud = await startCloudReceiver(CONFIG, {
        env: { INGEST_WAIT_SECONDS: String(BUDGET_S), INGEST_CLAIM_GRACE_SECONDS: '4' },
      });
      const { gcs, bq, receiver } = cloud;
      const object = gcs.put(BUCKET, 'logs/h.csv', 'id,n\n1,2\n');
      (server === 'gcs' ? gcs : bq).fail({ match, hang: true, times: 1000 });
      const { body, headers } = binaryEvent(STORAGE_TYPE, object, {
        'ce-id': 'event-h',
        'ce-source': `//storage.googleapis.com/projects/_/buckets/${BUCKET}`,
        'ce-subject': 'objects/logs/h.csv',
      });
      const started = Date.now();
      const answer = await post(receiver.url, body, headers);
      const elapsed = Date.now() - started;
      expect(answer.status, answer.text).to.equal(503);
      expect(answer.json).to.include({ retryable: true });
      // A generous bound from the budget, far below the clients' own 60 s a try.
      expect(elapsed).to.be.below(BUDGET_S * 1000 + 10_000);

      gcs.clearFaults();
      bq.clearFaults();
      // Redelivered as Eventarc would, until it settles: a claim left behind is taken over after the grace.
      let again = await post(receiver.url, body, headers);
      for (let i = 0; i < 5 && again.status === 503; i++)
        again = await post(receiver.url, body, headers);
      expect(again.status, again.text).to.equal(200);
      expect((again.json as { objects: { outcome: string }[] }).objects[0]?.outcome).to.equal(
        'loaded',
      );
      expect(bq.rows('test-project', 'ingest', 'events')).to.equal(1);
    });
  }
});
