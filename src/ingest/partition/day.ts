import type { Route } from '../../config';
import type { Services } from '../services';
import type { StoredObject } from '../../stores/store';
import type { Destination } from '../../warehouses/warehouse';

/** What a rebuild of one day works with. */
export interface Day {
  route: Route;
  destination: Destination;
  services: Services;
  deadline: number;
  forcedBy: string | undefined;
}

export function isAmong(object: StoredObject, list: StoredObject[]): boolean {
  return list.some(
    (o) =>
      o.bucket === object.bucket && o.name === object.name && o.generation === object.generation,
  );
}

export function sameGenerations(a: StoredObject[], b: StoredObject[]): boolean {
  return a.length === b.length && a.every((o) => isAmong(o, b));
}
