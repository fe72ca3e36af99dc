import { expect } from 'chai';
import { STORAGE_TYPE, binaryEvent, pushBody } from '../helpers/events';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { post, type RunningServer } from '../helpers/server';
import { isInsert, type BigQueryServer } from '../servers/bigquery-server';
import type { GcsServer, ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';
const CONFIG = `
routes:
  - match: "sales/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: daily
    write: partition
  - match: "**/*.csv"
`;

interface Answer {
  outcome: string;
  objects: {
    uri: string;
    generation?: string;
    outcome: string;
    destination?: string;
    jobId?: string;
    rows?: number;
    reason?: string;
  }[];
}

describe('end to end: the receiver with INGEST_BACKEND=gcp against Cloud Storage and BigQuery test servers', function () {
  this.timeout(120_000);
  let cloud: CloudReceiver;
  let gcs: GcsServer;
  let bq: BigQueryServer;
  let receiver: RunningServer;

  async function emit(resource: ObjectResource) {
    const event = binaryEvent(STORAGE_TYPE, resource, {
      'ce-id': `event-${resource.generation}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
      'ce-subject': `objects/${resource.name}`,
    });
    const answer = await post(receiver.url, event.body, event.headers);
    return { status: answer.status, body: answer.json as unknown as Answer, text: answer.text };
  }
  const describeAnswer = (answer: { text: string }) =>
    `${answer.text}\n--- service output ---\n${receiver.output()}`;

  before(async () => {
    // A claim whose insert failed is taken over after this grace (default 120 s).
    cloud = await startCloudReceiver(CONFIG, { env: { INGEST_CLAIM_GRACE_SECONDS: '2' } });
    ({ gcs, bq, receiver } = cloud);
  });
  after(async () => cloud?.stop());
  beforeEach(() => {
    gcs.clearFaults();
    bq.clearFaults();
    gcs.resetCounters();
    bq.resetCounters();
  });

  it('loads a finalized object with one load job from its gs:// URI', async () => {
    const object = gcs.put(
      BUCKET,
      'in/us-states.csv',
      'code,name\nAL,Alabama\nAK,Alaska\nAZ,Arizona\n',
    );
    const answer = await emit(object);
    expect(answer.status, describeAnswer(answer)).to.equal(200);
    expect(answer.body.outcome).to.equal('loaded');
    expect(answer.body.objects[0]).to.include({
      uri: `gs://${BUCKET}/in/us-states.csv`,
      generation: object.generation,
      outcome: 'loaded',
      destination: `${PROJECT}.ingest.us_states`,
      rows: 3,
    });
    const inserts = bq.inserts();
    expect(inserts).to.have.length(1);
    expect(inserts[0]?.jobReference?.jobId).to.equal(answer.body.objects[0]?.jobId);
    expect(inserts[0]?.configuration?.load).to.include({
      sourceFormat: 'CSV',
      writeDisposition: 'WRITE_APPEND',
    });
    expect(inserts[0]?.configuration?.load?.sourceUris).to.deep.equal([
      `gs://${BUCKET}/in/us-states.csv`,
    ]);
    expect(bq.rows(PROJECT, 'ingest', 'us_states')).to.equal(3);
    expect(
      gcs.bytesServed(BUCKET, 'in/us-states.csv'),
      'only the header check reads the object',
    ).to.equal(Number(object.size));
  });

  it('answers duplicate for the same event again, inserting no new job', async () => {
    const object = gcs.put(BUCKET, 'in/again.csv', 'a,b\n1,2\n');
    const first = await emit(object);
    expect(first.body.outcome, describeAnswer(first)).to.equal('loaded');
    const second = await emit(object);
    expect(second.status).to.equal(200);
    expect(second.body.objects[0]).to.include({
      outcome: 'duplicate',
      jobId: first.body.objects[0]?.jobId,
      rows: 1,
    });
    // The redelivery follows the object's claim to its job: read, never inserted again.
    expect(bq.inserts().map((b) => b.jobReference?.jobId)).to.deep.equal([
      first.body.objects[0]?.jobId,
    ]);
    expect(bq.rows(PROJECT, 'ingest', 'again')).to.equal(1);
  });

  it('loads the same event sent 20 times at once exactly once', async () => {
    const object = gcs.put(BUCKET, 'in/twenty.csv', 'a,b\n1,2\n3,4\n');
    const answers = await Promise.all(Array.from({ length: 20 }, () => emit(object)));
    const outcomes = answers.map((a) => a.body.objects?.[0]?.outcome);
    expect(
      outcomes.filter((o) => o === 'loaded'),
      JSON.stringify(outcomes),
    ).to.have.length(1);
    expect(outcomes.filter((o) => o === 'duplicate')).to.have.length(19);
    expect(bq.rows(PROJECT, 'ingest', 'twenty')).to.equal(2);
  });

  it('rejects an object BigQuery cannot load and copies it to the quarantine prefix with why', async () => {
    const object = gcs.put(BUCKET, 'in/jagged.csv', 'id,name\n1,one\n2\n');
    const answer = await emit(object);
    expect(answer.status, describeAnswer(answer)).to.equal(200);
    const [result] = answer.body.objects;
    expect(result).to.include({ outcome: 'rejected', destination: `${PROJECT}.ingest.jagged` });
    expect(result?.reason)
      .to.include('contains only 1 columns')
      .and.include(`gs://${BUCKET}/in/jagged.csv`);
    expect(gcs.contentOf(BUCKET, '_quarantine/in/jagged.csv')?.toString()).to.equal(
      'id,name\n1,one\n2\n',
    );
    expect(gcs.metadataOf(BUCKET, '_quarantine/in/jagged.csv')).to.include({
      'ingest-job-id': result?.jobId,
      'ingest-source': `gs://${BUCKET}/in/jagged.csv`,
      'ingest-generation': object.generation,
    });
    expect(gcs.metadataOf(BUCKET, '_quarantine/in/jagged.csv')?.['ingest-reason']).to.include(
      'contains only 1 columns',
    );
    expect(bq.rows(PROJECT, 'ingest', 'jagged')).to.equal(undefined);
  });

  it('loads names Cloud Storage allows (%2F, backslash, tab, "*") by event, and a prefix reprocess agrees', async () => {
    gcs.put(BUCKET, 'odd/star.csv', 'id\n7\n');
    const names = ['odd/a%2Fb.csv', 'odd/back\\slash.csv', 'odd/tab\there.csv', 'odd/star*.csv'];
    for (const name of names) {
      const answer = await emit(gcs.put(BUCKET, name, 'id\n1\n2\n'));
      expect(answer.status, describeAnswer(answer)).to.equal(200);
      expect(answer.body.objects[0], name).to.include({ outcome: 'loaded', rows: 2 });
    }
    expect(bq.rows(PROJECT, 'ingest', 'star_'), 'odd/star*.csv alone').to.equal(2);
    expect(gcs.names(BUCKET).filter((n) => n.includes('.loading/'))).to.deep.equal([]);
    const prefix = pushBody({ bucket: BUCKET, prefix: 'odd/' });
    const again = await post(receiver.url, prefix.body, prefix.headers);
    expect(again.status, again.text).to.equal(200);
    const objects = (again.json as unknown as Answer).objects;
    expect(Object.fromEntries(objects.map((o) => [o.uri, o.outcome]))).to.deep.equal({
      ...Object.fromEntries(names.map((n) => [`gs://${BUCKET}/${n}`, 'duplicate'])),
      [`gs://${BUCKET}/odd/star.csv`]: 'loaded',
    });
  });

  describe('a rejected object whose quarantine name would pass 1,024 bytes', () => {
    const shortened = (name: string) =>
      gcs.names(BUCKET).find((n) => n.startsWith('_quarantine/') && n.includes(name.slice(0, 900)));

    it('is quarantined under a shortened name holding the whole name in its metadata', async () => {
      const name = `in/${'y'.repeat(1008)}.csv`;
      expect(Buffer.byteLength(name)).to.equal(1015);
      const object = gcs.put(BUCKET, name, 'id,name\n1,one\n2\n');
      const answer = await emit(object);
      expect(answer.status, describeAnswer(answer)).to.equal(200);
      expect(answer.body.objects[0]).to.include({ outcome: 'rejected' });
      const copy = shortened(name) ?? '';
      expect(Buffer.byteLength(copy)).to.be.at.most(1024);
      expect(copy).to.match(/^_quarantine\/in\/y+~[0-9a-f]{16}\.csv$/);
      expect(gcs.metadataOf(BUCKET, copy)).to.include({
        'ingest-source': `gs://${BUCKET}/${name}`,
        'ingest-generation': object.generation,
      });
    });

    it('is left out of its partition day, found through that copy, when the day is rebuilt', async () => {
      const day = 'sales/2024/05/02';
      const name = `${day}/${'x'.repeat(1015 - day.length - 5)}.csv`;
      expect(Buffer.byteLength(name)).to.equal(1015);
      const bad = await emit(gcs.put(BUCKET, name, 'id,v\n1,"open\n'));
      expect(bad.status, describeAnswer(bad)).to.equal(200);
      expect(bad.body.objects[0]).to.include({ outcome: 'rejected' });
      expect(shortened(name)).to.be.a('string');

      const good = await emit(gcs.put(BUCKET, `${day}/good.csv`, 'id,v\n2,b\n'));
      expect(good.status, describeAnswer(good)).to.equal(200);
      expect(good.body.objects[0]).to.include({ outcome: 'loaded', rows: 1 });
      const uris = bq.inserts().at(-1)?.configuration?.load?.sourceUris;
      expect(uris).to.deep.equal([`gs://${BUCKET}/${day}/good.csv`]);
    });
  });

  it('skips an object deleted before it could be read, and a superseded generation', async () => {
    const deleted = gcs.put(BUCKET, 'in/deleted.csv', 'a\n1\n');
    gcs.remove(BUCKET, 'in/deleted.csv');
    const gone = await emit(deleted);
    expect(gone.status, describeAnswer(gone)).to.equal(200);
    expect(gone.body.objects[0]).to.include({ outcome: 'skipped' });

    const old = gcs.put(BUCKET, 'in/replaced.csv', 'a\n1\n');
    gcs.put(BUCKET, 'in/replaced.csv', 'a\n1\n2\n');
    const superseded = await emit(old);
    expect(superseded.status).to.equal(200);
    expect(superseded.body.objects[0]).to.include({
      outcome: 'skipped',
      generation: old.generation,
    });
    expect(bq.inserts()).to.have.length(0);
  });

  it('loads a partition route as WRITE_TRUNCATE of table$YYYYMMDD', async () => {
    const object = gcs.put(BUCKET, 'sales/2024/01/31/eu.csv', 'sku,qty\na,1\nb,2\n');
    const answer = await emit(object);
    expect(answer.body.objects[0], describeAnswer(answer)).to.include({
      outcome: 'loaded',
      rows: 2,
    });
    const load = bq.inserts()[0]?.configuration?.load;
    expect(load?.destinationTable).to.deep.equal({
      projectId: PROJECT,
      datasetId: 'sales',
      tableId: 'daily$20240131',
    });
    expect(load?.writeDisposition).to.equal('WRITE_TRUNCATE');
  });

  it('reads at most 64 KiB of a 10 GiB object', async () => {
    const object = gcs.putVirtual(BUCKET, 'big/huge.csv', 10 * 1024 ** 3, {
      header: 'id,value\n',
      row: '1,x\n',
    });
    const answer = await emit(object);
    expect(answer.body.objects[0], describeAnswer(answer)).to.include({ outcome: 'loaded' });
    expect(gcs.bytesServed(BUCKET, 'big/huge.csv')).to.be.at.most(64 * 1024);
  });

  it('answers 503 (retryable) when jobs.insert keeps answering 503', async () => {
    const object = gcs.put(BUCKET, 'in/unavailable.csv', 'a\n1\n');
    // The client retries a 503 three times itself (about 7 s of back-off) before the service sees it.
    bq.fail({ status: 503, times: 4, match: isInsert });
    const answer = await emit(object);
    expect(answer.status, describeAnswer(answer)).to.equal(503);
    expect(answer.body).to.include({ retryable: true });
    expect(bq.count(isInsert)).to.equal(4);
    expect(bq.rows(PROJECT, 'ingest', 'unavailable')).to.equal(undefined);

    // Whether the failed insert created the job is unknown: the redelivery waits out the claim's
    // grace, finds no job, and claims the object for a new one.
    const redelivery = await emit(object);
    expect(redelivery.body.objects[0], describeAnswer(redelivery)).to.include({
      outcome: 'loaded',
      rows: 1,
    });
    expect(bq.rows(PROJECT, 'ingest', 'unavailable')).to.equal(1);
  });
});
