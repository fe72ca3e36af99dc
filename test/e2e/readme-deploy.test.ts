import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import {
  NO_ACCOUNT,
  gcloudOrSkip,
  inBatches,
  isolatedEnv,
  recordCommands,
  runGcloud,
} from '../helpers/gcloud';
import { REPO_ROOT } from '../helpers/server';

const DEPLOYMENT = path.join(REPO_ROOT, 'docs', 'deployment.md');
const STEPS = '\n## Deployment steps\n';

/**
 * docs/deployment.md from its deployment steps to its end (the steps, then rolling back), its bash
 * blocks joined into one script, as a reader runs them.
 */
function deploymentScript(): string {
  const doc = fs.readFileSync(DEPLOYMENT, 'utf8');
  const start = doc.indexOf(STEPS);
  if (start < 0) throw new Error(`docs/deployment.md has no "${STEPS.trim()}"`);
  const blocks = [...doc.slice(start).matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  return ['set -euo pipefail', ...blocks].join('\n');
}

describe('the deployment commands of docs/deployment.md, run as written against a fake gcloud', function () {
  this.timeout(180_000);
  // The built-in configuration: no ingest.yaml that another test may have left in the clone.
  const calls = () => recordCommands(deploymentScript(), REPO_ROOT, { INGEST_CONFIG: '' });

  it('grants on the datasets and buckets only what `gcs-bq-ingest grants` derives from the configuration', () => {
    const all = calls();
    const datasetGrants = all.filter((c) => c[0] === 'bq' && c[1] === 'add-iam-policy-binding');
    expect(datasetGrants.map((c) => c.at(-1))).to.deep.equal(['my-project:ingest']);
    const bucketGrants = all.filter(
      (c) =>
        c.slice(1, 4).join(' ') === 'storage buckets add-iam-policy-binding' &&
        c[4] === 'gs://my-project-landing',
    );
    expect(bucketGrants.map((c) => c.find((w) => w.startsWith('--role=')))).to.deep.equal([
      '--role=roles/storage.objectViewer',
      '--role=projects/my-project/roles/gcsBqIngestClaims',
      '--role=roles/storage.objectUser',
    ]);
    expect(all.map((c) => c.join(' ')).join('\n')).not.to.match(/roles\/browser|eventarc\.admin/);
  });

  it('lets the service publish to the outcomes topic, and sets up the alerts notifying the email channel', () => {
    const all = calls();
    const publishers = all.filter(
      (c) => c.slice(1, 4).join(' ') === 'pubsub topics add-iam-policy-binding',
    );
    expect(publishers.map((c) => c[4])).to.include.members(['ingest-reprocess', 'ingest-outcomes']);
    expect(
      all.find((c) => c.slice(1, 5).join(' ') === 'beta monitoring channels create'),
    ).to.include('--channel-labels=email_address=oncall@example.com');
    const policies = all
      .filter((c) => c.slice(1, 5).join(' ') === 'alpha monitoring policies create')
      .map(
        (c) =>
          JSON.parse(c.find((w) => w.startsWith('--policy='))!.slice(9)) as {
            notificationChannels?: string[];
          },
      );
    expect(policies).to.have.length(3);
    for (const p of policies)
      expect(p.notificationChannels).to.deep.equal([
        'projects/test-project/notificationChannels/1234567890',
      ]);
  });

  it('gives gcloud only commands it parses', async function () {
    const gcloud = gcloudOrSkip(this);
    const config = fs.mkdtempSync(path.join(os.tmpdir(), 'gcloud-config-'));
    try {
      const commands = calls().filter((c) => c[0] === 'gcloud');
      expect(commands.length).to.be.greaterThan(30);
      // `gcloud config set project` first, as the steps run it: later commands rely on it.
      const isConfig = (argv: string[]) => argv[1] === 'config';
      const check = (argv: string[]) => runGcloud(gcloud, argv, isolatedEnv(config));
      const verdicts = [
        ...(await inBatches(commands.filter(isConfig), 1, check)),
        ...(await inBatches(
          commands.filter((c) => !isConfig(c)),
          Math.max(2, os.cpus().length),
          check,
        )),
      ];
      // `gcloud config set` needs no account; every other command stops only for want of one.
      const problems = verdicts
        .filter((v) => !(v.code === 0 && v.argv[1] === 'config'))
        .filter((v) => !(v.code === 1 && NO_ACCOUNT.test(v.stderr)))
        .map((v) => `exit ${v.code}: ${v.argv.join(' ')}\n    ${v.stderr.trim().split('\n')[0]}`);
      expect(problems, problems.join('\n')).to.deep.equal([]);
    } finally {
      fs.rmSync(config, { recursive: true, force: true });
    }
  });
});
