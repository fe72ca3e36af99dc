import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import { REPO_ROOT } from '../helpers/server';
import { PEER_SOURCE, firstAnswer, spawnFramework, type Service } from '../../bench/lib';
import { isInsert, startBigQueryServer, type BigQueryServer } from '../servers/bigquery-server';
import { startGcsServer, type GcsServer, type ObjectResource } from '../servers/gcs-server';

const CSV = 'state,code,population\nOhio,OH,11780017\nUtah,UT,3271616\n';

describe('the peer of the benchmarks (bench/peer/)', () => {
  let gcs: GcsServer;
  let bq: BigQueryServer;
  let peer: Service;
  let work: string;
  const event = (resource: ObjectResource) =>
    finalizedEvent({ ...resource, size: Number(resource.size) });

  before(async () => {
    gcs = await startGcsServer();
    bq = await startBigQueryServer({ gcs, jobDurationMs: 50 });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-peer-'));
    // As the benchmarks start it: the Functions Framework in its own process, the test servers.
    peer = await spawnFramework(
      { quick: true, work, source: REPO_ROOT, imageEnv: {}, log: () => undefined },
      'peer',
      PEER_SOURCE,
      {
        STORAGE_EMULATOR_HOST: gcs.url,
        BIGQUERY_EMULATOR_HOST: bq.url,
        HOME: work,
        CLOUDSDK_CONFIG: work,
      },
    );
  });

  after(async () => {
    await peer?.stop();
    await bq?.close();
    await gcs?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  beforeEach(() => {
    bq.resetCounters();
    gcs.resetCounters();
  });

  it('answers 204 once the load job of its object is done, into the table named by the file', async () => {
    const resource = gcs.put('bench', 'in/States-2024.csv', CSV, { contentType: 'text/csv' });
    const answer = await firstAnswer(peer, event(resource));
    expect(answer.status, JSON.stringify(answer.body)).to.equal(204);
    expect(bq.rows('bench-project', 'ingest', 'states_2024')).to.equal(2);
    const load = bq.inserts().at(-1)?.configuration?.load;
    expect(load).to.include({ autodetect: true, skipLeadingRows: 1, sourceFormat: 'CSV' });
    expect(load?.sourceUris).to.deep.equal(['gs://bench/in/States-2024.csv']);
    // One job, polled until done; nothing read from Cloud Storage (no head check, no claim).
    expect(bq.count(isInsert)).to.equal(1);
    expect(gcs.count()).to.equal(0);
  });

  it('answers 500 when its load job fails', async () => {
    const missing = gcs.put('bench', 'gone/missing.csv', CSV, { contentType: 'text/csv' });
    gcs.remove('bench', 'gone/missing.csv');
    const answer = await sendEvent(peer.url, event(missing));
    expect(answer.status).to.equal(500);
    expect(String(answer.body)).to.contain('Not found: URI gs://bench/gone/missing.csv');
    expect(bq.count(isInsert)).to.equal(1);
  });

  it('loads a redelivered event again: no duplicate check', async () => {
    const resource = gcs.put('bench', 'again/twice.csv', CSV, { contentType: 'text/csv' });
    const once = event(resource);
    expect((await sendEvent(peer.url, once)).status).to.equal(204);
    expect((await sendEvent(peer.url, once)).status).to.equal(204);
    expect(bq.count(isInsert)).to.equal(2);
    expect(bq.rows('bench-project', 'ingest', 'twice')).to.equal(4);
  });
});
