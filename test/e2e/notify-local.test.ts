import { expect } from 'chai';
import { PubSub, type Message } from '@google-cloud/pubsub';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { finalizedEvent, sendEvent } from '../../src/cli/events';
import type { ObjectResult } from '../../src/objects/outcomes';
import { createLocalStore } from '../../src/stores/local';
import {
  emulatorUnavailable,
  startPubSubEmulator,
  type PubSubEmulator,
} from '../helpers/pubsub-emulator';
import { startReceiver, type RunningServer } from '../helpers/server';
import { skipSuite } from '../helpers/skips';

const PROJECT = 'test-project';
const CONFIG = `
notify: {topic: projects/${PROJECT}/topics/outcomes, outcomes: [loaded, rejected, skipped]}
routes:
  - match: "in/*.csv"
  - match: "quiet/*.csv"
    notify: false
`;

interface Line {
  topic: string;
  messageId?: string;
  attributes: Record<string, string>;
  data: Record<string, unknown>;
}

/** A local data folder, its ingest.yaml, and a receiver on it. */
function localSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-notify-'));
  fs.writeFileSync(path.join(dir, 'ingest.yaml'), CONFIG);
  const data = path.join(dir, 'data');
  const env = { LOCAL_DATA_DIR: data, INGEST_CONFIG: path.join(dir, 'ingest.yaml') };
  return {
    dir,
    start: (extra: Record<string, string> = {}) => startReceiver({ ...env, ...extra }, dir),
    async emit(server: RunningServer, name: string) {
      const file = path.join(data, 'buckets', 'demo', name);
      if (!fs.existsSync(file)) throw new Error(`no ${file}`);
      const object = await createLocalStore(data).stat('demo', name);
      const answer = await sendEvent(server.url, finalizedEvent(object!));
      expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
      return answer.body as { objects: ObjectResult[] };
    },
    put(name: string, content: string) {
      const file = path.join(data, 'buckets', 'demo', name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
    },
    lines(): Line[] {
      const file = path.join(data, 'notifications.jsonl');
      if (!fs.existsSync(file)) return [];
      const text = fs.readFileSync(file, 'utf8');
      return text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Line);
    },
  };
}

describe('end to end: outcome notifications on the local backend', function () {
  this.timeout(120_000);
  let local: ReturnType<typeof localSetup>;
  let server: RunningServer | undefined;
  beforeEach(() => {
    local = localSetup();
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    fs.rmSync(local.dir, { recursive: true, force: true });
  });

  it('appends each message to notifications.jsonl, and the status page says which outcomes were notified', async () => {
    server = await local.start();
    local.put('in/good.csv', 'a,b\n1,2\n');
    local.put('in/bad.csv', 'a,b\n1,2,3\n');
    local.put('quiet/good.csv', 'a,b\n1,2\n');
    local.put('in/notes.txt', 'x');
    for (const name of ['in/good.csv', 'in/bad.csv', 'quiet/good.csv', 'in/notes.txt'])
      await local.emit(server, name);
    const lines = local.lines();
    expect(lines.map((l) => [l.data.uri, l.attributes.outcome])).to.deep.equal([
      ['gs://demo/in/good.csv', 'loaded'],
      ['gs://demo/in/bad.csv', 'rejected'],
      ['gs://demo/in/notes.txt', 'skipped'],
    ]);
    expect(lines[0]).to.deep.include({ topic: `projects/${PROJECT}/topics/outcomes` });
    expect(lines[0]).not.to.have.property('messageId');
    expect(lines[0]?.attributes).to.include({ bucket: 'demo', dataset: 'ingest', table: 'good' });
    expect(lines[0]?.attributes['ingest-key']).to.match(/^[0-9a-f]{64}$/);
    expect(lines[1]?.data.reason).to.match(/Found: 3/);

    const status = (await (await fetch(`${server.url}status/outcomes`)).json()) as {
      outcomes: { uri: string; outcome: string; notified?: boolean }[];
    };
    const notified = new Map(status.outcomes.map((o) => [o.uri, o.notified ?? false]));
    expect(Object.fromEntries(notified)).to.deep.equal({
      'gs://demo/in/good.csv': true,
      'gs://demo/in/bad.csv': true,
      'gs://demo/quiet/good.csv': false,
      'gs://demo/in/notes.txt': true,
    });
    const page = await (await fetch(server.url, { headers: { accept: 'text/html' } })).text();
    expect(page).to.include('<th title="a notification of the outcome went out');
  });

  it('sends nothing again for a duplicate, also after a restart', async () => {
    server = await local.start();
    local.put('in/good.csv', 'a,b\n1,2\n');
    expect((await local.emit(server, 'in/good.csv')).objects[0]?.outcome).to.equal('loaded');
    expect((await local.emit(server, 'in/good.csv')).objects[0]).to.deep.include({
      outcome: 'duplicate',
    });
    await server.stop();
    server = await local.start();
    const again = await local.emit(server, 'in/good.csv');
    expect(again.objects[0]).to.include({ outcome: 'duplicate' });
    expect(again.objects[0]).not.to.have.property('notified');
    expect(local.lines()).to.have.length(1);
  });
});

describe('end to end: outcome notifications on the local backend with PUBSUB_EMULATOR_HOST', function () {
  this.timeout(120_000);
  let emulator: PubSubEmulator | undefined;
  let server: RunningServer | undefined;
  let pubsub: PubSub | undefined;
  let local: ReturnType<typeof localSetup> | undefined;
  const previousHost = process.env.PUBSUB_EMULATOR_HOST;

  before(function () {
    const missing = emulatorUnavailable();
    if (missing) {
      if (process.env.REQUIRE_GCLOUD === '1') throw new Error(`REQUIRE_GCLOUD=1 but ${missing}`);
      skipSuite(this, missing, 'set REQUIRE_GCLOUD=1 to fail instead');
    }
  });
  after(async () => {
    await pubsub?.close();
    await server?.stop();
    await emulator?.stop();
    if (local) fs.rmSync(local.dir, { recursive: true, force: true });
    if (previousHost === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = previousHost;
  });

  it('publishes to the emulator and appends the same message, with its id, to notifications.jsonl', async () => {
    emulator = await startPubSubEmulator(PROJECT);
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    pubsub = new PubSub({ projectId: PROJECT });
    const [topic] = await pubsub.createTopic('outcomes');
    const [subscription] = await topic.createSubscription('outcomes-all');
    const received: { id: string; attributes: Record<string, string>; data: unknown }[] = [];
    subscription.on('message', (m: Message) => {
      received.push({
        id: m.id,
        attributes: { ...m.attributes },
        data: JSON.parse(String(m.data)),
      });
      m.ack();
    });
    local = localSetup();
    server = await local.start({ PUBSUB_EMULATOR_HOST: emulator.host });
    local.put('in/good.csv', 'a,b\n1,2\n');
    expect((await local.emit(server, 'in/good.csv')).objects[0]?.notified).to.equal(true);
    const deadline = Date.now() + 30_000;
    while (received.length < 1 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await subscription.close();
    const [line] = local.lines();
    expect(received).to.deep.equal([
      { id: line?.messageId, attributes: line?.attributes, data: line?.data },
    ]);
  });
});
