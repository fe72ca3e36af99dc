import type { ClaimStore } from '../stores/claims';
import type { Config } from '../config';
import type { Publisher } from './publisher';
import type { ObjectStore } from '../stores/store';
import type { Warehouse } from '../warehouses/warehouse';

/** What loading one object works with: built once per instance by the backend. */
export interface ObjectServices {
  config: Config;
  store: ObjectStore;
  warehouse: Warehouse;
  publisher: Publisher;
  /** Which job each object generation of a batching route is claimed for. */
  claims: ClaimStore;
}
