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
  const [store, warehouse] = await Promise.all([createStore(config), createWarehouse(config)]);
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

async function createWarehouse(config: Config): Promise<Warehouse> {
  if (config.backend === 'gcp') {
    return (await import('./warehouses/bigquery')).createBigQueryWarehouse({
      project: config.project,
    });
  }
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
