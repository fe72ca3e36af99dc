import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { grantsCommand } from '../src/cli/grants';
import {
  gcloudOrSkip,
  inBatches,
  isolatedEnv,
  problem,
  recordCommands,
  runGcloud,
} from './helpers/gcloud';

const SA = 'gcs-bq-ingest-run@test-project.iam.gserviceaccount.com';
const CONFIG = `buckets: [landing, archive]
quarantine: {prefix: rejected/}
defaults: {dataset: raw}
notify: {topic: projects/test-project/topics/ingest-outcomes}
routes:
  - match: "sales/*.csv"
    dataset: sales
    notify: {topic: projects/test-project/topics/sales-outcomes}
  - match: "teams/{team}/*.csv"
    dataset: "team_{team}"
  - match: "more-sales/*.csv"
    dataset: sales
  - match: "**/*.csv"
`;

describe('gcs-bq-ingest grants', function () {
  this.timeout(120_000);
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grants-'));
    fs.writeFileSync(path.join(dir, 'ingest.yaml'), CONFIG);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function printed(args: string[], env: Record<string, string>): Promise<string> {
    let out = '';
    await grantsCommand({ env, out: (text) => (out += text) })
      .exitOverride()
      .parseAsync(args, { from: 'user' });
    return out;
  }
  const fromConfig = () =>
    printed(['--project', 'test-project'], { INGEST_CONFIG: path.join(dir, 'ingest.yaml') });

  it('grants Data Editor on every dataset the routes name, once each, and names the templates it cannot list', async () => {
    const script = await fromConfig();
    const calls = recordCommands(script, dir);
    expect(calls.filter((c) => c[0] === 'bq')).to.deep.equal(
      ['test-project:sales', 'test-project:raw'].map((dataset) => [
        'bq',
        'add-iam-policy-binding',
        '--dataset',
        `--member=serviceAccount:${SA}`,
        '--role=roles/bigquery.dataEditor',
        dataset,
      ]),
    );
    expect(script).to.contain(
      '# routes[1] names its dataset by a template, "team_{team}", so its datasets cannot be listed here',
    );
  });

  it('on each bucket of the allowlist: read, claim, and create only under the quarantine prefix', async () => {
    const calls = recordCommands(await fromConfig(), dir).filter((c) => c[1] === 'storage');
    const bucketRoles = (bucket: string) =>
      calls.filter((c) => c[4] === `gs://${bucket}`).map((c) => c.slice(6).join(' '));
    for (const bucket of ['landing', 'archive']) {
      expect(bucketRoles(bucket)).to.deep.equal([
        '--role=roles/storage.objectViewer',
        '--role=projects/test-project/roles/gcsBqIngestClaims',
        `--role=roles/storage.objectUser --condition=expression=resource.name.startsWith('projects/_/buckets/${bucket}/objects/rejected/'),title=gcs-bq-ingest quarantine`,
      ]);
    }
    const role = recordCommands(await fromConfig(), dir).find((c) => c[3] === 'create');
    expect(role).to.include('--permissions=storage.objects.update');
  });

  it('lets the service publish to each topic notify names, and creates it when missing', async () => {
    const calls = recordCommands(await fromConfig(), dir).filter((c) => c[1] === 'pubsub');
    expect(calls.map((c) => c.slice(3).join(' '))).to.deep.equal(
      ['ingest-outcomes', 'sales-outcomes'].flatMap((t) => [
        `describe projects/test-project/topics/${t} --format=none`,
        `create projects/test-project/topics/${t}`,
        `add-iam-policy-binding projects/test-project/topics/${t} --member=serviceAccount:${SA} --role=roles/pubsub.publisher --format=none`,
      ]),
    );
    const none = await printed(['--project', 'test-project', '--bucket', 'test-landing'], {
      INGEST_CONFIG: '',
    });
    expect(none).not.to.contain('pubsub');
  });

  it('without an allowlist, grants on --bucket (or INGEST_BUCKET), and asks for it when neither is given', async () => {
    const env = { INGEST_CONFIG: '', INGEST_BUCKET: 'test-landing' };
    const script = await printed(['--project', 'test-project'], env);
    expect(script).to.contain('gs://test-landing ');
    expect(script).to.contain(`test-project:ingest`);
    expect(script).to.contain("objects/_quarantine/'");
    let error: unknown;
    await printed(['--project', 'test-project'], { INGEST_CONFIG: '' }).catch(
      (e: unknown) => (error = e),
    );
    expect((error as Error).message).to.equal('missing --bucket (or set INGEST_BUCKET)');
  });

  it('prints gcloud commands that the real gcloud parses', async function () {
    const gcloud = gcloudOrSkip(this);
    const config = fs.mkdtempSync(path.join(os.tmpdir(), 'gcloud-config-'));
    try {
      const commands = recordCommands(await fromConfig(), dir).filter((c) => c[0] === 'gcloud');
      expect(commands.length).to.be.greaterThan(5);
      const verdicts = await inBatches(commands, 2, (argv) =>
        runGcloud(gcloud, argv, isolatedEnv(config)),
      );
      const problems = verdicts.map(problem).filter((p) => p !== undefined);
      expect(problems, problems.join('\n')).to.deep.equal([]);
    } finally {
      fs.rmSync(config, { recursive: true, force: true });
    }
  });
});
