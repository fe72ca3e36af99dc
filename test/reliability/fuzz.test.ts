import { expect } from 'chai';
import fc from 'fast-check';
import { Writable } from 'node:stream';
import { createReceiver } from '../../src/receiver/app';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/receiver/log';
import type { ObjectStore, StoredObject } from '../../src/stores/store';
import { MemoryStore, MemoryWarehouse, memoryServices } from '../fakes/memory';
import { PUBSUB_TYPE, STORAGE_TYPE } from '../helpers/events';
import { post, startReceiver, type RunningServer } from '../helpers/server';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ALLOWED = 'landing';
const HOSTILE_NAMES = [
  '../a.csv',
  'a/../../b.csv',
  '/etc/passwd',
  '..\\..\\a.csv',
  'a\\b.csv',
  '%2e%2e/x.csv',
  '%2E%2E%2Fx.csv',
  'a\u0000.csv',
  'C:/x.csv',
  './a.csv',
  'a/./b.csv',
  'a//b.csv',
  '',
  '.',
  '..',
  'x'.repeat(1100),
  'a\nb.csv',
  '_quarantine/a.csv',
  'sales/`drop`/a.csv',
  "sales/o'x/a.csv",
  'sales/a;b/a.csv',
  'sales/a.b/a.csv',
  'sales/оrders/a.csv',
  'ok.csv',
  'in/ok.csv.gz',
];
const name = fc.oneof(
  fc.constantFrom(...HOSTILE_NAMES),
  fc.string({ maxLength: 40 }),
  fc.stringMatching(/^[a-z0-9/._%\\-]{1,30}$/),
);
const bucket = fc.oneof(
  fc.constant(ALLOWED),
  fc.constantFrom('other-bucket', 'Landing', 'a', '../landing', ''),
  fc.string({ maxLength: 10 }),
);
const generation = fc.oneof(
  fc.bigInt({ min: 1n, max: 10n ** 19n }).map(String),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.constant(undefined),
);
const objectResource = fc.record(
  {
    bucket,
    name,
    generation,
    size: fc.oneof(fc.nat().map(String), fc.integer(), fc.string({ maxLength: 4 })),
    contentType: fc.string({ maxLength: 10 }),
  },
  { requiredKeys: [] },
);
const message = fc.oneof(
  fc.record(
    { bucket, name, generation, force: fc.boolean() },
    { requiredKeys: ['bucket', 'name'] },
  ),
  fc.record(
    { bucket, prefix: fc.oneof(name, fc.constant('')), force: fc.boolean() },
    { requiredKeys: ['bucket', 'prefix'] },
  ),
  fc.record({
    objects: fc.array(fc.record({ bucket, name, generation }, { requiredKeys: [] }), {
      maxLength: 4,
    }),
    force: fc.boolean(),
  }),
  fc.jsonValue(),
);
const base64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : (JSON.stringify(value) ?? '')).toString('base64');
const pubsubData = fc.record(
  {
    message: fc.record(
      {
        data: fc.oneof(
          message.map(base64),
          fc.string({ maxLength: 30 }),
          fc.uint8Array({ maxLength: 30 }).map((b) => Buffer.from(b).toString('base64')),
        ),
        attributes: fc.oneof(
          fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
          fc.record({
            eventType: fc.constantFrom('OBJECT_FINALIZE', 'OBJECT_DELETE', 'X'),
            bucketId: bucket,
            objectId: name,
            objectGeneration: fc.string({ maxLength: 6 }),
          }),
        ),
        messageId: fc.oneof(fc.nat().map(String), fc.string({ maxLength: 6 })),
      },
      { requiredKeys: [] },
    ),
    subscription: fc.string({ maxLength: 10 }),
  },
  { requiredKeys: [] },
);
const data = fc.oneof(objectResource, pubsubData, fc.jsonValue());
const type = fc.oneof(fc.constantFrom(STORAGE_TYPE, PUBSUB_TYPE), fc.string({ maxLength: 20 }));
const ceHeaders = fc.record(
  {
    'ce-specversion': fc.oneof(fc.constant('1.0'), fc.string({ maxLength: 4 })),
    'ce-id': fc.string({ maxLength: 8 }),
    'ce-source': fc.string({ maxLength: 8 }),
    'ce-type': type,
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/octet-stream'),
  },
  { requiredKeys: [] },
);
// Mostly well-formed requests, so that the generated set also reaches routing, the store and loading.
const plausibleName = fc.oneof(
  fc.constantFrom(...HOSTILE_NAMES),
  fc.constantFrom('ok.csv', 'a.csv', 'sales/orders/a.csv', 'in/ok.csv.gz', 'missing.csv'),
);
const plausibleBucket = fc.constantFrom(ALLOWED, ALLOWED, 'other-bucket');
const plausibleGeneration = fc.oneof(
  fc.constantFrom('1000000', '1000001', '1000002', '1000003', '1000004'),
  fc.bigInt({ min: 1n, max: 10n ** 12n }).map(String),
);
const storageEvent = fc
  .record({
    bucket: plausibleBucket,
    name: plausibleName,
    generation: plausibleGeneration,
    size: fc.constantFrom('8', '0', 8),
  })
  .map((data) => ({
    headers: {
      'ce-specversion': '1.0',
      'ce-id': '1',
      'ce-source': '//storage',
      'ce-type': STORAGE_TYPE,
      'content-type': 'application/json',
    },
    body: JSON.stringify(data),
  }));
const plausibleMessage = fc.oneof(
  fc.record({ bucket: plausibleBucket, name: plausibleName, force: fc.boolean() }),
  fc.record({ bucket: plausibleBucket, prefix: fc.constantFrom('', 'sales/', 'in/', '../', 'x') }),
  fc.record({
    objects: fc.array(fc.record({ bucket: plausibleBucket, name: plausibleName }), {
      minLength: 1,
      maxLength: 3,
    }),
  }),
);
const pubsubEvent = plausibleMessage.map((m) => ({
  headers: {
    'ce-specversion': '1.0',
    'ce-id': '2',
    'ce-source': '//pubsub',
    'ce-type': PUBSUB_TYPE,
    'content-type': 'application/json',
  },
  body: JSON.stringify({ message: { data: base64(m), messageId: '7' }, subscription: 's' }),
}));
const request = fc.oneof(
  { arbitrary: storageEvent, weight: 3 },
  { arbitrary: pubsubEvent, weight: 3 },
  fc.record({ headers: ceHeaders, body: data.map((d) => JSON.stringify(d) ?? '') }),
  fc.record({
    headers: fc.constant({ 'content-type': 'application/cloudevents+json' }),
    body: fc
      .record(
        {
          specversion: fc.oneof(fc.constant('1.0'), fc.string()),
          id: fc.string(),
          source: fc.string(),
          type,
          data,
        },
        { requiredKeys: [] },
      )
      .map((e) => JSON.stringify(e)),
  }),
  fc.record({
    headers: fc.constant({ 'content-type': 'application/json' }),
    body: pubsubData.map((p) => JSON.stringify(p)),
  }),
  fc.record({
    headers: fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), {
      maxKeys: 4,
    }),
    body: fc.string({ maxLength: 200 }),
  }),
  fc.record({
    headers: fc.constant({}),
    body: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  }),
);

/** Records every bucket and name the service asks the store about. */
function recording(store: MemoryStore, touched: string[]): ObjectStore {
  const note = (b: string, n: string, kind = 'name') => touched.push(`${b}\u0001${n}\u0001${kind}`);
  return {
    stat: (b, n) => (note(b, n), store.stat(b, n)),
    readHead: (o: StoredObject, max) => (note(o.bucket, o.name), store.readHead(o, max)),
    list: (b, p) => (note(b, p, 'prefix'), store.list(b, p)),
    copyTo: (o, target, metadata) => (note(o.bucket, target), store.copyTo(o, target, metadata)),
  };
}

describe('fuzzing the receiver', function () {
  this.timeout(300_000);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));

  it('answers 6,000 generated requests with 200, 400, 413 or 503, never touching outside the allowlist or a name Cloud Storage refuses', async () => {
    const config = loadConfig({}, (file) => {
      if (file === 'ingest.yaml')
        return `buckets: [${ALLOWED}]\nreprocess: {inlineLimit: 2}\nroutes:\n  - match: "sales/{table}/*.csv"\n    table: "{table}"\n  - match: "**/*.csv"\n  - match: "**/*.csv.gz"\n`;
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    });
    const memory = new MemoryStore();
    for (const n of ['ok.csv', 'in/ok.csv.gz', 'sales/orders/a.csv', 'a.csv'])
      memory.put(ALLOWED, n, 'a,b\n1,2\n');
    memory.put('other-bucket', 'ok.csv', 'a,b\n1,2\n');
    const touched: string[] = [];
    const services = memoryServices(config, memory, new MemoryWarehouse(memory), {
      view: recording(memory, touched),
    });
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    const receiver = createReceiver(config, async () => services, createLogger('info', silent));
    const statuses = new Map<number, number>();

    await fc.assert(
      fc.asyncProperty(request, async ({ headers, body }) => {
        const answer = await receiver.respond({
          method: 'POST',
          url: '/',
          headers,
          rawBody: Buffer.from(body, 'latin1'),
        });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        expect([200, 400, 413, 503]).to.include(answer.status);
        expect(answer.body).to.be.an('object');
        if (answer.status !== 200)
          expect((answer.body as { error: string }).error)
            .to.be.a('string')
            .and.not.match(/\n\s+at /);
        for (const entry of touched.splice(0)) {
          const [b, n = '', kind] = entry.split('\u0001');
          expect(b).to.equal(ALLOWED);
          // Only names Cloud Storage allows reach a store (the local one keeps them inside its folder).
          expect(n).to.not.match(/[\r\n]/);
          expect(Buffer.byteLength(n)).to.be.at.most(1024);
          // A listing prefix may be "." (names that start with a dot); an object name may not.
          if (kind === 'name') expect(['.', '..']).to.not.include(n);
        }
      }),
      { numRuns: 6_000 },
    );
    console.log(`      statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(statuses.get(200)).to.be.greaterThan(100);
    expect(statuses.get(400)).to.be.greaterThan(100);
    expect(unhandled).to.deep.equal([]);
  });

  describe('over HTTP, against the real server', () => {
    let dir: string;
    let server: RunningServer;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-fuzz-'));
      server = await startReceiver({ LOCAL_DATA_DIR: dir, INGEST_CONFIG: '' }, dir);
    });
    after(async () => {
      await server?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('answers 500 generated requests without a 500, a crash or a file outside the data folder', async () => {
      const before = new Set(fs.readdirSync(os.tmpdir()));
      await fc.assert(
        fc.asyncProperty(request, async ({ headers, body }) => {
          const safe = Object.fromEntries(
            Object.entries(headers).filter(
              ([k, v]) => /^[a-z0-9-]+$/i.test(k) && /^[\x20-\x7e]*$/.test(v),
            ),
          );
          const answer = await post(server.url, Buffer.from(body, 'latin1'), safe);
          expect([200, 400, 404, 413, 503], answer.text).to.include(answer.status);
          expect(answer.json).to.not.have.property('notJson');
        }),
        { numRuns: 500 },
      );
      expect(server.process.exitCode).to.equal(null);
      expect((await fetch(`${server.url}health`)).status).to.equal(200);
      const created = fs
        .readdirSync(os.tmpdir())
        .filter((f) => !before.has(f) && !f.startsWith('ingest-'));
      expect(created).to.deep.equal([]);
    });
  });
});
