import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/server';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

describe('gcs-bq-ingest CLI', function () {
  this.timeout(60_000);
  let dir: string;
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: {
        ...process.env,
        LOCAL_DATA_DIR: path.join(dir, 'data'),
        INGEST_CONFIG: '',
        PUBSUB_EMULATOR_HOST: '',
        ...env,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-cli-'));
    fs.cpSync(path.join(REPO_ROOT, 'eventarc'), path.join(dir, 'eventarc'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'snap.yaml'),
      'routes:\n  - match: "snap/{table}/*.csv"\n    table: "{table}"\n    write: truncate\n  - match: "**/*.csv"\n',
    );
    for (const name of [
      'p/a.csv',
      'p/b.csv',
      'p/notes.txt',
      'snap/accounts/1.csv',
      'snap/accounts/2.csv',
    ]) {
      const file = path.join(dir, 'data', 'buckets', 'demo', name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'a\n1\n');
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const command of ['dev', 'emit', 'reprocess', 'triggers', 'tables']) {
    it(`${command} --help describes the command`, () => {
      const result = run([command, '--help']);
      expect(result.status).to.equal(0);
      expect(result.stdout).to.match(new RegExp(`^Usage: gcs-bq-ingest ${command}`));
    });
  }

  it('--version prints the package version', () => {
    const { version } = JSON.parse(
      fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'),
    ) as { version: string };
    const result = run(['--version']);
    expect(result.status).to.equal(0);
    expect(result.stdout.trim()).to.equal(version);
  });

  it('--help says each object generation loads exactly once, in coalesced jobs', () => {
    const result = run(['--help']);
    const help = result.stdout.replace(/\s+/g, ' '); // commander wraps lines
    expect(result.status).to.equal(0);
    expect(help).to.include('exactly once per object generation');
    expect(help).not.to.include('one load job per object');
    expect(result.stdout).to.match(/-V, --version/);
  });

  // no value for the trigger definitions comes from the environment of the test
  const noTriggerValues = {
    GOOGLE_CLOUD_PROJECT: '',
    CLOUDSDK_CORE_PROJECT: '',
    INGEST_REGION: '',
    CLOUDSDK_RUN_REGION: '',
    INGEST_BUCKET: '',
  };
  const errors: { args: string[]; env?: Record<string, string>; error: RegExp }[] = [
    { args: ['nonsense'], error: /unknown command 'nonsense'/ },
    {
      args: ['reprocess', '--topic', 't', '--bucket', 'demo'],
      error: /^gcs-bq-ingest: one of --name or --prefix is required$/,
    },
    {
      args: ['reprocess', '--topic', 't', '--bucket', 'demo', '--name', 'a', '--prefix', 'p'],
      error: /cannot be used with/,
    },
    {
      args: ['reprocess', '--bucket', 'demo', '--name', 'a'],
      error: /required option '--topic <topic>'/,
    },
    ...['abc', '0', '1.5', '12abc', ' 12'].map((generation) => ({
      args: ['reprocess', '--topic', 't', '--bucket', 'demo', '--name', 'p/a.csv'].concat([
        '--generation',
        generation,
        '--dry-run',
      ]),
      error: new RegExp(`^gcs-bq-ingest: --generation: "${generation}" is not a positive integer$`),
    })),
    ...[
      ['--prefix', 'p/'],
      ['--prefix', 'p/', '--expand'],
      ['--prefix', ''],
      ['--name', 'p/a.csv'],
    ].map((target) => ({
      args: ['reprocess', '--topic', 't', '--bucket', 'nope', ...target, '--dry-run'],
      error: /^gcs-bq-ingest: --bucket: bucket nope does not exist \(no folder .*buckets\/nope\)$/,
    })),
    {
      args: ['triggers'],
      env: noTriggerValues,
      error:
        /^gcs-bq-ingest: missing --project \(or set GOOGLE_CLOUD_PROJECT or CLOUDSDK_CORE_PROJECT\), --region \(or set INGEST_REGION or CLOUDSDK_RUN_REGION\), --bucket \(or set INGEST_BUCKET\)$/,
    },
    {
      args: ['triggers', '--project', 'test-project', '--bucket', 'test-landing'],
      env: noTriggerValues,
      error: /^gcs-bq-ingest: missing --region \(or set INGEST_REGION or CLOUDSDK_RUN_REGION\)$/,
    },
    {
      args: ['dev'],
      env: { LOG_LEVEL: 'verbose' },
      error:
        /^gcs-bq-ingest: configuration error: environment: LOG_LEVEL: is "verbose": must be one of trace, debug, info, warn, error, fatal, silent$/,
    },
    {
      args: ['emit', 'nowhere.csv'],
      error: /^gcs-bq-ingest: nowhere\.csv is not inside .*buckets\/<bucket>\/$/,
    },
    {
      args: ['emit', 'gs://demo/missing.csv'],
      error: /^gcs-bq-ingest: gs:\/\/demo\/missing\.csv does not exist in the local store$/,
    },
  ];
  for (const { args, env, error } of errors) {
    it(`${args.join(' ')} fails with one clear line`, () => {
      const result = run(args, env);
      expect(result.status).to.not.equal(0);
      expect(result.stderr.trim().split('\n')).to.have.length(1);
      expect(result.stderr.trim()).to.match(error);
    });
  }

  it('reprocess on the local backend without Pub/Sub points to emit --force', () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LOCAL_DATA_DIR: path.join(dir, 'data'),
      INGEST_CONFIG: '',
    };
    delete env.GOOGLE_CLOUD_PROJECT; // as on a laptop: no project, no emulator
    delete env.PUBSUB_EMULATOR_HOST;
    const args = ['reprocess', '--topic', 't', '--bucket', 'demo', '--name', 'p/a.csv', '--force'];
    const result = spawnSync(process.execPath, [CLI, ...args], {
      cwd: dir,
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).to.equal(1);
    expect(result.stderr.trim().split('\n')).to.have.length(1);
    expect(result.stderr).to.match(
      /^gcs-bq-ingest: .*Project Id.*: the local backend has no Pub\/Sub; to load an object again, run `gcs-bq-ingest emit <file> --force` while dev runs/,
    );
  });

  it('reprocess --dry-run prints the one message it would publish', () => {
    const result = run([
      'reprocess',
      '--topic',
      't',
      '--bucket',
      'demo',
      '--prefix',
      'p/',
      '--force',
      '--dry-run',
    ]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.equal('would publish {"bucket":"demo","prefix":"p/","force":true}\n');
  });

  it('reprocess --dry-run prints the one object with its generation', () => {
    const result = run([
      'reprocess',
      '--topic',
      't',
      '--bucket',
      'demo',
      '--name',
      'p/a.csv',
      '--generation',
      '1712345678901234',
      '--dry-run',
    ]);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.equal(
      'would publish {"bucket":"demo","name":"p/a.csv","generation":"1712345678901234"}\n',
    );
  });

  it('reprocess --expand lists here: one message per appending object, one per truncating destination', () => {
    const result = run(
      ['reprocess', '--topic', 't', '--bucket', 'demo', '--prefix', '', '--expand', '--dry-run'],
      {
        INGEST_CONFIG: 'snap.yaml',
      },
    );
    expect(result.status, result.stderr).to.equal(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).to.have.length(4);
    expect(lines[0]).to.match(
      /^would publish \{"bucket":"demo","name":"p\/a.csv","generation":"\d+"\}$/,
    );
    expect(lines[2]).to.match(
      /^would publish \{"objects":\[\{"bucket":"demo","name":"snap\/accounts\/1.csv".*"snap\/accounts\/2.csv"/,
    );
    expect(lines[3]).to.equal('would publish 3 messages for 4 objects under gs://demo/');
  });

  it('tables reports an empty warehouse', () => {
    const result = run(['tables']);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stdout).to.equal('no tables yet\n');
  });
});
