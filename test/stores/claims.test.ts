import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createGcsClaims } from '../../src/stores/gcs-claims';
import { createGcsStore } from '../../src/stores/gcs';
import { createLocalStore, localObjectPath } from '../../src/stores/local';
import type { ObjectStore, StoredObject } from '../../src/stores/store';
import { createDuckDbWarehouse } from '../../src/warehouses/duckdb';
import { testClaimStore } from '../contract/claims-contract';
import { MemoryStore } from '../fakes/memory';
import { startGcsServer, storageClient } from '../servers/gcs-server';

const BUCKET = 'landing';

async function statOf(store: ObjectStore, name: string): Promise<StoredObject> {
  const object = await store.stat(BUCKET, name);
  if (!object) throw new Error(`no object ${name}`);
  return object;
}

testClaimStore('Cloud Storage metadata (JSON API test server)', async () => {
  const server = await startGcsServer();
  const storage = storageClient(server);
  const store = createGcsStore({ storage });
  return {
    claims: createGcsClaims(storage),
    put: async (name, content) => {
      server.put(BUCKET, name, content);
      return statOf(store, name);
    },
    copy: async (from, to) => {
      await storage.bucket(BUCKET).file(from).copy(to);
      return statOf(store, to);
    },
    stat: (name) => statOf(store, name),
    teardown: () => server.close(),
  };
});

testClaimStore('the local ledger (DuckDB)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingest-claims-'));
  const store = createLocalStore(dir);
  const warehouse = createDuckDbWarehouse({
    file: path.join(dir, 'warehouse.duckdb'),
    objectPath: (o) => localObjectPath(dir, o.bucket, o.name),
  });
  return {
    claims: warehouse.claims,
    put: async (name, content) => {
      const file = localObjectPath(dir, BUCKET, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, content);
      return statOf(store, name);
    },
    copy: async (from, to) => {
      fs.copyFileSync(localObjectPath(dir, BUCKET, from), localObjectPath(dir, BUCKET, to));
      return statOf(store, to);
    },
    stat: (name) => statOf(store, name),
    teardown: async () => {
      await warehouse.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

testClaimStore('memory (the fake the use case tests run on)', async () => {
  const store = new MemoryStore();
  return {
    claims: store.claims(),
    put: async (name) => store.put(BUCKET, name, 'a\n1\n'),
    copy: async (from, to) => store.copy(BUCKET, from, to),
    stat: (name) => statOf(store, name),
    teardown: async () => undefined,
  };
});
