import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createLocalStore, localObjectPath } from '../../src/stores/local';
import {
  BucketNotFoundError,
  ObjectGoneError,
  type ObjectStore,
  type StoredObject,
} from '../../src/stores/store';
import { testObjectStore } from '../contract/store-contract';

/**
 * Writes a file as an upload would and makes sure its generation (mtime in µs) moves on: the kernel's
 * file clock can be coarser than the time between two writes in a test.
 */
async function putFile(
  root: string,
  bucket: string,
  name: string,
  content: Buffer | string,
): Promise<StoredObject> {
  const file = localObjectPath(root, bucket, name);
  const before = await fs.stat(file, { bigint: true }).catch(() => undefined);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  const after = await fs.stat(file, { bigint: true });
  if (before && after.mtimeNs / 1000n <= before.mtimeNs / 1000n) {
    const next = Number(before.mtimeNs / 1000n + 1000n) / 1e6;
    await fs.utimes(file, next, next);
  }
  const object = await createLocalStore(root).stat(bucket, name);
  if (!object) throw new Error(`${name} was not written`);
  return object;
}

async function makeRoot(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'local-store-'));
}

testObjectStore('local folder', async () => {
  const root = await makeRoot();
  return {
    store: createLocalStore(root),
    put: (bucket, name, content) => putFile(root, bucket, name, content),
    remove: (bucket, name) => fs.rm(localObjectPath(root, bucket, name)),
    metadataOf: async (bucket, name) => {
      const file = `${localObjectPath(root, bucket, name)}.metadata.json`;
      const text = await fs.readFile(file, 'utf8').catch(() => undefined);
      return text === undefined ? undefined : (JSON.parse(text) as Record<string, string>);
    },
    teardown: () => fs.rm(root, { recursive: true, force: true }),
  };
});

describe('local store', () => {
  let root: string;
  let store: ObjectStore;
  let outside: string;

  beforeEach(async () => {
    root = await makeRoot();
    store = createLocalStore(root);
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'local-store-outside-'));
    await fs.writeFile(path.join(outside, 'secret.csv'), 'secret,data\n1,2\n');
    await fs.mkdir(path.join(root, 'buckets', 'b'), { recursive: true });
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });

  async function listNames(bucket: string, prefix: string): Promise<string[]> {
    const names: string[] = [];
    for await (const object of store.list(bucket, prefix)) names.push(object.name);
    return names;
  }

  async function rejection(promise: Promise<unknown>): Promise<unknown> {
    return promise.then(
      () => expect.fail('expected a rejection'),
      (error: unknown) => error,
    );
  }

  describe('paths', () => {
    it('maps bucket and name to <root>/buckets/<bucket>/<name>', () => {
      expect(localObjectPath(root, 'b', 'in/x.csv')).to.equal(
        path.join(root, 'buckets', 'b', 'in', 'x.csv'),
      );
    });

    const escapingNames = [
      '../x.csv',
      'a/../../x.csv',
      '/etc/passwd',
      'a/./b.csv',
      '..',
      'a\0b',
      '',
      '/',
    ];
    for (const name of escapingNames) {
      it(`refuses the object name ${JSON.stringify(name)}`, async () => {
        expect(() => localObjectPath(root, 'b', name)).to.throw(Error, 'object name');
        const error = await rejection(store.stat('b', name));
        expect(error).to.be.instanceOf(Error).and.not.instanceOf(ObjectGoneError);
        expect((error as Error).message).to.include(`"${name}"`);
      });
    }

    const escapingBuckets = ['..', '.', '', 'a/b', '../b', 'a\\b'];
    for (const bucket of escapingBuckets) {
      it(`refuses the bucket ${JSON.stringify(bucket)}`, async () => {
        expect(() => localObjectPath(root, bucket, 'x.csv')).to.throw(Error, 'bucket');
        await rejection(store.stat(bucket, 'x.csv'));
        await rejection(listNames(bucket, ''));
      });
    }

    it('refuses to copy to a name outside the bucket', async () => {
      const object = await putFile(root, 'b', 'x.csv', 'a\n1\n');
      const error = await rejection(store.copyTo(object, '../other/x.csv', {}));
      expect((error as Error).message).to.include('../other/x.csv');
      expect(await fs.readdir(path.join(root, 'buckets'))).to.deep.equal(['b']);
    });
  });

  describe('symlinks', () => {
    it('does not follow a symlinked file that points outside the bucket', async () => {
      await fs.symlink(
        path.join(outside, 'secret.csv'),
        path.join(root, 'buckets', 'b', 'link.csv'),
      );
      expect(await store.stat('b', 'link.csv')).to.equal(undefined);
      expect(await listNames('b', '')).to.deep.equal([]);
      const stats = await fs.stat(path.join(outside, 'secret.csv'), { bigint: true });
      const forged: StoredObject = {
        bucket: 'b',
        name: 'link.csv',
        generation: (stats.mtimeNs / 1000n).toString(),
        size: Number(stats.size),
      };
      expect(await rejection(store.readHead(forged, 100))).to.be.instanceOf(ObjectGoneError);
      expect(await rejection(store.copyTo(forged, 'copy.csv', {}))).to.be.instanceOf(
        ObjectGoneError,
      );
      expect(await store.stat('b', 'copy.csv')).to.equal(undefined);
    });

    it('does not follow a symlinked folder that points outside the bucket', async () => {
      await fs.symlink(outside, path.join(root, 'buckets', 'b', 'dir'));
      await putFile(root, 'b', 'real/a.csv', 'x');
      expect(await store.stat('b', 'dir/secret.csv')).to.equal(undefined);
      expect(await listNames('b', '')).to.deep.equal(['real/a.csv']);
      expect(await listNames('b', 'dir/')).to.deep.equal([]);
      const stats = await fs.stat(path.join(outside, 'secret.csv'), { bigint: true });
      const forged: StoredObject = {
        bucket: 'b',
        name: 'dir/secret.csv',
        generation: (stats.mtimeNs / 1000n).toString(),
        size: Number(stats.size),
      };
      expect(await rejection(store.readHead(forged, 100))).to.be.instanceOf(ObjectGoneError);
    });

    it('does not write through a symlinked folder when copying', async () => {
      await fs.symlink(outside, path.join(root, 'buckets', 'b', '_quarantine'));
      const object = await putFile(root, 'b', 'x.csv', 'a\n1\n');
      const error = await rejection(store.copyTo(object, '_quarantine/x.csv', { reason: 'r' }));
      expect(error).to.be.instanceOf(Error);
      expect(await fs.readdir(outside)).to.deep.equal(['secret.csv']);
    });

    it('replaces a symlink at the copy target instead of writing through it', async () => {
      const victim = path.join(outside, 'secret.csv');
      await fs.symlink(victim, path.join(root, 'buckets', 'b', 'target.csv'));
      const object = await putFile(root, 'b', 'x.csv', 'a\n1\n');
      await store.copyTo(object, 'target.csv', {});
      expect(await fs.readFile(victim, 'utf8')).to.equal('secret,data\n1,2\n');
      expect((await fs.lstat(path.join(root, 'buckets', 'b', 'target.csv'))).isFile()).to.equal(
        true,
      );
    });

    it('does not serve a bucket folder that is itself a symlink', async () => {
      await fs.symlink(outside, path.join(root, 'buckets', 'linked'));
      expect(await store.stat('linked', 'secret.csv')).to.equal(undefined);
      const listed = await listNames('linked', '').catch((e: unknown) => e);
      expect(listed).to.be.instanceOf(BucketNotFoundError);
    });
  });

  describe('objects', () => {
    it('uses the mtime in microseconds as the generation', async () => {
      const object = await putFile(root, 'b', 'g.csv', 'abc');
      const stats = await fs.stat(localObjectPath(root, 'b', 'g.csv'), { bigint: true });
      expect(object.generation).to.equal((stats.mtimeNs / 1000n).toString());
    });

    it('treats a folder as no object', async () => {
      await putFile(root, 'b', 'folder/a.csv', 'x');
      expect(await store.stat('b', 'folder')).to.equal(undefined);
      expect(await store.stat('b', 'folder/')).to.equal(undefined);
    });

    it('refuses to list a bucket that does not exist', async () => {
      const listed = await listNames('nope', '').catch((e: unknown) => e);
      expect(listed).to.be.instanceOf(BucketNotFoundError);
      expect((listed as Error).message).to.contain('bucket nope does not exist');
    });

    it('writes metadata next to the copy and hides it from listings', async () => {
      const object = await putFile(root, 'b', 'in/x.csv', 'a\n1\n');
      await store.copyTo(object, '_quarantine/in/x.csv', { reason: 'bad' });
      const sidecar = path.join(root, 'buckets', 'b', '_quarantine', 'in', 'x.csv.metadata.json');
      expect(JSON.parse(await fs.readFile(sidecar, 'utf8'))).to.deep.equal({ reason: 'bad' });
      expect(await listNames('b', '_quarantine/')).to.deep.equal(['_quarantine/in/x.csv']);
    });

    it('throws ObjectGoneError when a file is rewritten in place with a new mtime', async () => {
      const object = await putFile(root, 'b', 'x.csv', 'abc');
      const file = localObjectPath(root, 'b', 'x.csv');
      const later = Number(BigInt(object.generation) + 5000n) / 1e6;
      await fs.utimes(file, later, later);
      expect(await rejection(store.readHead(object, 10))).to.be.instanceOf(ObjectGoneError);
    });
  });
});
