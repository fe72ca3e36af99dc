import * as path from 'node:path';
import type { Config } from './config';
import type { Services } from './ingest';
import { createPubSubPublisher } from './publisher';

export interface Backend extends Services {
  close(): Promise<void>;
}

/**
 * Builds the store and warehouse the configuration names. Each backend's modules are loaded only when
 * chosen: the cloud path never loads DuckDB, the local one never loads the Google clients.
 */
export async function createBackend(config: Config): Promise<Backend> {
  const publisher = createPubSubPublisher(config.project);
  if (config.backend === 'gcp') {
    const [{ createGcsStore }, { createBigQueryWarehouse }] = await Promise.all([
      import('./stores/gcs'),
      import('./warehouses/bigquery'),
    ]);
    const warehouse = createBigQueryWarehouse({ project: config.project });
    return {
      config,
      store: createGcsStore(),
      warehouse,
      publisher,
      close: () => closeAll(warehouse, publisher),
    };
  }
  const [{ createLocalStore, localObjectPath }, { createDuckDbWarehouse }] = await Promise.all([
    import('./stores/local'),
    import('./warehouses/duckdb'),
  ]);
  const root = path.resolve(config.localDataDir);
  const warehouse = createDuckDbWarehouse({
    file: path.join(root, 'warehouse.duckdb'),
    objectPath: (object) => localObjectPath(root, object.bucket, object.name),
  });
  return {
    config,
    store: createLocalStore(root),
    warehouse,
    publisher,
    close: () => closeAll(warehouse, publisher),
  };
}

async function closeAll(...parts: { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(parts.map((p) => p.close()));
}
