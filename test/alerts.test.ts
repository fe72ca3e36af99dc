import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { alertsCommand } from '../src/cli/alerts';
import type { RunResult } from '../src/cli/triggers';
import { planAlerts, renderScript } from '../src/deploy';
import {
  gcloudOrSkip,
  inBatches,
  isolatedEnv,
  problem,
  recordCommands,
  runGcloud,
} from './helpers/gcloud';
import { REPO_ROOT } from './helpers/server';

const EVENTARC = path.join(REPO_ROOT, 'eventarc');
const CHANNEL = 'projects/test-project/notificationChannels/1234567890';
const ARGS = ['--dir', EVENTARC, '--project', 'test-project', '--region', 'europe-west1'];

async function printed(args: string[], env: Record<string, string> = {}): Promise<string> {
  let out = '';
  const deps = {
    env,
    run: () => Promise.reject(new Error('--print must not run anything')),
    out: (text: string) => (out += text),
    err: () => undefined,
    sleep: async () => undefined,
  };
  await alertsCommand(deps).exitOverride().parseAsync(args, { from: 'user' });
  return out;
}

/** The JSON of a `gcloud alpha monitoring policies create --policy=…` call. */
function policyOf(argv: string[]): Record<string, unknown> {
  const word = argv.find((w) => w.startsWith('--policy='));
  if (!word) throw new Error(`no --policy in ${argv.join(' ')}`);
  return JSON.parse(word.slice('--policy='.length)) as Record<string, unknown>;
}
const isPolicyCreate = (c: string[]) =>
  c.slice(1, 5).join(' ') === 'alpha monitoring policies create';

describe('gcs-bq-ingest alerts --print', () => {
  it('prints the plan for the services and dead-letter subscriptions eventarc/ names', async () => {
    const script = await printed([...ARGS, '--email', 'oncall@example.com']);
    expect(script).to.equal(
      renderScript(
        planAlerts({
          project: 'test-project',
          region: 'europe-west1',
          email: 'oncall@example.com',
          services: ['gcs-bq-ingest'],
          deadLetterSubscriptions: ['ingest-dead-letter'],
        }),
      ),
    );
    expect(script).to.match(/^#!\/usr\/bin\/env bash\nset -euo pipefail\n/);
  });

  it('run against a project where nothing exists, creates the channel, two metrics and three policies that notify it', async () => {
    const calls = recordCommands(
      await printed([...ARGS, '--email', 'oncall@example.com']),
      os.tmpdir(),
    );
    expect(calls.map((c) => c.slice(1, 5).join(' '))).to.deep.equal([
      'beta monitoring channels list',
      'beta monitoring channels create',
      'logging metrics describe gcs-bq-ingest-rejected',
      'logging metrics create gcs-bq-ingest-rejected',
      'alpha monitoring policies list',
      'alpha monitoring policies create',
      'alpha monitoring policies list',
      'alpha monitoring policies create',
      'logging metrics describe gcs-bq-ingest-quota-exceeded',
      'logging metrics create gcs-bq-ingest-quota-exceeded',
      'alpha monitoring policies list',
      'alpha monitoring policies create',
    ]);
    expect(calls[1]).to.include('--channel-labels=email_address=oncall@example.com');
    const policies = calls.filter(isPolicyCreate).map(policyOf);
    expect(policies.map((p) => p.displayName)).to.deep.equal([
      'gcs-bq-ingest: rejected objects',
      'gcs-bq-ingest: dead letters in ingest-dead-letter',
      'gcs-bq-ingest: BigQuery quota exceeded',
    ]);
    for (const p of policies) expect(p.notificationChannels).to.deep.equal([CHANNEL]);
  });

  it('counts the rejected and quotaExceeded lines of the service in its region, and the dead letters of the subscription', async () => {
    const calls = recordCommands(await printed(ARGS), os.tmpdir());
    const filter = (metric: string) =>
      calls
        .find((c) => c[3] === 'create' && c[4] === metric)
        ?.find((w) => w.startsWith('--log-filter='));
    const service =
      'resource.type="cloud_run_revision" AND resource.labels.service_name="gcs-bq-ingest" AND resource.labels.location="europe-west1"';
    expect(filter('gcs-bq-ingest-rejected')).to.equal(
      `--log-filter=${service} AND jsonPayload.outcome="rejected"`,
    );
    expect(filter('gcs-bq-ingest-quota-exceeded')).to.equal(
      `--log-filter=${service} AND severity=WARNING AND jsonPayload.message:"quotaExceeded"`,
    );
    const conditions = calls
      .filter(isPolicyCreate)
      .map((c) => (policyOf(c).conditions as { conditionThreshold: Record<string, unknown> }[])[0]);
    expect(conditions.map((c) => c?.conditionThreshold.filter)).to.deep.equal([
      'metric.type="logging.googleapis.com/user/gcs-bq-ingest-rejected" AND resource.type="cloud_run_revision"',
      'metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages" AND resource.type="pubsub_subscription" AND resource.labels.subscription_id="ingest-dead-letter"',
      'metric.type="logging.googleapis.com/user/gcs-bq-ingest-quota-exceeded" AND resource.type="cloud_run_revision"',
    ]);
    for (const c of conditions)
      expect(c?.conditionThreshold).to.include({ comparison: 'COMPARISON_GT', thresholdValue: 0 });
    // Without --email there is no channel, and no policy names one.
    expect(calls.some((c) => c.includes('channels'))).to.equal(false);
    for (const c of calls.filter(isPolicyCreate))
      expect(policyOf(c)).not.to.have.property('notificationChannels');
  });

  it('without --region counts the service in every region', async () => {
    const script = await printed(['--dir', EVENTARC, '--project', 'test-project']);
    expect(script).to.contain('resource.labels.service_name="gcs-bq-ingest" AND jsonPayload');
    expect(script).not.to.contain('resource.labels.location');
  });

  const refused: [string, string[], Record<string, string>, string][] = [
    [
      'no project',
      ['--dir', EVENTARC],
      {},
      'missing --project (or set GOOGLE_CLOUD_PROJECT or CLOUDSDK_CORE_PROJECT)',
    ],
    [
      'a bad email',
      [...ARGS, '--email', 'oncall'],
      {},
      '--email: "oncall" is not an email address',
    ],
    [
      'a bad region',
      ['--dir', EVENTARC, '--project', 'test-project', '--region', 'Europe'],
      {},
      '--region: "Europe" is not a valid region',
    ],
    [
      'no definitions',
      ['--dir', os.tmpdir(), '--project', 'test-project'],
      {},
      'no trigger definitions',
    ],
  ];
  for (const [name, args, env, message] of refused) {
    it(`refuses ${name} with one line`, async () => {
      let error: unknown;
      await printed(args, env).catch((e: unknown) => (error = e));
      expect((error as Error | undefined)?.message).to.contain(message);
    });
  }
});

describe('gcs-bq-ingest alerts --apply', () => {
  /** gcloud where `existing` lists print a name; everything else as for a new project. */
  async function apply(existing: boolean) {
    const ran: string[][] = [];
    const run = async (argv: readonly string[]): Promise<RunResult> => {
      ran.push([...argv]);
      const listed = argv[4] === 'list' && existing;
      if (argv.includes('channels') && (argv.includes('create') || listed))
        return { code: 0, stdout: `${CHANNEL}\n`, stderr: '' };
      if (listed) return { code: 0, stdout: 'projects/test-project/alertPolicies/1\n', stderr: '' };
      if (argv[3] === 'describe')
        return existing
          ? { code: 0, stdout: '', stderr: '' }
          : { code: 1, stdout: '', stderr: 'NOT_FOUND' };
      return { code: 0, stdout: '', stderr: '' };
    };
    const deps = {
      env: {},
      run,
      out: () => undefined,
      err: () => undefined,
      sleep: async () => undefined,
    };
    await alertsCommand(deps)
      .exitOverride()
      .parseAsync([...ARGS, '--apply', '--email', 'a@example.com'], { from: 'user' });
    return ran;
  }

  it('creates what is missing, with the channel it created in every policy', async () => {
    const ran = await apply(false);
    expect(ran.filter((c) => c.includes('create'))).to.have.length(6);
    for (const c of ran.filter(isPolicyCreate))
      expect(policyOf(c).notificationChannels).to.deep.equal([CHANNEL]);
  });

  it('keeps what exists, and creates nothing', async () => {
    const ran = await apply(true);
    expect(ran.filter((c) => c.includes('create'))).to.deep.equal([]);
    expect(ran).to.have.length(6);
  });
});

// --- The installed Google Cloud CLI as the judge of every printed command ---

/** Decodes each policy as gcloud itself does (`--policy`), listing fields and enum values it does not know. */
const CHECK_POLICIES = `
import json, sys
sys.path.insert(0, sys.argv[1] + '/lib/third_party')
sys.path.insert(0, sys.argv[1] + '/lib')
from googlecloudsdk.api_lib.util import apis
from googlecloudsdk.command_lib.monitoring import util
from apitools.base.protorpclite import messages
M = apis.GetMessagesModule('monitoring', 'v3')
def unknown(msg, at):
    found = [at + '.' + n for n in msg.all_unrecognized_fields()]
    for f in msg.all_fields():
        v = msg.get_assigned_value(f.name)
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, messages.Message):
                found += unknown(item, at + '.' + f.name)
    return found
print(json.dumps([unknown(util.MessageFromString(t, M.AlertPolicy, 'AlertPolicy'), 'AlertPolicy') for t in json.load(sys.stdin)]))
`;

describe('gcloud accepts every printed alerts command', function () {
  this.timeout(120_000);
  let gcloud: string;
  let config: string;
  before(function () {
    gcloud = gcloudOrSkip(this);
    config = fs.mkdtempSync(path.join(os.tmpdir(), 'gcloud-config-'));
  });
  after(() => {
    if (config) fs.rmSync(config, { recursive: true, force: true });
  });

  const variants = [ARGS, [...ARGS, '--email', 'oncall@example.com']];

  it('parses every command, without credentials (exit 1 for want of an account, never 2)', async () => {
    const commands = (
      await Promise.all(
        variants.map(async (args) => recordCommands(await printed(args), os.tmpdir())),
      )
    ).flat();
    expect(commands.length).to.be.greaterThan(20);
    const verdicts = await inBatches(commands, Math.max(2, os.cpus().length), (argv) =>
      runGcloud(gcloud, argv, isolatedEnv(config)),
    );
    const problems = verdicts.map(problem).filter((p): p is string => p !== undefined);
    expect(problems, `gcloud rejected:\n  ${problems.join('\n  ')}`).to.deep.equal([]);
  });

  it('parses the filtered subscriptions docs/notifications.md creates', async () => {
    const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'notifications.md'), 'utf8');
    const block = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .find((b) => b.includes('gcloud pubsub subscriptions create'));
    const commands = recordCommands(block ?? '', os.tmpdir());
    expect(commands.map((c) => c.find((w) => w.startsWith('--message-filter=')))).to.deep.equal([
      '--message-filter=attributes.outcome = "rejected"',
      '--message-filter=attributes.outcome = "loaded" AND attributes.dataset = "sales"',
    ]);
    const env = isolatedEnv(config);
    const verdicts = await Promise.all(commands.map((argv) => runGcloud(gcloud, argv, env)));
    expect(verdicts.map(problem)).to.deep.equal([undefined, undefined]);
  });

  it('tells a wrong flag from a well-formed command (the check itself)', async () => {
    const wrong = await runGcloud(
      gcloud,
      ['gcloud', 'alpha', 'monitoring', 'policies', 'create', '--project=p', '--policy-file=x'],
      isolatedEnv(config),
    );
    expect(wrong.code).to.equal(2);
  });

  it("decodes every policy as gcloud's own AlertPolicy message, with no field or value it does not know", async () => {
    const env = isolatedEnv(config);
    const info = execFileSync(
      gcloud,
      ['info', '--format=value(installation.sdk_root,basic.python_location)'],
      {
        env,
        encoding: 'utf8',
      },
    );
    const [root, python] = info.trim().split('\t');
    const policies = (
      await Promise.all(
        variants.map(async (args) => recordCommands(await printed(args), os.tmpdir())),
      )
    )
      .flat()
      .filter(isPolicyCreate)
      .map((c) => JSON.stringify(policyOf(c)));
    expect(policies).to.have.length(6);
    const out = execFileSync(python!, ['-c', CHECK_POLICIES, root!], {
      env,
      input: JSON.stringify(policies),
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).to.deep.equal(policies.map(() => []));
  });
});
