import type { Batches } from '../batching/types';
import type { ObjectServices } from '../objects/services';
import type { NotificationRecord } from '../stores/notified';

/** What the use case works with: the object services and the batches of coalesced loads. */
export interface Services extends ObjectServices {
  /** Paces and coalesces the load jobs of batching routes. */
  batches: Batches;
  /** Where it is recorded which outcome notifications went out; absent: each goes out every time. */
  notified?: NotificationRecord;
}
