import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { loadConfig } from '../src/config';
import { quarantineName, quarantinedUnder, reject } from '../src/objects/quarantine';
import { createGcsStore } from '../src/stores/gcs';
import type { StoredObject } from '../src/stores/store';
import type { Warehouse } from '../src/warehouses/warehouse';
import { startGcsServer, storageClient, type GcsServer } from './servers/gcs-server';

const PREFIX = '_quarantine/';

describe('quarantineName', () => {
  it('is <prefix><name> while that fits in 1,024 bytes', () => {
    const name = `in/${'a'.repeat(1024 - PREFIX.length - 7)}.csv`;
    expect(quarantineName(name, PREFIX)).to.equal(PREFIX + name);
    expect(quarantineName('in/a.csv', PREFIX)).to.equal('_quarantine/in/a.csv');
  });

  const cases = [
    { what: 'a 1,015-byte ASCII name', name: `in/${'b'.repeat(1008)}.csv` },
    { what: 'a name of 3-byte characters', name: `in/${'€'.repeat(336)}.csv` },
    { what: 'a .csv.gz name', name: `in/${'c'.repeat(1005)}.csv.gz` },
  ];
  for (const { what, name } of cases) {
    it(`shortens ${what}: a prefix of it, ~, a hash of the whole, its ending; at most 1,024 bytes`, () => {
      const short = quarantineName(name, PREFIX);
      expect(Buffer.byteLength(short)).to.be.at.most(1024).and.above(1000);
      const hash = createHash('sha256').update(name).digest('hex').slice(0, 16);
      const ending = /\.csv(\.gz)?$/.exec(name)?.[0] ?? '';
      expect(short.endsWith(`~${hash}${ending}`)).to.equal(true);
      const kept = short.slice(0, short.length - `~${hash}${ending}`.length);
      expect((PREFIX + name).startsWith(kept)).to.equal(true);
      expect(short).to.not.include('\uFFFD');
    });
  }
});

describe('quarantine with a 1,015-byte name (Cloud Storage client against the test server)', () => {
  let gcs: GcsServer;
  const config = loadConfig({ INGEST_CONFIG: '' }, () => '');
  const warehouse = { recordRejection: async () => undefined } as unknown as Warehouse;

  before(async () => {
    gcs = await startGcsServer();
  });
  after(async () => gcs.close());

  it('copies it under the shortened name, and quarantinedUnder finds it by its whole name', async () => {
    const store = createGcsStore({ storage: storageClient(gcs) });
    const name = `day/${'d'.repeat(1007)}.csv`;
    expect(Buffer.byteLength(name)).to.equal(1015);
    const resource = gcs.put('landing', name, 'id\n1\n');
    const object: StoredObject = {
      bucket: 'landing',
      name,
      generation: resource.generation,
      size: Number(resource.size),
    };
    const result = await reject(object, 'bad', undefined, { store, warehouse, config });
    expect(result).to.include({ outcome: 'rejected', reason: 'bad' });
    const copy = quarantineName(name, PREFIX);
    expect(gcs.contentOf('landing', copy)?.toString()).to.equal('id\n1\n');
    expect(gcs.metadataOf('landing', copy)).to.include({ 'ingest-source': `gs://landing/${name}` });
    const found = await quarantinedUnder('landing', 'day/', { store, config });
    expect([...found]).to.deep.equal([[name, { generation: resource.generation, reason: 'bad' }]]);
  });

  it('the test server refuses a name over 1,024 bytes, as Cloud Storage does', async () => {
    const store = createGcsStore({ storage: storageClient(gcs) });
    const resource = gcs.put('landing', 'in/x.csv', 'id\n1\n');
    const object = {
      bucket: 'landing',
      name: 'in/x.csv',
      generation: resource.generation,
      size: 5,
    };
    const error = await store.copyTo(object, 'z'.repeat(1025), {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(error)).to.include('HTTP 400');
  });
});
