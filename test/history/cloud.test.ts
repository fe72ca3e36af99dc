import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jobsQuery, parseJobRows, readCloudHistory } from '../../src/warehouses/bigquery/history';
import type { HistoryEntry } from '../../src/history/entry';
import { createGcsStore } from '../../src/stores/gcs';
import { runCli } from '../helpers/cli';
import { startCloudReceiver, type CloudReceiver } from '../helpers/cloud';
import { STORAGE_TYPE, binaryEvent } from '../helpers/events';
import { post } from '../helpers/server';
import {
  bigQueryClient,
  historyQueryProblem,
  startBigQueryServer,
  type BigQueryServer,
} from '../servers/bigquery-server';
import { storageClient, type ObjectResource } from '../servers/gcs-server';

const BUCKET = 'landing';
const CONFIG = `buckets: [${BUCKET}]\nroutes:\n  - match: "**/*.csv"\n`;
const LABELS = { component: 'gcs-bq-ingest', bucket: BUCKET, route: 'route-0' };

interface Answer {
  objects: { uri: string; outcome: string; jobId?: string; rows?: number; reason?: string }[];
}

describe('gcs-bq-ingest history with INGEST_BACKEND=gcp, against the BigQuery and Cloud Storage test servers', function () {
  this.timeout(120_000);
  let cloud: CloudReceiver;
  let dir: string;
  let env: Record<string, string>;

  async function emit(resource: ObjectResource): Promise<Answer['objects'][number]> {
    const event = binaryEvent(STORAGE_TYPE, resource, {
      'ce-id': `event-${resource.name}-${resource.generation}`,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
      'ce-subject': `objects/${resource.name}`,
    });
    const answer = await post(cloud.receiver.url, event.body, event.headers);
    expect(answer.status, answer.text).to.equal(200);
    return (answer.json as unknown as Answer).objects[0]!;
  }
  const history = async (...args: string[]) => {
    const result = await runCli(['history', ...args], dir, env);
    expect(result.status, result.stderr).to.equal(0);
    return result.stdout;
  };

  before(async () => {
    cloud = await startCloudReceiver(CONFIG, { env: { INGEST_CLAIM_GRACE_SECONDS: '2' } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-history-gcp-'));
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), CONFIG);
    env = {
      INGEST_BACKEND: 'gcp',
      INGEST_CONFIG: path.join(dir, 'ingest.yaml'),
      STORAGE_EMULATOR_HOST: cloud.gcs.url,
      BIGQUERY_EMULATOR_HOST: cloud.bq.url,
      GOOGLE_CLOUD_PROJECT: 'test-project',
      CLOUDSDK_CONFIG: dir,
      HOME: dir,
    };
  });
  after(async () => {
    await cloud?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("lists the service's load jobs by label, with their objects, rows and the quarantine's reasons", async () => {
    const loaded = await emit(cloud.gcs.put(BUCKET, 'in/good.csv', 'a,b\n1,2\n3,4\n'));
    const rejected = await emit(cloud.gcs.put(BUCKET, 'in/jagged.csv', 'id,name\n1,one\n2\n'));
    expect([loaded.outcome, rejected.outcome]).to.deep.equal(['loaded', 'rejected']);

    const entries = JSON.parse(await history('--json')) as HistoryEntry[];
    const byJob = new Map(entries.map((e) => [e.jobId, e]));
    expect(byJob.get(loaded.jobId)).to.deep.include({
      objects: [`gs://${BUCKET}/in/good.csv`],
      outcome: 'loaded',
      destination: 'test-project.ingest.good',
      rows: 2,
    });
    const bad = byJob.get(rejected.jobId);
    expect(bad).to.deep.include({ objects: [`gs://${BUCKET}/in/jagged.csv`], outcome: 'rejected' });
    expect(bad?.reason).to.include('contains only 1 columns');
    expect(entries.map((e) => e.time)).to.deep.equal(
      [...entries.map((e) => e.time)].sort().reverse(),
    );

    const queries = cloud.bq.requests.filter(
      (r) => r.method === 'POST' && /\/queries$/.test(r.path),
    );
    expect(queries).to.have.length(1);
    const body = queries[0]!.body as Parameters<typeof historyQueryProblem>[0] & { query: string };
    expect(body.query).to.include('FROM `region-us`.INFORMATION_SCHEMA.JOBS_BY_PROJECT');
    expect(historyQueryProblem(body)).to.equal(undefined);

    const table = await history('--outcome', 'rejected');
    expect(table.split('\n')[1]).to.match(
      /gs:\/\/landing\/in\/jagged\.csv\s+rejected\s+test-project\.ingest\.jagged\s+ingest_\w+…?\s+.*contains only 1 columns/,
    );
    expect(await history('--table', 'ingest.good', '--json')).to.include('in/good.csv');
    expect(await history('--table', 'ingest.good', '--json')).not.to.include('jagged');
  });

  it('is refused by the test server when the query leaves out the label filter', () => {
    const query = jobsQuery('EU').replace(/AND EXISTS \(.*\)\n/, '');
    expect(jobsQuery('EU')).to.include('`region-eu`');
    const parameters = [
      { name: 'since', parameterType: { type: 'TIMESTAMP' }, parameterValue: { value: 'x' } },
    ];
    expect(historyQueryProblem({ query, queryParameters: parameters })).to.equal(
      "test server: the query does not filter by the label component = 'gcs-bq-ingest'",
    );
    expect(() => jobsQuery('us`; DROP')).to.throw('is not a BigQuery location');
  });

  it('refuses rows of another shape, naming the field', () => {
    expect(() => parseJobRows([{ job_id: 'j', created_ms: 'x' }])).to.throw(
      /INFORMATION_SCHEMA row 0: /,
    );
  });

  describe('job states, with results fetched by getQueryResults', () => {
    let bq: BigQueryServer;
    before(async () => {
      bq = await startBigQueryServer({ gcs: cloud.gcs, slowQueries: true });
    });
    after(async () => bq?.close());

    async function insert(jobId: string, name: string, labels: Record<string, string>) {
      cloud.gcs.put(BUCKET, name, 'a,b\n1,2\n');
      await bigQueryClient(bq).createJob({
        jobId,
        location: 'US',
        configuration: {
          labels,
          load: {
            destinationTable: { projectId: 'test-project', datasetId: 'ingest', tableId: 't' },
            sourceUris: [`gs://${BUCKET}/${name}`],
            sourceFormat: 'CSV',
            skipLeadingRows: 1,
            autodetect: true,
          },
        },
      });
    }

    it('reads running, failed and loaded jobs, leaves out jobs of others, and finds rejections without a job', async () => {
      bq.script('job_running', { durationMs: Infinity });
      bq.script('job_failed', {
        durationMs: 50, // DONE by the time of the query; an insert answered DONE with an error throws
        errorResult: { reason: 'backendError', message: 'try later' },
      });
      await insert('job_running', 'in/r.csv', LABELS);
      await insert('job_failed', 'in/f.csv', LABELS);
      await insert('job_loaded', 'in/l.csv', LABELS);
      await insert('job_other', 'in/o.csv', { component: 'something-else' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      cloud.gcs.put(BUCKET, '_quarantine/in/header.csv', 'x', {
        metadata: {
          'ingest-source': `gs://${BUCKET}/in/header.csv`,
          'ingest-reason': 'header: column 2 is empty',
        },
      });

      // A job whose own resource this caller may not read shows from its view row alone.
      bq.fail({
        status: 403,
        match: (r) => r.method === 'GET' && r.path.endsWith('/jobs/job_loaded'),
      });
      const entries = await readCloudHistory({
        bigquery: bigQueryClient(bq),
        store: createGcsStore({ storage: storageClient(cloud.gcs) }),
        location: 'US',
        quarantinePrefix: '_quarantine/',
        buckets: [BUCKET],
        since: new Date(Date.now() - 60_000),
      });
      const summary = entries.map((e) => [e.jobId, e.outcome, e.objects, e.rows, e.reason]);
      expect(summary).to.deep.include.members([
        ['job_running', 'running', [`gs://${BUCKET}/in/r.csv`], undefined, undefined],
        ['job_failed', 'failed', [`gs://${BUCKET}/in/f.csv`], undefined, 'try later'],
        ['job_loaded', 'loaded', [], undefined, undefined],
        [
          undefined,
          'rejected',
          [`gs://${BUCKET}/in/header.csv`],
          undefined,
          'header: column 2 is empty',
        ],
      ]);
      expect(entries.map((e) => e.jobId)).not.to.include('job_other');
      bq.fail({
        status: 500,
        match: (r) => r.method === 'GET' && r.path.endsWith('/jobs/job_failed'),
      });
      const failing = readCloudHistory({
        bigquery: bigQueryClient(bq, { autoRetry: false }),
        store: createGcsStore({ storage: storageClient(cloud.gcs) }),
        location: 'US',
        quarantinePrefix: '_quarantine/',
        since: new Date(Date.now() - 60_000),
      });
      await failing.then(
        () => expect.fail('a server error reading a job is not hidden'),
        (error: Error) => expect(error.message).to.match(/500|internal/i),
      );
      expect(
        bq.count((r) => r.method === 'GET' && /\/queries\/query_1$/.test(r.path)),
      ).to.be.at.least(1);
    });
  });
});
