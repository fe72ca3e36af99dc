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
import { salesConfig, testPartitionDays } from './contract/partition-contract';
import { MemoryPublisher } from './fakes/memory';
import { bigQueryClient, startBigQueryServer } from './servers/bigquery-server';
import { startGcsServer, storageClient } from './servers/gcs-server';

const BUCKET = 'landing';
const PROJECT = 'test-project';
const silent = { warn: () => undefined };

function withBatches(parts: Omit<Services, 'batches'>): Services {
  return { ...parts, batches: createBatches(parts, silent) };
}

type Row = Record<string, string | null>;

/** `_PARTITIONDATE` (a DATE, shown as YYYY-MM-DD or a timestamp) as YYYYMMDD. */
function partitionOf(row: Row): string {
  return String(row._PARTITIONDATE ?? '')
    .slice(0, 10)
    .replace(/-/g, '');
}

testPartitionDays('DuckDB', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'partition-days-'));
  const config = salesConfig({ LOCAL_DATA_DIR: root });
  const store = createLocalStore(root);
  const warehouse = createDuckDbWarehouse({
    file: path.join(root, 'warehouse.duckdb'),
    objectPath: (o) => localObjectPath(root, o.bucket, o.name),
    idleMs: 20,
  });
  const services = withBatches({
    config,
    store,
    warehouse,
    publisher: new MemoryPublisher(),
    claims: warehouse.claims,
  });
  return {
    services,
    put: async (name, content) => {
      const target = localObjectPath(root, BUCKET, name);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.writeFile(target, content);
      return (await store.stat(BUCKET, name)) as StoredObject;
    },
    rows: async (dataset, table, partition) => {
      const preview = await warehouse.inspector.preview(`${dataset}.${table}`, 1000);
      const rows = (preview?.rows ?? []).map(
        (row) =>
          Object.fromEntries(preview!.columns.map((column, i) => [column, row[i] ?? null])) as Row,
      );
      return partition === undefined ? rows : rows.filter((r) => partitionOf(r) === partition);
    },
    teardown: async () => {
      await warehouse.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
});

testPartitionDays('BigQuery (REST test servers)', async () => {
  const gcs = await startGcsServer();
  const bq = await startBigQueryServer({ gcs, jobDurationMs: 0 });
  const storage = storageClient(gcs);
  const services = withBatches({
    config: salesConfig({ INGEST_BACKEND: 'gcp', GOOGLE_CLOUD_PROJECT: PROJECT }),
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
    rows: async (dataset, table, partition) => {
      const state = bq.table(PROJECT, dataset, table);
      if (!state) return [];
      return partition === undefined
        ? [...state.rows.values()].flat()
        : (state.rows.get(partition) ?? []);
    },
    teardown: async () => {
      await bq.close();
      await gcs.close();
    },
  };
});
