import * as path from 'node:path';
import type { Config } from './config';
import type { Services } from './services';
import { createPubSubPublisher } from './publisher';
import type { ObjectStore } from './stores/store';
import type { Warehouse } from './warehouses/warehouse';

export interface Backend extends Services {
  close(): Promise<void>;
}

/**
 * Builds the store and warehouse the configuration names. Each backend's modules are loaded only when
 * chosen: the cloud path never loads DuckDB, the local one never loads the Google clients.
 */
export async function createBackend(config: Config): Promise<Backend> {
  const [store, warehouse] =
    config.backend === 'gcp'
      ? await createGoogleCloud(config)
      : await Promise.all([createStore(config), createLocalWarehouse(config)]);
  const publisher = createPubSubPublisher(config.project);
  const close = async () => {
    await Promise.all([warehouse.close(), publisher.close()]);
  };
  return { config, store, warehouse, publisher, close };
}

export async function createStore(config: Config): Promise<ObjectStore> {
  if (config.backend === 'gcp') return (await import('./stores/gcs')).createGcsStore();
  return (await import('./stores/local')).createLocalStore(localRoot(config));
}

/** Cloud Storage and BigQuery, sharing one Storage client (the warehouse reads .gz objects too). */
async function createGoogleCloud(config: Config): Promise<[ObjectStore, Warehouse]> {
  const [{ Storage }, { createGcsStore }, { createBigQueryWarehouse }] = await Promise.all([
    import('@google-cloud/storage'),
    import('./stores/gcs'),
    import('./warehouses/bigquery'),
  ]);
  const storage = new Storage();
  return [
    createGcsStore({ storage }),
    createBigQueryWarehouse({ project: config.project, storage }),
  ];
}

async function createLocalWarehouse(config: Config): Promise<Warehouse> {
  const [{ localObjectPath }, { createDuckDbWarehouse }] = await Promise.all([
    import('./stores/local'),
    import('./warehouses/duckdb'),
  ]);
  const root = localRoot(config);
  return createDuckDbWarehouse({
    file: localWarehouseFile(config),
    objectPath: (object) => localObjectPath(root, object.bucket, object.name),
  });
}

/** The DuckDB file of the local backend. */
export function localWarehouseFile(config: Config): string {
  return path.join(localRoot(config), 'warehouse.duckdb');
}

function localRoot(config: Config): string {
  return path.resolve(config.localDataDir);
}
