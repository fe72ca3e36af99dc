import { expect } from 'chai';
import { CLAIM_METADATA_KEY, formatClaim } from '../src/stores/claims';
import { BUCKET, PROJECT, startCloudServices, type CloudServices } from './helpers/cloud-services';
import { isJobGet } from './servers/bigquery-server';
import { storageClient } from './servers/gcs-server';

describe('copies of loaded objects on the cloud path (client libraries, test servers)', function () {
  this.timeout(30_000);
  let cloud: CloudServices;
  beforeEach(async () => {
    cloud = await startCloudServices();
  });
  afterEach(() => cloud.close());

  const copies = [
    {
      how: 'gcloud storage cp (objects.rewrite)',
      copy: async (from: string, to: string) => {
        await storageClient(cloud.gcs).bucket(BUCKET).file(from).copy(to);
      },
    },
    {
      how: 'gcloud storage mv (a copy, then the source deleted)',
      copy: async (from: string, to: string) => {
        await storageClient(cloud.gcs).bucket(BUCKET).file(from).move(to);
      },
    },
  ];

  for (const { how, copy } of copies) {
    for (const [route, folder, table] of [
      ['a batching route', 'in', 'events'],
      ['a batch: false route', 'lone', 'lone'],
    ] as const) {
      it(`loads a copy made by ${how} of a loaded object on ${route}`, async () => {
        cloud.gcs.put(BUCKET, `${folder}/march.csv`, 'id,value\n1,a\n2,b\n');
        const first = await cloud.event(`${folder}/march.csv`);
        expect(first.outcome).to.equal('loaded');
        const claim = cloud.gcs.metadataOf(BUCKET, `${folder}/march.csv`)?.['ingest-claim'];
        expect(claim).to.be.a('string');

        await copy(`${folder}/march.csv`, `${folder}/march-resend.csv`);
        // The copy arrives with its source's claim, as Cloud Storage copies custom metadata.
        expect(cloud.gcs.metadataOf(BUCKET, `${folder}/march-resend.csv`)).to.include({
          'ingest-claim': claim,
        });
        const resent = await cloud.event(`${folder}/march-resend.csv`);
        expect(resent.outcome, resent.reason).to.equal('loaded');
        expect(resent.jobId).to.not.equal(first.jobId);
        expect(cloud.bq.rows(PROJECT, 'ingest', table)).to.equal(4);
        // Its own redelivery is a duplicate of its own job.
        const again = await cloud.event(`${folder}/march-resend.csv`);
        expect(again).to.include({ outcome: 'duplicate', jobId: resent.jobId });
        expect(cloud.bq.rows(PROJECT, 'ingest', table)).to.equal(4);
      });
    }
  }

  it("does not await the source's rebuild job for a copy into another partition day", async () => {
    cloud.gcs.put(BUCKET, 'days/2024/03/01/a.csv', 'id\n1\n');
    const first = await cloud.event('days/2024/03/01/a.csv');
    expect(first.outcome).to.equal('loaded');
    const mark = cloud.gcs.metadataOf(BUCKET, 'days/2024/03/01/a.csv')?.['ingest-rebuild-job'];
    expect(mark).to.be.a('string');
    await storageClient(cloud.gcs)
      .bucket(BUCKET)
      .file('days/2024/03/01/a.csv')
      .copy('days/2024/03/02/a.csv');
    expect(cloud.gcs.metadataOf(BUCKET, 'days/2024/03/02/a.csv')).to.include({
      'ingest-rebuild-job': mark,
    });
    cloud.bq.resetCounters();
    const copied = await cloud.event('days/2024/03/02/a.csv');
    expect(copied.outcome, copied.reason).to.equal('loaded');
    const readsOfSourceJob = cloud.bq.count(
      (r) => isJobGet(r) && r.path.endsWith(`/jobs/${first.jobId ?? ''}`),
    );
    expect(readsOfSourceJob).to.equal(0);
  });
});

describe('an orphaned claim followed by many requests on the cloud path', function () {
  this.timeout(120_000);
  let cloud: CloudServices;
  before(async () => {
    cloud = await startCloudServices({ claimGraceMs: 4000 });
  });
  after(() => cloud.close());

  it('300 followers share one lookup of the job id: at most 20 jobs.get a second, each object loaded once', async () => {
    const storage = storageClient(cloud.gcs);
    const names = Array.from({ length: 300 }, (_, i) => `in/orphan-${i}.csv`);
    // An instance claimed all 300 for one job and died before inserting it.
    const claim = {
      jobId: 'ingest_orphaned',
      at: Date.now(),
      destination: `${PROJECT}.ingest.events`,
    };
    await Promise.all(
      names.map(async (name, i) => {
        const resource = cloud.gcs.put(BUCKET, name, `id\n${i}\n`);
        const object = { bucket: BUCKET, name, generation: resource.generation, size: 5 };
        await storage
          .bucket(BUCKET)
          .file(name)
          .setMetadata({ metadata: { [CLAIM_METADATA_KEY]: formatClaim(claim, object) } });
      }),
    );
    cloud.bq.resetCounters();
    cloud.gcs.resetCounters();
    const started = Date.now();
    const results = await Promise.allSettled(names.map((name) => cloud.event(name, 30_000)));

    const perSecond = new Map<number, number>();
    for (const r of cloud.bq.requests.filter(isJobGet)) {
      const second = Math.floor((r.at - started) / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    const busiest = Math.max(...perSecond.values());
    const orphanLookups = cloud.bq.count(
      (r) => isJobGet(r) && r.path.endsWith(`/jobs/${claim.jobId}`),
    );
    const objectReads = cloud.gcs.count((r) => r.method === 'GET');
    console.log(
      `      ${names.length} followers in ${Date.now() - started} ms: jobs.get ${cloud.bq.count(isJobGet)} (${orphanLookups} for the orphaned id), busiest second ${busiest}; Cloud Storage GETs ${objectReads}`,
    );
    expect(busiest).to.be.at.most(20);
    const outcomes = results.map((r) => (r.status === 'fulfilled' ? r.value.outcome : '503'));
    expect(outcomes).to.deep.equal(names.map(() => 'loaded'));
    expect(cloud.bq.rows(PROJECT, 'ingest', 'events')).to.equal(names.length);
  });
});
