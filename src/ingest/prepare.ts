import type { Route } from '../config';
import type { ObjectRef } from '../objects/request';
import { identify, type ObjectResult, type Outcome } from '../objects/outcomes';
import { reject } from '../objects/quarantine';
import { routeObject } from '../objects/routing';
import type { Services } from './services';
import { UnsupportedNameError, type StoredObject } from '../stores/store';
import type { Destination } from '../warehouses/warehouse';

export interface Ready {
  kind: 'ready';
  object: StoredObject;
  route: Route;
  destination: Destination;
}
export type Prepared = { kind: 'done'; result: ObjectResult } | Ready;

/** The object's current generation, or why this store can hold no such object. */
async function statOrSkip(
  store: Services['store'],
  ref: ObjectRef,
): Promise<StoredObject | undefined | string> {
  try {
    return await store.stat(ref.bucket, ref.name);
  } catch (error) {
    if (error instanceof UnsupportedNameError) return error.message;
    throw error;
  }
}

export async function prepare(
  ref: ObjectRef,
  { config, store, warehouse }: Services,
): Promise<Prepared> {
  const routing = routeObject(ref, config);
  const done = (outcome: Outcome, reason: string, generation = ref.generation): Prepared => ({
    kind: 'done',
    result: { ...identify({ ...ref, generation }), outcome, reason },
  });
  if (routing.kind === 'skip') return done('skipped', routing.reason);
  if (ref.size === 0) return done('skipped', 'empty object');
  const current = await statOrSkip(store, ref);
  if (typeof current === 'string') return done('skipped', current);
  if (!current) return done('skipped', 'object no longer exists');
  if (ref.generation !== undefined && current.generation !== ref.generation) {
    if (BigInt(current.generation) > BigInt(ref.generation)) {
      return done(
        'skipped',
        `generation ${ref.generation} was replaced by ${current.generation}, whose own event loads it`,
      );
    }
    return done(
      'skipped',
      `generation ${ref.generation} does not exist (the current one is ${current.generation})`,
    );
  }
  if (current.size === 0) return done('skipped', 'empty object', current.generation);
  if (routing.kind === 'reject') {
    return {
      kind: 'done',
      result: await reject(current, routing.reason, undefined, { store, warehouse, config }),
    };
  }
  if (config.maxObjectBytes !== undefined && current.size > config.maxObjectBytes) {
    const reason = `object is ${current.size} bytes, over the limit of ${config.maxObjectBytes} (INGEST_MAX_OBJECT_BYTES)`;
    return {
      kind: 'done',
      result: await reject(current, reason, undefined, { store, warehouse, config }),
    };
  }
  return { kind: 'ready', object: current, route: routing.route, destination: routing.destination };
}
