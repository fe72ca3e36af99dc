import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { applyPlan, runCommand, triggersCommand, type RunResult } from '../src/cli/triggers';
import {
  AGENT_NOT_READY,
  parseDefinition,
  planTriggers,
  renderScript,
  resolveArgv,
  resolveValues,
  shellQuote,
  type Definition,
  type Plan,
  type Values,
} from '../src/deploy';
import {
  gcloudOrSkip,
  inBatches,
  isolatedEnv,
  problem,
  recordCommands,
  runGcloud,
} from './helpers/gcloud';

const ROOT = path.resolve(__dirname, '..', '..');
const EVENTARC = path.join(ROOT, 'eventarc');
const VALUES: Values = {
  PROJECT_ID: 'test-project',
  REGION: 'europe-west1',
  BUCKET: 'test-landing',
};

function repoDefinitions(values: Values = VALUES): Definition[] {
  return fs
    .readdirSync(EVENTARC)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) =>
      parseDefinition(`eventarc/${f}`, fs.readFileSync(path.join(EVENTARC, f), 'utf8'), values),
    );
}

/** Every command of the plan, in order, with captured values from `captured`. */
function commandsOf(plan: Plan, captured: Record<string, string>): string[][] {
  return plan.sections.flatMap((section) =>
    section.steps.flatMap((step) =>
      step.kind === 'ensure'
        ? [resolveArgv(step.check, captured), resolveArgv(step.create, captured)]
        : [resolveArgv(step.argv, captured)],
    ),
  );
}

const storage = {
  name: 'ingest-storage-finalized',
  location: '${REGION}',
  event: { type: 'google.cloud.storage.object.v1.finalized', bucket: '${BUCKET}' },
  destination: { service: 'gcs-bq-ingest', region: '${REGION}', path: '/' },
  serviceAccount: 'gcs-bq-ingest-trigger@${PROJECT_ID}.iam.gserviceaccount.com',
  subscription: {
    ackDeadlineSeconds: 600,
    minRetryDelay: '10s',
    maxRetryDelay: '10m',
    maxDeliveryAttempts: 10,
    deadLetterTopic: 'ingest-dead-letter',
    deadLetterSubscription: 'ingest-dead-letter',
  },
};
type Doc = Record<string, unknown>;
/** For runs that must not wait: a retry where none is due fails the test. */
const noWait = () => Promise.reject(new Error('waited to retry where no retry is due'));
const clone = (): Doc => JSON.parse(JSON.stringify(storage)) as Doc;
const edit = (change: (d: Doc & typeof storage) => void): string => {
  const d = clone() as Doc & typeof storage;
  change(d);
  return stringify(d);
};

describe('trigger definitions', () => {
  it('parses a valid definition with its placeholders filled in', () => {
    const d = parseDefinition('x.yaml', stringify(storage), VALUES);
    expect(d).to.deep.equal({
      name: 'ingest-storage-finalized',
      location: 'europe-west1',
      event: { type: 'google.cloud.storage.object.v1.finalized', bucket: 'test-landing' },
      destination: { service: 'gcs-bq-ingest', region: 'europe-west1', path: '/' },
      serviceAccount: 'gcs-bq-ingest-trigger@test-project.iam.gserviceaccount.com',
      subscription: {
        ackDeadlineSeconds: 600,
        minRetryDelay: 10,
        maxRetryDelay: 600,
        maxDeliveryAttempts: 10,
        deadLetterTopic: 'ingest-dead-letter',
        deadLetterSubscription: 'ingest-dead-letter',
      },
    });
  });

  const invalid: { title: string; text: string; values?: Values; error: string }[] = [
    {
      title: 'a missing field',
      text: edit((d) => delete (d as Doc).name),
      error: 'x.yaml: name: is missing',
    },
    {
      title: 'a missing nested field',
      text: edit((d) => delete (d.subscription as Doc).deadLetterTopic),
      error: 'x.yaml: subscription.deadLetterTopic: is missing',
    },
    {
      title: 'an unknown field',
      text: edit((d) => Object.assign(d, { retries: 3 })),
      error: 'x.yaml: retries: is not a known field',
    },
    {
      title: 'an unknown nested field',
      text: edit((d) => Object.assign(d.destination, { port: 8080 })),
      error: 'x.yaml: destination.port: is not a known field',
    },
    {
      title: 'a field of the other event type',
      text: edit((d) => Object.assign(d.event, { topic: 'ingest-reprocess' })),
      error: 'x.yaml: event.topic: is not a known field',
    },
    {
      title: 'an unsupported event type',
      text: edit((d) => (d.event.type = 'google.cloud.storage.object.v1.deleted')),
      error: `x.yaml: event.type: Invalid discriminator value. Expected 'google.cloud.storage.object.v1.finalized' | 'google.cloud.pubsub.topic.v1.messagePublished'`,
    },
    {
      title: 'a Pub/Sub trigger without its topic',
      text: edit(
        (d) =>
          (d.event = { type: 'google.cloud.pubsub.topic.v1.messagePublished' } as typeof d.event),
      ),
      error: 'x.yaml: event.topic: is missing',
    },
    {
      title: 'a value of the wrong type',
      text: edit((d) => ((d.subscription as Doc).maxDeliveryAttempts = 'ten')),
      error: 'x.yaml: subscription.maxDeliveryAttempts: Expected number, received string',
    },
    {
      title: 'fewer delivery attempts than Pub/Sub allows',
      text: edit((d) => (d.subscription.maxDeliveryAttempts = 3)),
      error: 'x.yaml: subscription.maxDeliveryAttempts: Number must be greater than or equal to 5',
    },
    {
      title: 'a retry delay over 600 seconds',
      text: edit((d) => (d.subscription.maxRetryDelay = '11m')),
      error: 'x.yaml: subscription.maxRetryDelay: must be at most 600s',
    },
    {
      title: 'a retry delay that is not a duration',
      text: edit((d) => (d.subscription.minRetryDelay = '10 seconds')),
      error: 'x.yaml: subscription.minRetryDelay: must be a duration such as 10s or 10m',
    },
    {
      title: 'a retry delay in minutes over 600 seconds',
      text: edit((d) => (d.subscription.minRetryDelay = '20m')),
      error: 'x.yaml: subscription.minRetryDelay: must be at most 600s',
    },
    {
      title: 'a retry delay without unit over 600 seconds',
      text: edit((d) => (d.subscription.minRetryDelay = '601')),
      error: 'x.yaml: subscription.minRetryDelay: must be at most 600s',
    },
    {
      title: 'minimum over maximum, both in range',
      text: edit((d) =>
        Object.assign(d.subscription, { minRetryDelay: '5m', maxRetryDelay: '60s' }),
      ),
      error: 'x.yaml: subscription.minRetryDelay: must not be longer than maxRetryDelay',
    },
    {
      title: 'a path without its leading slash',
      text: edit((d) => (d.destination.path = 'ingest')),
      error: 'x.yaml: destination.path: must start with "/"',
    },
    {
      title: 'an unknown placeholder',
      text: edit((d) => (d.destination.service = '${SERVICE}')),
      error:
        'x.yaml: destination.service: unknown placeholder ${SERVICE} (known: ${PROJECT_ID}, ${REGION}, ${BUCKET})',
    },
    {
      title: 'a placeholder with no value',
      text: stringify(storage),
      values: { PROJECT_ID: 'test-project', REGION: 'europe-west1' },
      error: 'x.yaml: event.bucket: needs ${BUCKET}: pass --bucket or set INGEST_BUCKET',
    },
    {
      title: 'a value that makes an invalid name',
      text: stringify(storage),
      values: { ...VALUES, BUCKET: 'UPPER_case' },
      error: 'x.yaml: event.bucket: is not a valid bucket name',
    },
    { title: 'an empty file', text: '', error: 'x.yaml: name: is missing' },
    {
      title: 'not a mapping',
      text: '- a\n- b\n',
      error: 'x.yaml: (root): Expected object, received array',
    },
    {
      title: 'broken YAML',
      text: 'name: [a\n',
      error:
        'x.yaml: line 2, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    },
    {
      title: 'an unquoted value that YAML reads as an alias',
      text: stringify(storage).replace('path: /', 'path: */ingest'),
      error: `x.yaml: line 9, column 9: "*/ingest" starts with "*", which YAML reads as an alias: quote it: path: '*/ingest'`,
    },
  ];
  for (const c of invalid) {
    it(`rejects ${c.title} with one line naming the file and the field`, () => {
      expect(() => parseDefinition('x.yaml', c.text, c.values ?? VALUES)).to.throw(c.error);
      try {
        parseDefinition('x.yaml', c.text, c.values ?? VALUES);
      } catch (error) {
        expect((error as Error).message).to.equal(c.error);
      }
    });
  }

  it('the repository definitions are valid, one per trigger', () => {
    const defs = repoDefinitions();
    expect(defs.map((d) => [d.name, d.event.type])).to.deep.equal([
      ['ingest-reprocess', 'google.cloud.pubsub.topic.v1.messagePublished'],
      ['ingest-storage-finalized', 'google.cloud.storage.object.v1.finalized'],
    ]);
    for (const d of defs) {
      expect(d.destination).to.deep.equal({
        service: 'gcs-bq-ingest',
        region: 'europe-west1',
        path: '/',
      });
      expect(d.subscription.maxDeliveryAttempts, d.name).to.be.within(5, 100);
      // a delivery may last as long as the service waits for a load job (INGEST_WAIT_SECONDS=540)
      expect(d.subscription.ackDeadlineSeconds, d.name).to.be.at.least(540);
    }
  });
});

describe('placeholder values', () => {
  const cases: {
    title: string;
    flags: Values;
    env: Record<string, string>;
    expected: Values | string;
  }[] = [
    { title: 'nothing set', flags: {}, env: {}, expected: {} },
    {
      title: 'from the environment',
      flags: {},
      env: {
        GOOGLE_CLOUD_PROJECT: 'env-project',
        INGEST_REGION: 'us-east1',
        INGEST_BUCKET: 'env-bucket',
      },
      expected: { PROJECT_ID: 'env-project', REGION: 'us-east1', BUCKET: 'env-bucket' },
    },
    {
      title: "gcloud's own variables",
      flags: {},
      env: { CLOUDSDK_CORE_PROJECT: 'sdk-project', CLOUDSDK_RUN_REGION: 'asia-east1' },
      expected: { PROJECT_ID: 'sdk-project', REGION: 'asia-east1' },
    },
    {
      title: 'flags over the environment',
      flags: { PROJECT_ID: 'flag-project', REGION: 'us-west1' },
      env: { GOOGLE_CLOUD_PROJECT: 'env-project', INGEST_REGION: 'us-east1' },
      expected: { PROJECT_ID: 'flag-project', REGION: 'us-west1' },
    },
    {
      title: 'GOOGLE_CLOUD_PROJECT over CLOUDSDK_CORE_PROJECT, an empty one ignored',
      flags: {},
      env: { GOOGLE_CLOUD_PROJECT: '', CLOUDSDK_CORE_PROJECT: 'sdk-project' },
      expected: { PROJECT_ID: 'sdk-project' },
    },
    {
      title: 'an invalid flag value',
      flags: { PROJECT_ID: 'Not A Project' },
      env: {},
      expected: '--project: "Not A Project" is not a valid project id',
    },
    {
      title: 'an invalid variable',
      flags: {},
      env: { INGEST_REGION: 'us central' },
      expected: 'INGEST_REGION / CLOUDSDK_RUN_REGION: "us central" is not a valid region',
    },
  ];
  for (const c of cases) {
    it(c.title, () => {
      if (typeof c.expected === 'string') {
        expect(() => resolveValues(c.flags, c.env)).to.throw(c.expected);
      } else {
        expect(resolveValues(c.flags, c.env)).to.deep.equal(c.expected);
      }
    });
  }
});

describe('trigger plan', () => {
  const captured = {
    PROJECT_NUMBER: '123456789012',
    SUBSCRIPTION_INGEST_REPROCESS:
      'projects/test-project/subscriptions/eventarc-europe-west1-ingest-reprocess-sub-1',
    SUBSCRIPTION_INGEST_STORAGE_FINALIZED:
      'projects/test-project/subscriptions/eventarc-europe-west1-ingest-storage-finalized-sub-2',
  };
  const agent =
    '--member=serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com';

  it('turns the repository definitions into exactly these commands', () => {
    const commands = commandsOf(planTriggers(repoDefinitions(), 'test-project'), captured).map(
      (argv) => argv.join(' '),
    );
    const p = '--project=test-project';
    const where = `${p} --location=europe-west1`;
    const to =
      '--destination-run-service=gcs-bq-ingest --destination-run-region=europe-west1 --destination-run-path=/';
    const sa = '--service-account=gcs-bq-ingest-trigger@test-project.iam.gserviceaccount.com';
    const policy = `${p} --ack-deadline=600 --min-retry-delay=10s --max-retry-delay=600s --max-delivery-attempts=10 --dead-letter-topic=projects/test-project/topics/ingest-dead-letter`;
    expect(commands).to.deep.equal([
      'gcloud projects describe test-project --format=value(projectNumber)',
      `gcloud pubsub topics describe ingest-reprocess ${p} --format=none`,
      `gcloud pubsub topics create ingest-reprocess ${p}`,
      `gcloud pubsub topics describe ingest-dead-letter ${p} --format=none`,
      `gcloud pubsub topics create ingest-dead-letter ${p}`,
      `gcloud pubsub subscriptions describe ingest-dead-letter ${p} --format=none`,
      `gcloud pubsub subscriptions create ingest-dead-letter ${p} --topic=ingest-dead-letter --message-retention-duration=31d`,
      `gcloud pubsub topics add-iam-policy-binding ingest-dead-letter ${p} ${agent} --role=roles/pubsub.publisher --format=none`,
      `gcloud eventarc triggers describe ingest-reprocess ${where} --format=none`,
      `gcloud eventarc triggers create ingest-reprocess ${where} --event-filters=type=google.cloud.pubsub.topic.v1.messagePublished --transport-topic=projects/test-project/topics/ingest-reprocess ${to} ${sa}`,
      `gcloud eventarc triggers describe ingest-reprocess ${where} --format=value(transport.pubsub.subscription)`,
      `gcloud pubsub subscriptions update ${captured.SUBSCRIPTION_INGEST_REPROCESS} ${policy}`,
      `gcloud pubsub subscriptions add-iam-policy-binding ${captured.SUBSCRIPTION_INGEST_REPROCESS} ${p} ${agent} --role=roles/pubsub.subscriber --format=none`,
      `gcloud eventarc triggers describe ingest-storage-finalized ${where} --format=none`,
      `gcloud eventarc triggers create ingest-storage-finalized ${where} --event-filters=type=google.cloud.storage.object.v1.finalized --event-filters=bucket=test-landing ${to} ${sa}`,
      `gcloud eventarc triggers describe ingest-storage-finalized ${where} --format=value(transport.pubsub.subscription)`,
      `gcloud pubsub subscriptions update ${captured.SUBSCRIPTION_INGEST_STORAGE_FINALIZED} ${policy}`,
      `gcloud pubsub subscriptions add-iam-policy-binding ${captured.SUBSCRIPTION_INGEST_STORAGE_FINALIZED} ${p} ${agent} --role=roles/pubsub.subscriber --format=none`,
    ]);
  });

  it('creates a dead-letter topic shared by two triggers once', () => {
    const commands = commandsOf(planTriggers(repoDefinitions(), 'test-project'), captured);
    const creates = commands.filter(
      (argv) => argv.slice(1, 4).join(' ') === 'pubsub topics create',
    );
    expect(creates.map((argv) => argv[4])).to.deep.equal([
      'ingest-reprocess',
      'ingest-dead-letter',
    ]);
  });

  const conflicts: {
    title: string;
    change: (defs: Definition[]) => Definition[];
    error: string;
  }[] = [
    {
      title: 'two definitions of one trigger',
      change: (defs) => [...defs, defs[0] as Definition],
      error: 'two definitions name the trigger "ingest-reprocess"',
    },
    {
      title: 'one dead-letter subscription on two topics',
      change: ([a, b]) => [
        a as Definition,
        {
          ...(b as Definition),
          subscription: { ...(b as Definition).subscription, deadLetterTopic: 'other' },
        },
      ],
      error:
        'dead-letter subscription "ingest-dead-letter" is given two topics: "ingest-dead-letter" and "other"',
    },
  ];
  for (const c of conflicts) {
    it(`refuses ${c.title}`, () => {
      expect(() => planTriggers(c.change(repoDefinitions()), 'test-project')).to.throw(c.error);
    });
  }

  it('cannot use a captured value before it is captured', () => {
    expect(() => resolveArgv([['x', { ref: 'NOPE' }]], {})).to.throw(
      'NOPE was not captured before it is used',
    );
  });
});

describe('shell quoting', () => {
  const words = [
    'plain',
    '--format=value(transport.pubsub.subscription)',
    "it's",
    'two words',
    '',
    '$HOME',
    '`id`',
    '"quoted"',
    'a\\b',
    'star*',
    '~tilde',
    'semi;colon',
    'new\nline',
    '{a,b}',
  ];
  it('bash reads every quoted word back as it was', () => {
    const line = words.map(shellQuote).join(' ');
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).to.deep.equal(words);
  });
  it('leaves safe words unquoted', () => {
    expect(shellQuote('--event-filters=type=google.cloud.storage.object.v1.finalized')).to.equal(
      '--event-filters=type=google.cloud.storage.object.v1.finalized',
    );
    expect(shellQuote('a b')).to.equal("'a b'");
  });
});

/** The commands a printed script runs, in order, against a fake gcloud where nothing exists yet. */
function runPrinted(script: string): string[][] {
  return recordCommands(script, os.tmpdir());
}

async function printed(args: string[], env: Record<string, string> = {}): Promise<string> {
  let out = '';
  const deps = {
    env,
    run: () => Promise.reject(new Error('--print must not run anything')),
    out: (text: string) => (out += text),
    err: () => undefined,
    sleep: noWait,
  };
  await triggersCommand(deps).exitOverride().parseAsync(args, { from: 'user' });
  return out;
}

/** The repository's definitions with every value given as a flag. */
const args = [
  '--dir',
  EVENTARC,
  '--project',
  'test-project',
  '--region',
  'europe-west1',
  '--bucket',
  'test-landing',
];

describe('gcs-bq-ingest triggers --print', () => {
  it('prints a bash script whose commands are exactly the plan', async () => {
    const script = await printed(args);
    expect(script).to.equal(renderScript(planTriggers(repoDefinitions(), 'test-project')));
    const ran = runPrinted(script);
    const expected = commandsOf(planTriggers(repoDefinitions(), 'test-project'), {
      PROJECT_NUMBER: '123456789012',
      SUBSCRIPTION_INGEST_REPROCESS:
        'projects/test-project/subscriptions/eventarc-ingest-reprocess-sub',
      SUBSCRIPTION_INGEST_STORAGE_FINALIZED:
        'projects/test-project/subscriptions/eventarc-ingest-storage-finalized-sub',
    });
    expect(ran).to.deep.equal(expected);
  });

  it('takes the values from the environment', async () => {
    const script = await printed(['--dir', EVENTARC], {
      CLOUDSDK_CORE_PROJECT: 'test-project',
      INGEST_REGION: 'europe-west1',
      INGEST_BUCKET: 'test-landing',
    });
    expect(script).to.equal(await printed(args));
  });

  const failures: { title: string; args: string[]; env?: Record<string, string>; error: string }[] =
    [
      {
        title: 'no arguments at all',
        args: ['--dir', EVENTARC],
        error:
          'missing --project (or set GOOGLE_CLOUD_PROJECT or CLOUDSDK_CORE_PROJECT), --region (or set INGEST_REGION or CLOUDSDK_RUN_REGION), --bucket (or set INGEST_BUCKET)',
      },
      {
        title: 'no region',
        args: ['--dir', EVENTARC, '--project', 'test-project', '--bucket', 'b-landing'],
        error: 'missing --region (or set INGEST_REGION or CLOUDSDK_RUN_REGION)',
      },
      {
        title: 'no bucket',
        args: ['--dir', EVENTARC, '--project', 'test-project', '--region', 'europe-west1'],
        error: 'missing --bucket (or set INGEST_BUCKET)',
      },
      {
        title: 'no project',
        args: ['--dir', EVENTARC, '--region', 'europe-west1', '--bucket', 'b-landing'],
        error: 'missing --project (or set GOOGLE_CLOUD_PROJECT or CLOUDSDK_CORE_PROJECT)',
      },
      {
        title: 'a folder without definitions',
        args: ['--dir', os.tmpdir() + '/no-such-folder-for-triggers'],
        error: `${os.tmpdir()}/no-such-folder-for-triggers: cannot read the trigger definitions: ENOENT: no such file or directory, scandir '${os.tmpdir()}/no-such-folder-for-triggers'`,
      },
    ];
  for (const c of failures) {
    it(`stops with one clear line for ${c.title}`, async () => {
      let error: unknown;
      await printed(c.args, c.env).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(Error);
      expect((error as Error).message).to.equal(c.error);
    });
  }

  it('asks only for the values the definitions use', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggers-defs-'));
    try {
      fs.copyFileSync(path.join(EVENTARC, 'pubsub-reprocess.yaml'), path.join(dir, 'r.yaml'));
      const script = await printed(['--dir', dir, '--project', 'test-project'], {
        INGEST_REGION: 'europe-west1',
      });
      expect(script).to.contain('gcloud eventarc triggers create ingest-reprocess');
      let error: unknown;
      await printed(['--dir', dir, '--project', 'test-project']).catch((e: unknown) => (error = e));
      expect((error as Error).message).to.equal(
        'missing --region (or set INGEST_REGION or CLOUDSDK_RUN_REGION)',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not take --print and --apply together', async () => {
    const command = triggersCommand()
      .exitOverride()
      .configureOutput({ writeErr: () => undefined });
    let error: unknown;
    await command
      .parseAsync(['--print', '--apply', ...args], { from: 'user' })
      .catch((e: unknown) => (error = e));
    expect((error as { code?: string }).code).to.equal('commander.conflictingOption');
  });
});

describe('gcs-bq-ingest triggers --apply', () => {
  const plan = () => planTriggers(repoDefinitions(), 'test-project');

  /** A runner that answers from `answer` and records every command. */
  function fakeRunner(answer: (argv: readonly string[]) => RunResult) {
    const calls: string[][] = [];
    return {
      calls,
      run: (argv: readonly string[]) => {
        calls.push([...argv]);
        return Promise.resolve(answer(argv));
      },
    };
  }
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const describeValue = (argv: readonly string[]): RunResult | undefined => {
    if (argv[1] === 'projects') return ok('123456789012\n');
    if (argv.includes('--format=value(transport.pubsub.subscription)'))
      return ok(`projects/test-project/subscriptions/${argv[4]}\n`);
    return undefined;
  };

  it('runs create, then describe, then update, for resources that do not exist yet', async () => {
    const runner = fakeRunner(
      (argv) =>
        describeValue(argv) ??
        (argv[3] === 'describe' ? { code: 1, stdout: '', stderr: 'NOT_FOUND' } : ok()),
    );
    await applyPlan(plan(), {
      run: runner.run,
      out: () => undefined,
      err: () => undefined,
      sleep: noWait,
    });
    expect(runner.calls).to.deep.equal(
      commandsOf(plan(), {
        PROJECT_NUMBER: '123456789012',
        SUBSCRIPTION_INGEST_REPROCESS: 'projects/test-project/subscriptions/ingest-reprocess',
        SUBSCRIPTION_INGEST_STORAGE_FINALIZED:
          'projects/test-project/subscriptions/ingest-storage-finalized',
      }),
    );
  });

  it('keeps what exists and still sets each subscription policy', async () => {
    const runner = fakeRunner((argv) => describeValue(argv) ?? ok());
    await applyPlan(plan(), {
      run: runner.run,
      out: () => undefined,
      err: () => undefined,
      sleep: noWait,
    });
    const verbs = runner.calls.map((argv) => argv.slice(1, 4).join(' '));
    expect(verbs.filter((v) => v.endsWith(' create'))).to.deep.equal([]);
    expect(verbs.filter((v) => v === 'pubsub subscriptions update')).to.have.length(2);
  });

  it('stops at the first failure with its message', async () => {
    const runner = fakeRunner((argv) => {
      if (argv[3] === 'create' && argv[1] === 'eventarc') {
        return {
          code: 1,
          stdout: '',
          stderr:
            'ERROR: (gcloud.eventarc.triggers.create) PERMISSION_DENIED: eventarc.triggers.create\nmore\n',
        };
      }
      return (
        describeValue(argv) ??
        (argv[3] === 'describe' ? { code: 1, stdout: '', stderr: 'NOT_FOUND' } : ok())
      );
    });
    let stderr = '';
    let error: unknown;
    await applyPlan(plan(), {
      run: runner.run,
      out: () => undefined,
      err: (t) => (stderr += t),
      sleep: noWait,
    }).catch((e: unknown) => (error = e));
    expect((error as Error).message).to.equal(
      'gcloud eventarc triggers create failed: ERROR: (gcloud.eventarc.triggers.create) PERMISSION_DENIED: eventarc.triggers.create',
    );
    expect(stderr).to.contain('more');
    const last = runner.calls.at(-1) ?? [];
    expect(last.slice(0, 5)).to.deep.equal([
      'gcloud',
      'eventarc',
      'triggers',
      'create',
      'ingest-reprocess',
    ]);
  });

  it('fails when a trigger has no subscription to update', async () => {
    const runner = fakeRunner((argv) => (argv[1] === 'projects' ? ok('1\n') : ok()));
    let error: unknown;
    await applyPlan(plan(), {
      run: runner.run,
      out: () => undefined,
      err: () => undefined,
      sleep: noWait,
    }).catch((e: unknown) => (error = e));
    expect((error as Error).message).to.equal(
      'gcloud eventarc triggers describe printed nothing for SUBSCRIPTION_INGEST_REPROCESS',
    );
  });

  it('reports a gcloud that is not installed', async () => {
    const result = await runCommand(['gcloud-not-installed-here', 'x']);
    expect(result.code).to.equal(127);
    expect(result.stderr).to.contain('gcloud-not-installed-here is not installed or not on PATH');
  });
});

describe('a new project: trigger creation retried while the Eventarc service agent is provisioned', function () {
  this.timeout(60_000);
  // What Eventarc answers then (https://cloud.google.com/eventarc/docs/troubleshooting).
  const refusal = `ERROR: (gcloud.eventarc.triggers.create) PERMISSION_DENIED: ${AGENT_NOT_READY}. If you recently started to use Eventarc, it may take a few minutes before all necessary permissions are propagated to the Service Agent. Otherwise, verify that it has Eventarc Service Agent role.`;
  /** gcloud where nothing exists yet and each trigger's create is refused $FAILS times first; sleep only records. */
  const fakes = {
    gcloud: `#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG/calls"
case "$*" in
  "projects describe "*) echo 123456789012 ;;
  *"--format=value(transport.pubsub.subscription)"*) echo "projects/test-project/subscriptions/eventarc-$4-sub" ;;
  *" describe "*) exit 1 ;;
  "eventarc triggers create "*)
    n=$(( $(cat "$FAKE_LOG/refused-$4" 2>/dev/null || echo 0) + 1 ))
    if [ "$n" -le "$FAILS" ]; then echo "$n" > "$FAKE_LOG/refused-$4"; echo "$REFUSAL" >&2; exit 1; fi ;;
esac
`,
    sleep: `#!/usr/bin/env bash
echo "$1" >> "$FAKE_LOG/slept"
`,
  };
  let dir = '';
  let env: Record<string, string> = {};
  const lines = (file: string) =>
    fs.existsSync(path.join(dir, file))
      ? fs.readFileSync(path.join(dir, file), 'utf8').trim().split('\n')
      : [];
  const creates = () => lines('calls').filter((c) => c.startsWith('eventarc triggers create '));

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggers-agent-'));
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    for (const [name, text] of Object.entries(fakes))
      fs.writeFileSync(path.join(bin, name), text, { mode: 0o755 });
    env = {
      PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
      FAKE_LOG: dir,
      REFUSAL: refusal,
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function apply(fails: number): Promise<{ error?: Error; slept: number[]; out: string }> {
    const slept: number[] = [];
    let out = '';
    const runEnv = { ...env, FAILS: String(fails) };
    const deps = {
      env: {},
      run: (argv: readonly string[]) => runCommand(argv, runEnv),
      out: (text: string) => (out += text),
      err: () => undefined,
      sleep: (ms: number) => Promise.resolve(slept.push(ms)),
    };
    const error = await triggersCommand(deps)
      .exitOverride()
      .parseAsync(['--apply', ...args], { from: 'user' })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    return { error, slept, out };
  }

  it('--apply creates each trigger once the agent is ready, after 20 s and 40 s', async () => {
    const result = await apply(2);
    expect(result.error).to.equal(undefined);
    expect(result.out).to.contain('not ready yet; trying again in 20 s');
    expect(creates().map((c) => c.split(' ')[3])).to.deep.equal([
      ...Array<string>(3).fill('ingest-reprocess'),
      ...Array<string>(3).fill('ingest-storage-finalized'),
    ]);
    expect(result.slept).to.deep.equal([20_000, 40_000, 20_000, 40_000]);
    expect(result.out.trim().split('\n').at(-1)).to.equal('done');
  });

  it('--apply gives up after 5 minutes with the refusal', async () => {
    const result = await apply(9);
    expect(result.error?.message).to.contain(AGENT_NOT_READY);
    expect(result.slept).to.deep.equal([20_000, 40_000, 80_000, 160_000]);
    expect(creates()).to.have.length(5);
  });

  it('the printed script does the same', async () => {
    const script = await printed(args);
    const file = path.join(dir, 'script.sh');
    fs.writeFileSync(file, script);
    execFileSync('bash', [file], {
      env: { ...env, FAILS: '2' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    expect(creates()).to.have.length(6);
    expect(lines('slept')).to.deep.equal(['20', '40', '20', '40']);

    fs.rmSync(path.join(dir, 'calls'));
    fs.rmSync(path.join(dir, 'slept'));
    for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('refused-')))
      fs.rmSync(path.join(dir, f));
    let stderr = '';
    try {
      execFileSync('bash', [file], {
        env: { ...env, FAILS: '9' },
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
      });
    } catch (error) {
      stderr = String((error as { stderr?: string }).stderr);
    }
    expect(stderr).to.contain(AGENT_NOT_READY);
    expect(creates()).to.have.length(5);
    expect(lines('slept')).to.deep.equal(['20', '40', '80', '160']);
  });

  it('a refusal for another reason is not retried', async () => {
    env.REFUSAL =
      'ERROR: (gcloud.eventarc.triggers.create) PERMISSION_DENIED: eventarc.triggers.create';
    const result = await apply(1);
    expect(result.error?.message).to.contain('PERMISSION_DENIED: eventarc.triggers.create');
    expect(result.slept).to.deep.equal([]);
    expect(creates()).to.have.length(1);
  });
});

// --- The installed Google Cloud CLI as the judge of every printed command ---

describe('gcloud accepts every printed trigger command', function () {
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

  it('tells a wrong argument from a well-formed command (the check itself)', async () => {
    const env = isolatedEnv(config);
    const wrong = await Promise.all([
      runGcloud(
        gcloud,
        [
          'gcloud',
          'pubsub',
          'subscriptions',
          'update',
          's',
          '--max-delivery-attempts=3',
          '--dead-letter-topic=t',
          '--project=test-project',
        ],
        env,
      ),
      runGcloud(
        gcloud,
        [
          'gcloud',
          'eventarc',
          'triggers',
          'create',
          't',
          '--location=us-central1',
          '--destination-run-service=s',
          '--bogus-flag=1',
          '--project=test-project',
        ],
        env,
      ),
      runGcloud(
        gcloud,
        [
          'gcloud',
          'pubsub',
          'subscriptions',
          'update',
          's',
          '--max-delivery-attempts=5',
          '--project=test-project',
        ],
        env,
      ),
    ]);
    for (const v of wrong) expect(problem(v), v.argv.join(' ')).to.be.a('string');
    const right = await runGcloud(
      gcloud,
      ['gcloud', 'pubsub', 'topics', 'create', 't', '--project=test-project'],
      env,
    );
    expect(problem(right)).to.equal(undefined);
  });

  it('parses every command of the printed script, each in a few seconds, without credentials', async () => {
    const script = await printed(args);
    const commands = runPrinted(script);
    expect(commands.length).to.be.greaterThan(10);
    const started = Date.now();
    // one gcloud per CPU: each call's own time then says whether it waited on something
    const parallel = Math.max(2, os.cpus().length);
    const verdicts = await inBatches(commands, parallel, (argv) =>
      runGcloud(gcloud, argv, isolatedEnv(config)),
    );
    const problems = verdicts.map(problem).filter((p): p is string => p !== undefined);
    expect(problems, `gcloud rejected:\n  ${problems.join('\n  ')}`).to.deep.equal([]);
    const slowest = Math.max(...verdicts.map((v) => v.ms));
    expect(slowest, 'a gcloud call this slow is probably waiting on the network').to.be.below(
      20_000,
    );
    console.log(
      `    ${verdicts.length} commands checked in ${Date.now() - started} ms (slowest ${slowest} ms)`,
    );
  });
});
