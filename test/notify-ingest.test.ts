import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../src/config';
import { TransientError } from '../src/core/errors';
import { ingest, type Services } from '../src/ingest';
import type { ObjectResult } from '../src/objects/outcomes';
import type { OutgoingMessage, Publisher } from '../src/objects/publisher';
import { createLocalNotifications } from '../src/stores/local-notifications';
import { MemoryStore, MemoryWarehouse, memoryServices } from './fakes/memory';

const TOPIC = 'projects/p/topics/outcomes';
const YAML = `
notify: {topic: ${TOPIC}}
routes:
  - match: "typed/*.csv"
    schema: schema.json
  - match: "**/*.csv"
`;
const SCHEMA = JSON.stringify([
  { name: 'id', type: 'INT64' },
  { name: 'name', type: 'STRING' },
]);

/** Pub/Sub as a list; `failing` refuses every publish as the client does after its retries. */
class FlakyPublisher implements Publisher {
  readonly published: OutgoingMessage[] = [];
  readonly attempted: OutgoingMessage[] = [];
  failing = false;
  async publish(_topic: string, messages: OutgoingMessage[]): Promise<string[]> {
    this.attempted.push(...messages);
    if (this.failing) throw new TransientError('publishing failed: 14 UNAVAILABLE');
    this.published.push(...messages);
    return messages.map((_, i) => `m${this.published.length - messages.length + i + 1}`);
  }
  async close(): Promise<void> {}
}

describe('ingest tells the outcomes notify asks for', function () {
  this.timeout(20_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-ingest-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function setup(env: Record<string, string> = { INGEST_BACKEND: 'gcp' }) {
    const config = loadConfig(env, (file) => {
      if (file === 'ingest.yaml') return YAML;
      if (file.endsWith('schema.json')) return SCHEMA;
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    });
    const store = new MemoryStore();
    const warehouse = new MemoryWarehouse(store);
    const publisher = new FlakyPublisher();
    const file = path.join(dir, 'notifications.jsonl');
    const services: Services = {
      ...memoryServices(config, store, warehouse, { publisher }),
      notified: createLocalNotifications(file),
    };
    const event = async (...names: string[]) => {
      const objects = await Promise.all(names.map((n) => store.stat('landing', n)));
      return ingest(
        { objects: objects.map((o) => o!), ignored: [], force: false },
        services,
        Date.now() + 10_000,
      );
    };
    const lines = () =>
      fs.existsSync(file)
        ? fs
            .readFileSync(file, 'utf8')
            .trimEnd()
            .split('\n')
            .map((l) => JSON.parse(l) as { attributes: Record<string, string>; messageId?: string })
        : [];
    return { store, warehouse, publisher, event, lines };
  }
  const outcomesOf = (messages: OutgoingMessage[]) =>
    messages.map((m) => (m.json as ObjectResult).outcome);

  it('one message for a loaded object and one for a rejected one, published and recorded', async () => {
    const { store, publisher, event, lines } = setup();
    store.put('landing', 'in/good.csv', 'id,name\n1,a\n');
    store.put('landing', 'typed/bad.csv', 'id,other\n1,a\n');
    const result = await event('in/good.csv', 'typed/bad.csv');
    expect(result.objects.map((o) => [o.outcome, o.notified])).to.deep.equal([
      ['loaded', true],
      ['rejected', true],
    ]);
    expect(outcomesOf(publisher.published)).to.deep.equal(['loaded', 'rejected']);
    expect(lines().map((l) => [l.attributes.outcome, l.messageId])).to.deep.equal([
      ['loaded', 'm1'],
      ['rejected', 'm2'],
    ]);
  });

  it('a failed publish answers 503 and loads nothing again; the redelivery tells it once, under the same key', async () => {
    const { store, warehouse, publisher, event, lines } = setup();
    store.put('landing', 'in/good.csv', 'id,name\n1,a\n');
    publisher.failing = true;
    let caught: unknown;
    await event('in/good.csv').catch((error: unknown) => (caught = error));
    expect(caught).to.be.instanceOf(TransientError);
    expect((caught as Error).message).to.match(/outcome notification\(s\) not published/);
    expect(lines()).to.deep.equal([]);
    const key = publisher.attempted[0]?.attributes?.['ingest-key'];
    expect(key).to.match(/^[0-9a-f]{64}$/);

    publisher.failing = false;
    const again = await event('in/good.csv');
    expect(again.objects[0]).to.include({ outcome: 'duplicate', notified: true });
    expect(publisher.published.map((m) => m.attributes?.['ingest-key'])).to.deep.equal([key]);
    expect(outcomesOf(publisher.published)).to.deep.equal(['loaded']);

    // A plain duplicate once the notification went out tells nothing.
    const third = await event('in/good.csv');
    expect(third.objects[0]?.outcome).to.equal('duplicate');
    expect(third.objects[0]).not.to.have.property('notified');
    expect(publisher.published).to.have.length(1);
    expect(lines()).to.have.length(1);
    expect(warehouse.jobs.filter((j) => j.sources[0]?.name === 'in/good.csv')).to.have.length(1);
  });

  it('a rejection told once is not told again when the object is sent again', async () => {
    const { store, publisher, event } = setup();
    store.put('landing', 'typed/bad.csv', 'id,other\n1,a\n');
    await event('typed/bad.csv');
    const again = await event('typed/bad.csv');
    expect(again.objects[0]?.outcome).to.equal('rejected');
    expect(again.objects[0]).not.to.have.property('notified');
    expect(outcomesOf(publisher.published)).to.deep.equal(['rejected']);
  });

  it('tells the outcomes settled before a transient failure of another object, then answers 503', async () => {
    const { store, warehouse, publisher, event } = setup();
    store.put('landing', 'in/good.csv', 'id,name\n1,a\n');
    store.put('landing', 'in/later.csv', 'id,name\n2,b\n');
    warehouse.script = (job) =>
      job.sources.some((s) => s.name === 'in/later.csv')
        ? new TransientError('backendError')
        : undefined;
    let caught: unknown;
    await event('in/good.csv', 'in/later.csv').catch((error: unknown) => (caught = error));
    expect(caught).to.be.instanceOf(TransientError);
    expect(publisher.published.map((m) => (m.json as ObjectResult).uri)).to.deep.equal([
      'gs://landing/in/good.csv',
    ]);
  });

  it('locally without an emulator only appends to notifications.jsonl; with one it publishes too', async () => {
    const local = setup({});
    local.store.put('landing', 'in/good.csv', 'id,name\n1,a\n');
    const result = await local.event('in/good.csv');
    expect(result.objects[0]?.notified).to.equal(true);
    expect(local.publisher.attempted).to.deep.equal([]);
    expect(local.lines().map((l) => [l.attributes.outcome, l.messageId])).to.deep.equal([
      ['loaded', undefined],
    ]);

    fs.rmSync(path.join(dir, 'notifications.jsonl'));
    const emulated = setup({ PUBSUB_EMULATOR_HOST: '127.0.0.1:8085' });
    emulated.store.put('landing', 'in/good.csv', 'id,name\n1,a\n');
    await emulated.event('in/good.csv');
    expect(outcomesOf(emulated.publisher.published)).to.deep.equal(['loaded']);
    expect(emulated.lines().map((l) => l.messageId)).to.deep.equal(['m1']);
  });

  it('tells nothing of a skipped object by default', async () => {
    const { store, publisher, event, lines } = setup({ INGEST_BACKEND: 'gcp' });
    store.put('landing', 'quiet.txt', 'x');
    const result = await event('quiet.txt');
    expect(result.objects[0]?.outcome).to.equal('skipped');
    expect(publisher.attempted).to.deep.equal([]);
    expect(lines()).to.deep.equal([]);
  });
});
