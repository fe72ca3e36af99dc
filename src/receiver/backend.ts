import * as path from 'node:path';
import type { ClaimStore } from '../stores/claims';
import type { NotificationRecord } from '../stores/notified';
import { createBatches, type BatchLog } from '../batching';
import type { Config } from '../config';
import type { Services } from '../ingest/services';
import { createPubSubPublisher } from '../objects/publisher';
import type { ObjectStore } from '../stores/store';
import type { WarehouseInspector } from '../warehouses/inspector';
import type { Warehouse } from '../warehouses/warehouse';

export interface Backend extends Services {
  /** The local backend's read-only views for the status page. */
  inspector?: WarehouseInspector;
  close(): Promise<void>;
}

/**
 * Builds the store and warehouse the configuration names. Each backend's modules are loaded only when
 * chosen: the cloud path never loads DuckDB, the local one never loads the Google clients.
 */
export async function createBackend(config: Config, log: BatchLog = silent): Promise<Backend> {
  const { store, warehouse, claims, notified, inspector } =
    config.backend === 'gcp' ? await createGoogleCloud(config) : await createLocal(config);
  const publisher = createPubSubPublisher(config.project);
  const parts = { config, store, warehouse, publisher, claims };
  const batches = createBatches(parts, log);
  const close = async () => {
    batches.abort('closing');
    await Promise.all([warehouse.close(), publisher.close()]);
  };
  return { ...parts, batches, notified, close, inspector };
}

const silent: BatchLog = { warn: () => undefined };

export async function createStore(config: Config): Promise<ObjectStore> {
  if (config.backend === 'gcp') return (await import('../stores/gcs')).createGcsStore();
  return (await import('../stores/local')).createLocalStore(localRoot(config));
}

interface Parts {
  store: ObjectStore;
  warehouse: Warehouse;
  claims: ClaimStore;
  /** Which outcome notifications went out: on the objects, or in notifications.jsonl. */
  notified: NotificationRecord;
  inspector?: WarehouseInspector;
}

// The longest wait for one Cloud Storage or BigQuery call, when the time budget is longer.
const MAX_REQUEST_TIMEOUT_MS = 60_000;

/**
 * Cloud Storage and BigQuery, sharing one Storage client (the warehouse reads .gz objects too, and
 * claims live on the objects).
 */
async function createGoogleCloud(config: Config): Promise<Parts> {
  const [
    { Storage },
    { createGcsStore },
    { createGcsClaims },
    { createGcsNotified },
    { createBigQueryWarehouse },
  ] = await Promise.all([
    import('@google-cloud/storage'),
    import('../stores/gcs'),
    import('../stores/gcs-claims'),
    import('../stores/gcs-notified'),
    import('../warehouses/bigquery'),
  ]);
  // A project id given up front spares each request the client's own lookup of it.
  const storage = new Storage(config.project ? { projectId: config.project } : {});
  // No one call may outlast a request's time budget.
  const requestTimeoutMs = Math.min(MAX_REQUEST_TIMEOUT_MS, config.waitSeconds * 1000);
  return {
    store: createGcsStore({ storage, requestTimeoutMs }),
    warehouse: createBigQueryWarehouse({
      project: config.project,
      storage,
      stagingPrefix: config.quarantinePrefix,
      requestTimeoutMs,
    }),
    claims: createGcsClaims(storage, claimGraceMs(config), requestTimeoutMs),
    notified: createGcsNotified(storage, requestTimeoutMs),
  };
}

/** The folder and DuckDB, whose ledger keeps the claims; notifications.jsonl beside them. */
async function createLocal(config: Config): Promise<Parts> {
  const [
    { createLocalStore, localObjectPath },
    { createLocalNotifications, NOTIFICATIONS_FILE },
    { createDuckDbWarehouse },
  ] = await Promise.all([
    import('../stores/local'),
    import('../stores/local-notifications'),
    import('../warehouses/duckdb'),
  ]);
  const root = localRoot(config);
  const warehouse = createDuckDbWarehouse({
    file: localWarehouseFile(config),
    objectPath: (object) => localObjectPath(root, object.bucket, object.name),
    claimGraceMs: claimGraceMs(config),
  });
  return {
    store: createLocalStore(root),
    warehouse,
    claims: warehouse.claims,
    notified: createLocalNotifications(path.join(root, NOTIFICATIONS_FILE)),
    inspector: warehouse.inspector,
  };
}

function claimGraceMs(config: Config): number | undefined {
  return config.claimGraceSeconds === undefined ? undefined : config.claimGraceSeconds * 1000;
}

/** The DuckDB file of the local backend. */
export function localWarehouseFile(config: Config): string {
  return path.join(localRoot(config), 'warehouse.duckdb');
}

function localRoot(config: Config): string {
  return path.resolve(config.localDataDir);
}
