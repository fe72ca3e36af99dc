import type { Route } from '../../config';
import { matchPattern } from '../../config/pattern';
import { quarantinedUnder, type Quarantined } from '../../objects/quarantine';
import { routeObject } from '../../objects/routing';
import type { Services } from '../services';
import { BucketNotFoundError, type StoredObject } from '../../stores/store';
import { partitionedTableId, type Destination } from '../../warehouses/warehouse';
import { isAmong } from './day';

export interface Listing {
  /** The partition's current objects, in name order, without empty or quarantined generations. */
  objects: StoredObject[];
  quarantined: Map<string, Quarantined>;
}

/** Every current object the route maps to this partition, in the buckets it may come from. */
export async function partitionMembers(
  triggers: StoredObject[],
  keep: StoredObject[],
  route: Route,
  destination: Destination,
  services: Services,
): Promise<Listing> {
  const { config, store } = services;
  const key = partitionedTableId(destination);
  const first = triggers[0] as StoredObject;
  const prefix = listingPrefix(route, first.name);
  const buckets = config.buckets ?? [...new Set(triggers.map((t) => t.bucket))];
  const objects: StoredObject[] = [];
  const quarantined = new Map<string, Quarantined>();
  for (const bucket of buckets) {
    try {
      const copies = await quarantinedUnder(bucket, prefix, services);
      for await (const object of store.list(bucket, prefix)) {
        const routing = routeObject(object, config);
        if (routing.kind !== 'route' || routing.route.index !== route.index) continue;
        if (partitionedTableId(routing.destination) !== key || object.size === 0) continue;
        const copy = copies.get(object.name);
        if (copy?.generation === object.generation && !isAmong(object, keep))
          quarantined.set(object.name, copy);
        else objects.push(object);
      }
    } catch (error) {
      if (!(error instanceof BucketNotFoundError)) throw error;
    }
  }
  return { objects, quarantined };
}

/**
 * The folder every object of this partition lies under: the route's pattern with the names captured
 * from `name` filled in, up to its first wildcard and back to the last "/".
 */
export function listingPrefix(route: Route, name: string): string {
  const captured = matchPattern(route.pattern, name) ?? {};
  const filled = route.match
    .replace(/\{([^}]*)\}/g, (_, key: string) => captured[key] ?? '*')
    .split('*')[0] as string;
  return filled.slice(0, filled.lastIndexOf('/') + 1);
}
