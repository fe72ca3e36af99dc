import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createGcsNotified } from '../../src/stores/gcs-notified';
import { createGcsStore } from '../../src/stores/gcs';
import { createLocalStore } from '../../src/stores/local';
import { createLocalNotifications } from '../../src/stores/local-notifications';
import { NOTIFIED_METADATA_KEY } from '../../src/stores/notified';
import type { ObjectStore, StoredObject } from '../../src/stores/store';
import { testNotificationRecord } from '../contract/notified-contract';
import { startGcsServer, storageClient, type GcsServer } from '../servers/gcs-server';

const BUCKET = 'landing';

async function statOf(store: ObjectStore, name: string): Promise<StoredObject> {
  const object = await store.stat(BUCKET, name);
  if (!object) throw new Error(`no object ${name}`);
  return object;
}

testNotificationRecord('Cloud Storage metadata (JSON API test server)', async () => {
  const server = await startGcsServer();
  server.createBucket(BUCKET);
  const storage = storageClient(server);
  const store = createGcsStore({ storage });
  return {
    record: createGcsNotified(storage),
    put: async (name, content) => {
      server.put(BUCKET, name, content);
      return statOf(store, name);
    },
    reopen: () => createGcsNotified(storage),
    teardown: () => server.close(),
  };
});

testNotificationRecord('notifications.jsonl (local data folder)', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'notified-'));
  const file = path.join(root, 'notifications.jsonl');
  const store = createLocalStore(root);
  let tick = 0;
  return {
    record: createLocalNotifications(file),
    put: async (name, content) => {
      const target = path.join(root, 'buckets', BUCKET, name);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, content);
      // A new generation each time, even within one millisecond.
      const at = new Date(Date.now() + ++tick * 1000);
      fs.utimesSync(target, at, at);
      return statOf(store, name);
    },
    reopen: () => createLocalNotifications(file),
    teardown: async () => fs.rmSync(root, { recursive: true, force: true }),
  };
});

describe('the Cloud Storage record', function () {
  this.timeout(30_000);
  let server: GcsServer;
  beforeEach(async () => {
    server = await startGcsServer();
    server.createBucket(BUCKET);
  });
  afterEach(() => server.close());

  it('is custom metadata naming the generation, which a copy of the object carries but does not count', async () => {
    const storage = storageClient(server);
    const store = createGcsStore({ storage });
    server.put(BUCKET, 'in/a.csv', 'id\n1\n');
    const object = await statOf(store, 'in/a.csv');
    const record = createGcsNotified(storage);
    await record.record([
      {
        topic: 'projects/p/topics/t',
        attributes: { 'ingest-key': 'k1' },
        data: {},
        recordOn: { object, key: 'k1' },
      },
    ]);
    const value = JSON.parse(server.metadataOf(BUCKET, 'in/a.csv')?.[NOTIFIED_METADATA_KEY] ?? '');
    expect(value).to.include({ key: 'k1', object: `gs://${BUCKET}/in/a.csv#${object.generation}` });
    await storage.bucket(BUCKET).file('in/a.csv').copy('in/copy.csv');
    const copy = await statOf(store, 'in/copy.csv');
    expect(server.metadataOf(BUCKET, 'in/copy.csv')).to.have.property(NOTIFIED_METADATA_KEY);
    expect(await record.sent([{ object: copy, key: 'k1' }])).to.deep.equal([false]);
  });

  it('says a deleted object was never told of, and records nothing on it', async () => {
    const storage = storageClient(server);
    server.put(BUCKET, 'in/a.csv', 'id\n1\n');
    const object = await statOf(createGcsStore({ storage }), 'in/a.csv');
    server.remove(BUCKET, 'in/a.csv');
    const record = createGcsNotified(storage);
    expect(await record.sent([{ object, key: 'k' }])).to.deep.equal([false]);
    const sent = { topic: 't', attributes: {}, data: {}, recordOn: { object, key: 'k' } };
    await record.record([sent]);
  });
});

describe('the local record, notifications.jsonl', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'notified-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
  const object = { bucket: BUCKET, name: 'a.csv', generation: '1' };

  it('is one line per message: topic, message id, attributes and JSON', async () => {
    const file = path.join(root, 'sub', 'notifications.jsonl');
    const record = createLocalNotifications(file);
    await record.record([
      {
        topic: 'projects/p/topics/t',
        messageId: '7',
        attributes: { outcome: 'loaded', 'ingest-key': 'k1' },
        data: { uri: 'gs://landing/a.csv' },
        recordOn: { object, key: 'k1' },
      },
      { topic: 'projects/p/topics/t', attributes: { 'ingest-key': 'k2' }, data: {} },
    ]);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.map((l) => (l ? JSON.parse(l) : l))).to.deep.equal([
      {
        topic: 'projects/p/topics/t',
        messageId: '7',
        attributes: { outcome: 'loaded', 'ingest-key': 'k1' },
        data: { uri: 'gs://landing/a.csv' },
      },
      { topic: 'projects/p/topics/t', attributes: { 'ingest-key': 'k2' }, data: {} },
      '',
    ]);
  });

  it('starts a new line after one a crash cut short, and forgets that one', async () => {
    const file = path.join(root, 'notifications.jsonl');
    fs.writeFileSync(
      file,
      '{"topic":"t","attributes":{"ingest-key":"k0"},"data":{}}\n{"topic":"t","attr',
    );
    const record = createLocalNotifications(file);
    expect(await record.sent([{ object, key: 'k0' }])).to.deep.equal([true]);
    const sent = { topic: 't', attributes: { 'ingest-key': 'k1' }, data: {} };
    await record.record([{ ...sent, recordOn: { object, key: 'k1' } }]);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.slice(2)).to.deep.equal([JSON.stringify(sent), '']);
    expect(await createLocalNotifications(file).sent([{ object, key: 'k1' }])).to.deep.equal([
      true,
    ]);
  });

  it('writes the lines of concurrent requests whole', async () => {
    const file = path.join(root, 'notifications.jsonl');
    const record = createLocalNotifications(file);
    const data = { reason: 'x'.repeat(20_000) };
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        record.record([{ topic: 't', attributes: { 'ingest-key': `k${i}` }, data }]),
      ),
    );
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).to.have.length(20);
    for (const line of lines) expect(JSON.parse(line)).to.have.property('data');
  });
});
