import { expect } from 'chai';
import { TransientError } from '../../src/core/errors';
import { createGcsStore } from '../../src/stores/gcs';
import { createGcsClaims } from '../../src/stores/gcs-claims';
import { ObjectGoneError, type ObjectStore, type StoredObject } from '../../src/stores/store';
import { testObjectStore } from '../contract/store-contract';
import {
  startGcsServer,
  storageClient,
  type GcsServer,
  type ObjectResource,
  type RecordedRequest,
} from '../servers/gcs-server';

const BUCKET = 'landing';

function toStored(resource: ObjectResource): StoredObject {
  const stored: StoredObject = {
    bucket: resource.bucket,
    name: resource.name,
    generation: resource.generation,
    size: Number(resource.size),
  };
  if (resource.contentType) stored.contentType = resource.contentType;
  return stored;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function drain(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const object of iterable) out.push(object);
  return out;
}

testObjectStore('Cloud Storage (JSON API test server)', async () => {
  const server = await startGcsServer();
  return {
    store: createGcsStore({ storage: storageClient(server) }),
    put: async (bucket, name, content) => toStored(server.put(bucket, name, content)),
    remove: async (bucket, name) => void server.remove(bucket, name),
    metadataOf: async (bucket, name) =>
      server.stat(bucket, name) ? (server.metadataOf(bucket, name) ?? {}) : undefined,
    teardown: () => server.close(),
  };
});

describe('createGcsStore', () => {
  let server: GcsServer;
  let store: ObjectStore;
  const media = (r: RecordedRequest) => r.query.alt === 'media';

  before(async () => {
    server = await startGcsServer();
    // No client retries here: each fault must surface as the store's own error.
    store = createGcsStore({
      storage: storageClient(server, { retryOptions: { autoRetry: false }, timeout: 400 }),
    });
  });
  after(() => server.close());
  beforeEach(() => {
    server.clearFaults();
    server.resetCounters();
  });

  describe('stat', () => {
    it('reads the current generation from the object metadata', async () => {
      const put = server.put(BUCKET, 'in/a.csv', 'a,b\n1,2\n', { contentType: 'text/csv' });
      const stat = await store.stat(BUCKET, 'in/a.csv');
      expect(stat).to.deep.equal({
        bucket: BUCKET,
        name: 'in/a.csv',
        generation: put.generation,
        size: 8,
        contentType: 'text/csv',
        metageneration: '1',
      });
      expect(server.requests.map((r) => [r.method, r.path, r.query.generation])).to.deep.equal([
        ['GET', `/b/${BUCKET}/o/in/a.csv`, undefined],
      ]);
    });

    it('is undefined once the object is deleted', async () => {
      server.put(BUCKET, 'in/deleted.csv', 'x');
      server.remove(BUCKET, 'in/deleted.csv');
      expect(await store.stat(BUCKET, 'in/deleted.csv')).to.equal(undefined);
    });

    it('is undefined in a bucket that does not exist', async () => {
      expect(await store.stat('no-such-bucket', 'a.csv')).to.equal(undefined);
    });
  });

  describe('readHead', () => {
    it('asks for a byte range of exactly that generation', async () => {
      const object = toStored(server.put(BUCKET, 'in/h.csv', 'header1,header2\nrow\n'));
      const head = await store.readHead(object, 10);
      expect(head.toString()).to.equal('header1,he');
      const reads = server.requests.filter(media);
      expect(reads).to.have.length(1);
      expect(reads[0]?.headers.range).to.equal('bytes=0-9');
      expect(reads[0]?.query.generation).to.equal(object.generation);
    });

    it('reads at most 64 KiB of a 10 GiB object', async () => {
      const tenGiB = 10 * 1024 ** 3;
      const object = toStored(
        server.putVirtual(BUCKET, 'big/huge.csv', tenGiB, { header: 'id,value\n', row: '1,x\n' }),
      );
      const before = process.memoryUsage().rss;
      const head = await store.readHead(object, 64 * 1024);
      expect(head.length).to.equal(64 * 1024);
      expect(head.subarray(0, 13).toString()).to.equal('id,value\n1,x\n');
      expect(server.bytesServed(BUCKET, 'big/huge.csv')).to.be.at.most(64 * 1024);
      expect(server.requests.filter(media)[0]?.headers.range).to.equal('bytes=0-65535');
      expect(process.memoryUsage().rss - before).to.be.below(64 * 1024 ** 2);
    });

    it('throws ObjectGoneError for a superseded generation', async () => {
      const old = toStored(server.put(BUCKET, 'in/v.csv', 'old\n'));
      server.put(BUCKET, 'in/v.csv', 'new\n');
      const error = await caught(store.readHead(old, 100));
      expect(error).to.be.instanceOf(ObjectGoneError);
      expect((error as Error).message).to.include(`gs://${BUCKET}/in/v.csv#${old.generation}`);
      expect(server.requests.filter(media)[0]?.query.generation).to.equal(old.generation);
    });

    it('throws ObjectGoneError for a deleted object', async () => {
      const object = toStored(server.put(BUCKET, 'in/d.csv', 'x\n'));
      server.remove(BUCKET, 'in/d.csv');
      expect(await caught(store.readHead(object, 100))).to.be.instanceOf(ObjectGoneError);
    });

    it('reads nothing for an empty object', async () => {
      const object = toStored(server.put(BUCKET, 'in/empty.csv', ''));
      expect((await store.readHead(object, 100)).length).to.equal(0);
      expect(server.requests.filter(media)).to.have.length(0);
    });
  });

  describe('list', () => {
    it('pages through 100,000 objects, 1,000 a request, fetching each page only when needed', async () => {
      const bucket = 'many';
      const total = 100_000;
      for (let i = 0; i < total; i++)
        server.put(bucket, `in/${String(i).padStart(6, '0')}.csv`, 'x');
      server.put(bucket, 'other/skip.csv', 'x');
      const listCalls = () =>
        server.requests.filter((r) => r.method === 'GET' && r.path === `/b/${bucket}/o`);

      const lister = createGcsStore({ storage: storageClient(server) });
      const iterator = lister.list(bucket, 'in/')[Symbol.asyncIterator]();
      for (let i = 0; i < 1001; i++) await iterator.next();
      expect(listCalls(), 'pages fetched after 1,001 objects').to.have.length(2);

      let count = 1001;
      let last = '';
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        expect(next.value.name > last).to.equal(true);
        last = next.value.name;
        count++;
      }
      expect(count).to.equal(total);
      const calls = listCalls();
      expect(calls).to.have.length(100);
      expect(
        calls.every((c) => c.query.maxResults === '1000' && c.query.prefix === 'in/'),
      ).to.equal(true);
      expect(calls[0]?.query.pageToken).to.equal(undefined);
      expect(calls.slice(1).every((c) => c.query.pageToken)).to.equal(true);
    });
  });

  describe('copyTo', () => {
    it('rewrites that generation server-side with the metadata, keeping the source metadata', async () => {
      const object = toStored(
        server.put(BUCKET, 'in/bad.csv', 'a,b\n"x\n', {
          contentType: 'text/csv',
          metadata: { owner: 'team-a' },
        }),
      );
      await store.copyTo(object, '_quarantine/in/bad.csv', {
        'ingest-reason': 'bad quote',
        'ingest-job-id': 'J',
      });

      const rewrites = server.requests.filter((r) => r.method === 'POST');
      expect(rewrites).to.have.length(1);
      expect(rewrites[0]?.path).to.equal(
        `/b/${BUCKET}/o/in/bad.csv/rewriteTo/b/${BUCKET}/o/_quarantine/in/bad.csv`,
      );
      expect(rewrites[0]?.query.sourceGeneration).to.equal(object.generation);
      expect(rewrites[0]?.body).to.deep.equal({
        contentType: 'text/csv',
        metadata: { owner: 'team-a', 'ingest-reason': 'bad quote', 'ingest-job-id': 'J' },
      });
      expect(server.stat(BUCKET, '_quarantine/in/bad.csv')).to.include({
        contentType: 'text/csv',
        size: '7',
      });
      expect(server.metadataOf(BUCKET, '_quarantine/in/bad.csv')).to.deep.equal({
        owner: 'team-a',
        'ingest-reason': 'bad quote',
        'ingest-job-id': 'J',
      });
      expect(server.bytesServed(BUCKET, 'in/bad.csv'), 'no bytes through the service').to.equal(0);
    });

    it('throws ObjectGoneError when the generation was replaced, copying nothing', async () => {
      const old = toStored(server.put(BUCKET, 'in/c.csv', 'old'));
      server.put(BUCKET, 'in/c.csv', 'new');
      expect(await caught(store.copyTo(old, '_quarantine/in/c.csv', {}))).to.be.instanceOf(
        ObjectGoneError,
      );
      expect(server.stat(BUCKET, '_quarantine/in/c.csv')).to.equal(undefined);
    });
  });

  describe('errors', () => {
    let object: StoredObject;
    beforeEach(() => {
      object = toStored(server.put(BUCKET, 'in/e.csv', 'a,b\n1,2\n'));
    });

    const operations: [string, () => Promise<unknown>][] = [
      ['stat', () => store.stat(BUCKET, 'in/e.csv')],
      ['readHead', () => store.readHead(object, 100)],
      ['list', () => drain(store.list(BUCKET, 'in/'))],
      ['copyTo', () => store.copyTo(object, '_quarantine/in/e.csv', {})],
    ];
    const transient: [string, Parameters<GcsServer['fail']>[0], RegExp][] = [
      ['HTTP 503', { status: 503 }, /HTTP 503/],
      ['HTTP 500', { status: 500 }, /HTTP 500/],
      ['HTTP 429', { status: 429 }, /HTTP 429/],
      ['a reset connection', { reset: true }, /network error/],
      ['a timeout', { delayMs: 1000 }, /network error/],
    ];

    for (const [operation, run] of operations) {
      for (const [what, fault, message] of transient) {
        it(`${operation}: ${what} is a TransientError naming the object`, async () => {
          server.fail(fault);
          const error = await caught(run());
          expect(error, String(error)).to.be.instanceOf(TransientError);
          expect((error as Error).message)
            .to.match(message)
            .and.include(`gs://${BUCKET}/`);
          expect((error as Error).cause).to.not.equal(undefined);
        });
      }

      it(`${operation}: HTTP 403 is a plain Error naming the object and the status`, async () => {
        server.fail({
          status: 403,
          reason: 'forbidden',
          message: 'ingest@ does not have storage.objects.get access',
        });
        const error = await caught(run());
        expect(error).to.be.instanceOf(Error);
        expect(error).to.not.be.instanceOf(TransientError);
        expect(error).to.not.be.instanceOf(ObjectGoneError);
        expect((error as Error).message)
          .to.include('HTTP 403')
          .and.include(`gs://${BUCKET}/`);
      });
    }
  });

  it('the test server takes uploads (multipart and media) and deletes from the real client', async () => {
    const client = storageClient(server, { retryOptions: { autoRetry: false } });
    const file = client.bucket(BUCKET).file('up/multi.csv');
    await file.save('a,b\n1,2\n', {
      resumable: false,
      metadata: { contentType: 'text/csv', metadata: { k: 'v' } },
    });
    const uploaded = await store.stat(BUCKET, 'up/multi.csv');
    expect(uploaded).to.include({ size: 8, contentType: 'text/csv' });
    expect(server.metadataOf(BUCKET, 'up/multi.csv')).to.deep.equal({ k: 'v' });
    expect((await store.readHead(uploaded as StoredObject, 100)).toString()).to.equal('a,b\n1,2\n');

    const response = await fetch(
      `${server.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=up%2Fmedia.csv`,
      {
        method: 'POST',
        headers: { 'content-type': 'text/csv' },
        body: 'x\n',
      },
    );
    expect(response.status).to.equal(200);
    expect(await store.stat(BUCKET, 'up/media.csv')).to.include({
      size: 2,
      contentType: 'text/csv',
    });

    await file.delete();
    expect(await store.stat(BUCKET, 'up/multi.csv')).to.equal(undefined);
  });

  it('a client with its default retries gets past one 503', async function () {
    this.timeout(10_000);
    const retrying = createGcsStore({ storage: storageClient(server) });
    server.put(BUCKET, 'in/r.csv', 'x');
    server.fail({ status: 503 });
    expect(await retrying.stat(BUCKET, 'in/r.csv')).to.include({ name: 'in/r.csv' });
    expect(server.count((r) => r.path === `/b/${BUCKET}/o/in/r.csv`)).to.equal(2);
  });
});

describe('Cloud Storage calls that never answer', () => {
  let server: GcsServer;
  let object: StoredObject;
  beforeEach(async () => {
    server = await startGcsServer();
    object = toStored(server.put(BUCKET, 'in/h.csv', 'a,b\n1,2\n'));
  });
  afterEach(() => server.close());

  // The client's own retries included: each call gives up after the store's timeout.
  const store = () => createGcsStore({ storage: storageClient(server), requestTimeoutMs: 300 });
  const claims = () => createGcsClaims(storageClient(server), 120_000, 300);
  const calls: [string, () => Promise<unknown>][] = [
    ['stat', () => store().stat(BUCKET, 'in/h.csv')],
    ['readHead', () => store().readHead(object, 100)],
    ['list', () => drain(store().list(BUCKET, 'in/'))],
    ['annotate', () => store().annotate?.(object, { k: 'v' }) ?? Promise.resolve()],
    ['copyTo', () => store().copyTo(object, '_quarantine/in/h.csv', {})],
    ['claims.read', () => claims().read(object, 'p.d.t')],
    [
      'claims.swap',
      () =>
        claims().swap([
          {
            object,
            claim: { jobId: 'ingest_x', at: Date.now(), destination: 'p.d.t' },
            version: '1',
          },
        ]),
    ],
  ];
  for (const [name, run] of calls) {
    it(`${name}: a hung call is a TransientError once the timeout has passed`, async () => {
      server.fail({ hang: true, times: 100 });
      const error = await caught(run());
      expect(error, String(error)).to.be.instanceOf(TransientError);
      expect((error as Error).message)
        .to.match(/no answer within 300 ms/)
        .and.include(`gs://${BUCKET}/`);
    });
  }
});
