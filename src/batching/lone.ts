import type { Claim } from '../stores/claims';
import { TransientError } from '../core/errors';
import { identify, type ObjectResult } from '../objects/outcomes';
import { gsUri } from '../stores/store';
import { tableId } from '../warehouses/warehouse';
import { sleep, type BatchContext } from './context';
import { follow } from './follow';
import type { BatchObject, LoneObject } from './types';

/**
 * What the claim an object already carries came to, for a route that loads it alone
 * (`batch: false`): a coalesced job (before the route stopped batching) may have loaded it. Else
 * the claim version its own job's claim replaces.
 */
export async function followClaim(
  ctx: BatchContext,

  item: LoneObject,
  deadline: number,
): Promise<ObjectResult | { version: string }> {
  const { claims, store } = ctx.services;
  const table = tableId(item.destination);
  let { object } = item;
  for (;;) {
    const state = await claims.read(object, table);
    if (!state.claim) return { version: state.version };
    const next = await follow(ctx, { ...item, object } as BatchObject, state.claim, deadline);
    if (next.kind === 'result') return next.result;
    if (next.kind === 'again') return { version: state.version };
    if (next.kind === 'wait') await sleep(Math.min(next.ms, Math.max(0, deadline - Date.now())));
    if (Date.now() >= deadline)
      throw new TransientError(`${gsUri(object)}: out of time following its claim on ${table}`);
    const fresh = await store.stat(object.bucket, object.name);
    if (!fresh || fresh.generation !== object.generation)
      return { ...identify(object), outcome: 'skipped', reason: 'object no longer exists' };
    object = fresh;
  }
}

export async function claimAlone(
  ctx: BatchContext,

  { object, destination }: LoneObject,
  jobId: string,
  version: string,
): Promise<'won' | 'lost' | 'gone'> {
  const { claims } = ctx.services;
  if (claims.recordsEveryLoad) return 'won';
  const claim: Claim = { jobId, at: Date.now(), destination: tableId(destination) };
  const [swap] = await claims.swap([{ object, claim, version }]);
  return swap?.kind ?? 'lost';
}
