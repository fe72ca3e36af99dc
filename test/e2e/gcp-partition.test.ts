import { expect } from 'chai';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { post } from '../helpers/server';
import { isInsert, type BigQueryServer } from '../servers/bigquery-server';
import type { GcsServer, ObjectResource } from '../servers/gcs-server';

const PROJECT = 'test-project';
const BUCKET = 'landing';
const CONFIG = `
routes:
  - match: "sales/{table}/{yyyy}/{mm}/{dd}/*.csv"
    dataset: sales
    table: "{table}"
    write: partition
`;

interface ObjectAnswer {
  outcome: string;
  rows?: number;
  reason?: string;
  jobId?: string;
}

describe('end to end: partition rebuilds with INGEST_BACKEND=gcp', function () {
  this.timeout(120_000);
  let cloud: CloudReceiver;
  let gcs: GcsServer;
  let bq: BigQueryServer;

  async function emit(resource: ObjectResource): Promise<ObjectAnswer> {
    const event = binaryEvent(STORAGE_TYPE, resource, {
      'ce-id': `event-${resource.name}-${resource.generation}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
      'ce-subject': `objects/${resource.name}`,
    });
    const answer = await post(cloud.receiver.url, event.body, event.headers);
    expect(answer.status, `${answer.text}\n${cloud.receiver.output()}`).to.equal(200);
    return (answer.json as { objects: ObjectAnswer[] }).objects[0] as ObjectAnswer;
  }
  const partitionRows = (table: string, day: string) =>
    bq.table(PROJECT, 'sales', table)?.partitions.get(day);

  before(async () => {
    cloud = await startCloudReceiver(CONFIG);
    ({ gcs, bq } = cloud);
  });
  after(async () => cloud?.stop());

  it('keeps every file of the day: p2 (2 rows) then p3 (1 row) leave 3 rows, in one job each', async () => {
    const day = 'sales/orders/2024/03/01';
    expect(await emit(gcs.put(BUCKET, `${day}/p2.csv`, 'id,v\n1,a\n2,b\n'))).to.include({
      outcome: 'loaded',
      rows: 2,
    });
    const p3 = gcs.put(BUCKET, `${day}/p3.csv`, 'id,v\n3,c\n');
    const before = bq.count(isInsert);
    expect(await emit(p3)).to.include({ outcome: 'loaded', rows: 3 });
    expect(bq.count(isInsert)).to.equal(before + 1);
    const load = bq.inserts().at(-1)?.configuration?.load;
    expect(load?.sourceUris).to.deep.equal([
      `gs://${BUCKET}/${day}/p2.csv`,
      `gs://${BUCKET}/${day}/p3.csv`,
    ]);
    expect(load?.writeDisposition).to.equal('WRITE_TRUNCATE');
    expect(partitionRows('orders', '20240301')).to.equal(3);

    const again = await emit(p3);
    expect(again).to.include({ outcome: 'duplicate', rows: 3 });
    expect(partitionRows('orders', '20240301')).to.equal(3);
  });

  it('quarantines the file a failed rebuild names and keeps the rest of the day', async () => {
    const day = 'sales/refunds/2024/03/01';
    await emit(gcs.put(BUCKET, `${day}/a.csv`, 'id\n1\n2\n'));
    const bad = await emit(gcs.put(BUCKET, `${day}/z.csv`, 'id\n5,6\n'));
    expect(bad.outcome).to.equal('rejected');
    expect(bad.reason).to.contain(`gs://${BUCKET}/${day}/z.csv`);
    expect(gcs.metadataOf(BUCKET, `_quarantine/${day}/z.csv`)).to.have.property('ingest-reason');
    expect(partitionRows('refunds', '20240301')).to.equal(2);

    const next = await emit(gcs.put(BUCKET, `${day}/b.csv`, 'id\n3\n'));
    expect(next).to.include({
      outcome: 'loaded',
      rows: 3,
      reason: 'partition 20240301 holds 2 objects',
    });
    expect(partitionRows('refunds', '20240301')).to.equal(3);
  });
});
