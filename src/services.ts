import type { Config } from './config';
import type { Publisher } from './publisher';
import type { ObjectStore } from './stores/store';
import type { Warehouse } from './warehouses/warehouse';

/** What the use case works with: built once per instance by the backend. */
export interface Services {
  config: Config;
  store: ObjectStore;
  warehouse: Warehouse;
  publisher: Publisher;
}
