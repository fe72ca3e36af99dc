import type { ClaimStore } from './claims';
import type { Batches } from './batching/types';
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
  /** Which job each object generation of a batching route is claimed for. */
  claims: ClaimStore;
  /** Paces and coalesces the load jobs of batching routes. */
  batches: Batches;
}
