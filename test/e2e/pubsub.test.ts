import { expect } from 'chai';
import { PubSub } from '@google-cloud/pubsub';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { queryDuckDb } from '../helpers/duckdb';
import { skipSuite } from '../helpers/skips';
import {
  emulatorUnavailable,
  startPubSubEmulator,
  type PubSubEmulator,
} from '../helpers/pubsub-emulator';
import { REPO_ROOT, startReceiver, type RunningServer } from '../helpers/server';

const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const PROJECT = 'test-project';

interface LogLine {
  severity: string;
  message: string;
  uri?: string;
  outcome?: string;
  status?: number;
}

describe('end to end: reprocessing through the Pub/Sub emulator', function () {
  this.timeout(180_000);
  let dir: string;
  let emulator: PubSubEmulator | undefined;
  let server: RunningServer | undefined;
  let pubsub: PubSub;
  const previousHost = process.env.PUBSUB_EMULATOR_HOST;

  const logs = (): LogLine[] =>
    (server?.output() ?? '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  const outcomes = (uri: string) =>
    logs()
      .filter((l) => l.uri === uri)
      .map((l) => l.outcome);
  async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 60_000) {
    const deadline = Date.now() + ms;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  function put(name: string, content: string) {
    const file = path.join(dir, 'data', 'buckets', 'demo', name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
  }
  function reprocess(...args: string[]) {
    const result = spawnSync(
      process.execPath,
      [CLI, 'reprocess', '--topic', 'reprocess', '--bucket', 'demo', ...args],
      {
        cwd: dir,
        env: {
          ...process.env,
          PUBSUB_EMULATOR_HOST: emulator?.host,
          GOOGLE_CLOUD_PROJECT: PROJECT,
          LOCAL_DATA_DIR: path.join(dir, 'data'),
          INGEST_CONFIG: path.join(dir, 'ingest.yaml'),
        },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(result.status, result.stderr).to.equal(0);
    return result.stdout;
  }
  const ledger = async (like: string) =>
    Number(
      (
        await queryDuckDb(
          path.join(dir, 'data', 'warehouse.duckdb'),
          // Object generations loaded (a coalesced job holds several).
          `SELECT count(*) AS n FROM (SELECT unnest(uris) AS uri FROM _ingest.loads) WHERE uri LIKE '${like}'`,
        )
      )[0]?.n,
    );

  before(async function () {
    const missing = emulatorUnavailable();
    if (missing) {
      if (process.env.REQUIRE_GCLOUD === '1') throw new Error(`REQUIRE_GCLOUD=1 but ${missing}`);
      skipSuite(this, missing, 'set REQUIRE_GCLOUD=1 to fail instead');
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-pubsub-'));
    fs.writeFileSync(
      path.join(dir, 'ingest.yaml'),
      `reprocess: {topic: projects/${PROJECT}/topics/reprocess, inlineLimit: 100}\nroutes:\n  - match: "many/*.csv"\n    table: many\n  - match: "**/*.csv"\n`,
    );
    emulator = await startPubSubEmulator(PROJECT);
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    server = await startReceiver(
      {
        LOCAL_DATA_DIR: path.join(dir, 'data'),
        INGEST_CONFIG: path.join(dir, 'ingest.yaml'),
        PUBSUB_EMULATOR_HOST: emulator.host,
        LOG_LEVEL: 'info',
        GOOGLE_CLOUD_PROJECT: PROJECT,
      },
      dir,
    );
    pubsub = new PubSub({ projectId: PROJECT });
    const [topic] = await pubsub.createTopic('reprocess');
    await topic.createSubscription('reprocess-push', {
      pushConfig: { pushEndpoint: server.url },
      ackDeadlineSeconds: 60,
    });
  });

  after(async () => {
    await pubsub?.close();
    await server?.stop();
    await emulator?.stop();
    if (previousHost === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = previousHost;
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an unforced reprocess of a loaded object reports duplicate; a forced one loads again, once', async () => {
    put('one.csv', 'a,b\n1,2\n');
    const uri = 'gs://demo/one.csv';
    expect(reprocess('--name', 'one.csv')).to.match(
      /^published \S+: \{"bucket":"demo","name":"one.csv"\}/,
    );
    await until('the first load', () => outcomes(uri).includes('loaded'));
    reprocess('--name', 'one.csv');
    await until('the duplicate', () => outcomes(uri).includes('duplicate'));
    expect(outcomes(uri)).to.deep.equal(['loaded', 'duplicate']);

    reprocess('--name', 'one.csv', '--force');
    await until('the forced load', () => outcomes(uri).filter((o) => o === 'loaded').length === 2);
    expect(await ledger('%one.csv%')).to.equal(2);
    const rows = await queryDuckDb(
      path.join(dir, 'data', 'warehouse.duckdb'),
      'SELECT count(*) AS n FROM ingest.one',
    );
    expect(Number(rows[0]?.n)).to.equal(2);
  });

  it('fans a prefix of 250 objects out and loads every one exactly once', async () => {
    for (let i = 0; i < 250; i++) put(`many/${String(i).padStart(3, '0')}.csv`, `a,b\n${i},x\n`);
    const started = Date.now();
    expect(reprocess('--prefix', 'many/')).to.match(/"prefix":"many\/"/);
    const loadedMany = () =>
      logs().filter((l) => l.uri?.startsWith('gs://demo/many/') && l.outcome === 'loaded').length;
    await until('250 loads', () => loadedMany() >= 250, 120_000);
    console.log(`      250 objects fanned out and loaded in ${Date.now() - started} ms`);
    const queued = logs().filter(
      (l) => l.uri?.startsWith('gs://demo/many/') && l.outcome === 'queued',
    );
    expect(queued).to.have.length(250);
    await new Promise((r) => setTimeout(r, 1000)); // any stray redelivery would show up now
    expect(loadedMany()).to.equal(250);
    expect(await ledger('%/many/%')).to.equal(250);
    const rows = await queryDuckDb(
      path.join(dir, 'data', 'warehouse.duckdb'),
      'SELECT count(*) AS n, count(DISTINCT a) AS d FROM ingest.many',
    );
    expect(rows[0]).to.deep.equal({ n: '250', d: '250' });
  });

  it('answers 400 to a malformed message, which the emulator then redelivers', async () => {
    const [poison] = await pubsub.createTopic('poison');
    const subscription = (
      await poison.createSubscription('poison-push', { pushConfig: { pushEndpoint: server?.url } })
    )[0];
    await poison.publishMessage({ data: Buffer.from('{"bucket": "demo", "name": ') });
    const rejected = () =>
      logs().filter((l) => l.status === 400 && /message\.data: not valid JSON/.test(l.message))
        .length;
    await until('two deliveries of the malformed message', () => rejected() >= 2, 90_000);
    await subscription.delete();
    expect(rejected()).to.be.at.least(2);
  });
});
