import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createBatches } from '../src/batching';
import type { Services } from '../src/ingest';
import { createGcsStore } from '../src/stores/gcs';
import { createGcsClaims } from '../src/stores/gcs-claims';
import { createLocalStore, localObjectPath } from '../src/stores/local';
import type { StoredObject } from '../src/stores/store';
import { createBigQueryWarehouse } from '../src/warehouses/bigquery';
import { createDuckDbWarehouse } from '../src/warehouses/duckdb';
import { lineageConfig, testLineage } from './contract/lineage-contract';
import { MemoryPublisher } from './fakes/memory';
import { bigQueryClient, isInsert, startBigQueryServer } from './servers/bigquery-server';
import { startGcsServer, storageClient } from './servers/gcs-server';

const BUCKET = 'landing';
const PROJECT = 'test-project';
const silent = { warn: () => undefined };

function withBatches(parts: Omit<Services, 'batches'>): Services {
  return { ...parts, batches: createBatches(parts, silent) };
}

testLineage('DuckDB', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lineage-'));
  const store = createLocalStore(root);
  let beforeLoad: (() => Promise<unknown>) | undefined;
  const runFirst = async () => {
    const action = beforeLoad;
    beforeLoad = undefined;
    await action?.();
  };
  const warehouse = createDuckDbWarehouse({
    file: path.join(root, 'warehouse.duckdb'),
    // The load reads its sources through this: an overwrite here lands as the load starts.
    objectPath: (o) => localObjectPath(root, o.bucket, o.name),
    idleMs: 20,
  });
  const loading = {
    ...warehouse,
    load: async (job: Parameters<typeof warehouse.load>[0]) => (
      await runFirst(),
      warehouse.load(job)
    ),
    loadClaimed: async (job: Parameters<typeof warehouse.loadClaimed>[0]) => (
      await runFirst(),
      warehouse.loadClaimed(job)
    ),
  };
  const services = withBatches({
    config: lineageConfig({ LOCAL_DATA_DIR: root }),
    store,
    warehouse: loading,
    publisher: new MemoryPublisher(),
    claims: warehouse.claims,
  });
  return {
    services,
    put: async (name, content) => {
      const target = localObjectPath(root, BUCKET, name);
      const before = await store.stat(BUCKET, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, content);
      // The local store's generation is the file's modification time: an overwrite within the
      // same moment must still be a new generation.
      if (before) {
        const later = new Date(Number(BigInt(before.generation) / 1000n) + 1);
        const stat = await fs.stat(target);
        if (stat.mtime <= later) await fs.utimes(target, later, later);
      }
      return (await store.stat(BUCKET, name)) as StoredObject;
    },
    rows: async (dataset, table) => {
      const preview = await warehouse.inspector.preview(`${dataset}.${table}`, 1000);
      return (preview?.rows ?? []).map((row) =>
        Object.fromEntries(preview!.columns.map((column, i) => [column, row[i] ?? null])),
      );
    },
    duringNextLoad: (action) => {
      beforeLoad = action;
    },
    teardown: async () => {
      await warehouse.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
});

testLineage('BigQuery (REST test servers)', async () => {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: 0 });
  const storage = storageClient(gcs);
  const services = withBatches({
    config: lineageConfig({ INGEST_BACKEND: 'gcp', GOOGLE_CLOUD_PROJECT: PROJECT }),
    store: createGcsStore({ storage }),
    warehouse: createBigQueryWarehouse({
      bigquery: bigQueryClient(bq),
      storage,
      pollIntervalMs: 5,
      retryDelayMs: 1,
    }),
    publisher: new MemoryPublisher(),
    claims: createGcsClaims(storage),
  });
  return {
    services,
    put: async (name, content) => {
      const resource = gcs.put(BUCKET, name, content);
      return (await services.store.stat(BUCKET, resource.name)) as StoredObject;
    },
    rows: async (dataset, table) => {
      const state = bq.table(PROJECT, dataset, table);
      return state ? [...state.rows.values()].flat() : [];
    },
    duringNextLoad: (action) => {
      // As the next load job is inserted; the test server's objects change at once, so the job
      // reads the overwritten object.
      bq.fail({
        times: 1,
        match: (request) => {
          const load = (request.body as { configuration?: { load?: unknown } } | undefined)
            ?.configuration?.load;
          if (!isInsert(request) || !load) return false;
          void action();
          return true;
        },
      });
    },
    teardown: async () => {
      await bq.close();
      await gcs.close();
    },
  };
});
