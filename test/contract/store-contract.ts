import { expect } from 'chai';
import {
  BucketNotFoundError,
  ObjectGoneError,
  type ObjectStore,
  type StoredObject,
} from '../../src/stores/store';

export interface StoreFixture {
  store: ObjectStore;
  /** Creates or replaces an object (and its bucket when needed); returns its new generation. */
  put(bucket: string, name: string, content: Buffer | string): Promise<StoredObject>;
  remove(bucket: string, name: string): Promise<void>;
  /** The custom metadata of an object, or undefined when there is no such object. */
  metadataOf(bucket: string, name: string): Promise<Record<string, string> | undefined>;
  teardown(): Promise<void>;
}

const BUCKET = 'contract-bucket';

/** The behaviour every ObjectStore backend shares. `setup` runs before each test, on a fresh store. */
export function testObjectStore(name: string, setup: () => Promise<StoreFixture>): void {
  describe(`ObjectStore contract: ${name}`, function () {
    this.timeout(60_000);
    let fixture: StoreFixture;
    let store: ObjectStore;

    beforeEach(async () => {
      fixture = await setup();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.teardown();
    });

    async function listNames(bucket: string, prefix: string): Promise<string[]> {
      const names: string[] = [];
      for await (const object of store.list(bucket, prefix)) names.push(object.name);
      return names;
    }

    async function expectGone(promise: Promise<unknown>): Promise<void> {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, 'expected ObjectGoneError').to.be.instanceOf(ObjectGoneError);
    }

    describe('stat', () => {
      it('describes an object that exists', async () => {
        const put = await fixture.put(BUCKET, 'in/a.csv', 'a,b\n1,2\n');
        const stat = await store.stat(BUCKET, 'in/a.csv');
        expect(stat).to.include({
          bucket: BUCKET,
          name: 'in/a.csv',
          generation: put.generation,
          size: 8,
        });
        expect(stat?.generation).to.match(/^\d+$/);
      });

      it('is undefined for an object that does not exist', async () => {
        await fixture.put(BUCKET, 'in/a.csv', 'x');
        expect(await store.stat(BUCKET, 'in/missing.csv')).to.equal(undefined);
        expect(await store.stat(BUCKET, 'in/a.cs')).to.equal(undefined);
      });

      it('is undefined for a removed object', async () => {
        await fixture.put(BUCKET, 'gone.csv', 'x');
        await fixture.remove(BUCKET, 'gone.csv');
        expect(await store.stat(BUCKET, 'gone.csv')).to.equal(undefined);
      });

      it('reports a new generation and size when the object is replaced', async () => {
        const first = await fixture.put(BUCKET, 'r.csv', 'one\n');
        const second = await fixture.put(BUCKET, 'r.csv', 'second\n');
        const stat = await store.stat(BUCKET, 'r.csv');
        expect(second.generation).to.not.equal(first.generation);
        expect(stat).to.include({ generation: second.generation, size: 7 });
      });
    });

    describe('readHead', () => {
      const content = 'header1,header2\n' + 'x'.repeat(5000) + '\n';

      it('returns exactly the first maxBytes bytes', async () => {
        const object = await fixture.put(BUCKET, 'h.csv', content);
        const head = await store.readHead(object, 10);
        expect(head.toString()).to.equal('header1,he');
      });

      it('returns the whole object when it is shorter than maxBytes', async () => {
        const object = await fixture.put(BUCKET, 'h.csv', content);
        const head = await store.readHead(object, 1_000_000);
        expect(head.length).to.equal(Buffer.byteLength(content));
        expect(head.toString()).to.equal(content);
      });

      it('returns binary content unchanged', async () => {
        const bytes = Buffer.from([0x1f, 0x8b, 0x00, 0xff, 0x0a, 0x80]);
        const object = await fixture.put(BUCKET, 'b.csv.gz', bytes);
        expect(Buffer.compare(await store.readHead(object, 4), bytes.subarray(0, 4))).to.equal(0);
      });

      it('throws ObjectGoneError for a generation that was replaced', async () => {
        const old = await fixture.put(BUCKET, 'h.csv', 'old\n');
        await fixture.put(BUCKET, 'h.csv', 'new\n');
        await expectGone(store.readHead(old, 100));
      });

      it('throws ObjectGoneError for an object that was removed', async () => {
        const object = await fixture.put(BUCKET, 'h.csv', 'old\n');
        await fixture.remove(BUCKET, 'h.csv');
        await expectGone(store.readHead(object, 100));
      });
    });

    describe('list', () => {
      it('yields the objects under a prefix in name order', async () => {
        const names = [
          'p/b.csv',
          'p/a0.csv',
          'p/a/x.csv',
          'p/a-c.csv',
          'q/z.csv',
          'p.csv',
          'p/a/b/deep.csv',
        ];
        for (const n of names) await fixture.put(BUCKET, n, n);
        expect(await listNames(BUCKET, 'p/')).to.deep.equal([
          'p/a-c.csv',
          'p/a/b/deep.csv',
          'p/a/x.csv',
          'p/a0.csv',
          'p/b.csv',
        ]);
        expect(await listNames(BUCKET, 'p/a')).to.deep.equal([
          'p/a-c.csv',
          'p/a/b/deep.csv',
          'p/a/x.csv',
          'p/a0.csv',
        ]);
        expect(await listNames(BUCKET, '')).to.deep.equal([...names].sort());
      });

      it('yields generation and size of each object', async () => {
        const put = await fixture.put(BUCKET, 'd/one.csv', 'abc');
        const listed: StoredObject[] = [];
        for await (const object of store.list(BUCKET, 'd/')) listed.push(object);
        expect(listed).to.have.length(1);
        expect(listed[0]).to.include({
          bucket: BUCKET,
          name: 'd/one.csv',
          generation: put.generation,
          size: 3,
        });
      });

      it('yields nothing for a prefix nothing starts with', async () => {
        await fixture.put(BUCKET, 'a/x.csv', 'x');
        expect(await listNames(BUCKET, 'b/')).to.deep.equal([]);
        expect(await listNames(BUCKET, 'a/x.csv.')).to.deep.equal([]);
      });

      it('throws BucketNotFoundError for a bucket that does not exist', async () => {
        await fixture.put(BUCKET, 'a.csv', 'x');
        const error = await listNames('no-such-bucket-here', '').then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(BucketNotFoundError);
      });

      it('yields every object across pages', async () => {
        const count = 1200;
        const names = Array.from(
          { length: count },
          (_, i) => `many/${String(i).padStart(5, '0')}.csv`,
        );
        for (let i = 0; i < names.length; i += 50) {
          await Promise.all(names.slice(i, i + 50).map((n) => fixture.put(BUCKET, n, 'x')));
        }
        await fixture.put(BUCKET, 'manz.csv', 'not under the prefix');
        expect(await listNames(BUCKET, 'many/')).to.deep.equal(names);
      });
    });

    describe('annotate (where the store offers it)', () => {
      it('adds metadata to the live generation; a new generation starts without it', async function () {
        if (!store.annotate) return this.skip();
        const object = await fixture.put(BUCKET, 'in/n.csv', 'a\n1\n');
        await store.annotate(object, { 'ingest-x': 'one' });
        await store.annotate(object, { 'ingest-y': 'two' });
        const stat = await store.stat(BUCKET, 'in/n.csv');
        expect(stat?.generation).to.equal(object.generation);
        expect(stat?.metadata).to.deep.include({ 'ingest-x': 'one', 'ingest-y': 'two' });
        await fixture.put(BUCKET, 'in/n.csv', 'a\n2\n');
        expect((await store.stat(BUCKET, 'in/n.csv'))?.metadata ?? {}).to.not.have.property(
          'ingest-x',
        );
      });

      it('throws ObjectGoneError for a generation that is no longer live', async function () {
        if (!store.annotate) return this.skip();
        const old = await fixture.put(BUCKET, 'in/o.csv', 'old');
        await fixture.put(BUCKET, 'in/o.csv', 'new');
        await expectGone(store.annotate(old, { 'ingest-x': 'one' }));
        await fixture.remove(BUCKET, 'in/o.csv');
        await expectGone(store.annotate(old, { 'ingest-x': 'one' }));
      });
    });

    describe('copyTo', () => {
      it('copies the bytes and attaches the metadata', async () => {
        const bytes = Buffer.concat([Buffer.from('a,b\n'), Buffer.from([0xc3, 0xa9, 0x0a])]);
        const object = await fixture.put(BUCKET, 'in/bad.csv', bytes);
        const metadata = { reason: 'unterminated quote (line 3)', jobId: 'ingest_abc' };
        await store.copyTo(object, '_quarantine/in/bad.csv', metadata);

        const copy = await store.stat(BUCKET, '_quarantine/in/bad.csv');
        expect(copy?.size).to.equal(bytes.length);
        const copied = await store.readHead(copy as StoredObject, 1000);
        expect(Buffer.compare(copied, bytes)).to.equal(0);
        expect(await fixture.metadataOf(BUCKET, '_quarantine/in/bad.csv')).to.deep.include(
          metadata,
        );
        const source = await store.stat(BUCKET, 'in/bad.csv');
        expect(source?.generation).to.equal(object.generation);
      });

      it('returns the metadata with the copy from stat and list', async () => {
        const object = await fixture.put(BUCKET, 'in/m.csv', 'a\n1\n');
        await store.copyTo(object, 'q/in/m.csv', { 'ingest-generation': object.generation });
        const stat = await store.stat(BUCKET, 'q/in/m.csv');
        expect(stat?.metadata).to.deep.include({ 'ingest-generation': object.generation });
        const listed: StoredObject[] = [];
        for await (const o of store.list(BUCKET, 'q/')) listed.push(o);
        expect(listed.map((o) => o.name)).to.deep.equal(['q/in/m.csv']);
        expect(listed[0]?.metadata).to.deep.include({ 'ingest-generation': object.generation });
      });

      it('replaces an earlier copy', async () => {
        const first = await fixture.put(BUCKET, 'in/x.csv', 'first');
        await store.copyTo(first, 'q/x.csv', { attempt: '1' });
        const second = await fixture.put(BUCKET, 'in/x.csv', 'second!');
        await store.copyTo(second, 'q/x.csv', { attempt: '2' });
        expect((await store.stat(BUCKET, 'q/x.csv'))?.size).to.equal(7);
        expect(await fixture.metadataOf(BUCKET, 'q/x.csv')).to.deep.include({ attempt: '2' });
      });

      it('throws ObjectGoneError when the generation is gone', async () => {
        const old = await fixture.put(BUCKET, 'in/y.csv', 'old');
        await fixture.put(BUCKET, 'in/y.csv', 'new');
        await expectGone(store.copyTo(old, 'q/y.csv', {}));
        expect(await store.stat(BUCKET, 'q/y.csv')).to.equal(undefined);
      });
    });
  });
}
