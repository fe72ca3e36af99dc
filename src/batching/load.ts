import type { ClaimState } from '../stores/claims';
import { TransientError } from '../core/errors';
import { buildJob, checkObjectHead } from '../objects/jobs';
import { identify, type ObjectResult } from '../objects/outcomes';
import { reject } from '../objects/quarantine';
import { jobIdFor } from '../objects/routing';
import { gsUri } from '../stores/store';
import { tableId } from '../warehouses/warehouse';
import type { SourceHead } from '../schema/columns';
import { sleep, type BatchContext } from './context';
import { follow, type Followed } from './follow';
import { forcedPrefix, jobIdOf } from './job-ids';
import { enqueue, newMember, queue } from './members';
import { runJob } from './run-job';
import type { BatchObject } from './types';

/** A forced reload whose job failed goes again after this. */
const FORCED_RETRY_MS = 1000;

export async function load(
  ctx: BatchContext,

  item: BatchObject,
  forcedBy: string | undefined,
  deadline: number,
): Promise<ObjectResult> {
  const { arriving } = ctx;
  const table = tableId(item.destination);
  arriving.set(table, (arriving.get(table) ?? 0) + 1);
  let counted = true;
  const arrived = () => {
    if (!counted) return;
    counted = false;
    const left = (arriving.get(table) ?? 1) - 1;
    if (left > 0) arriving.set(table, left);
    else arriving.delete(table);
  };
  try {
    return await claimAndLoad(ctx, item, forcedBy, deadline, table, arrived);
  } finally {
    arrived();
  }
}

async function claimAndLoad(
  ctx: BatchContext,

  item: BatchObject,
  forcedBy: string | undefined,
  deadline: number,
  table: string,
  arrived: () => void,
): Promise<ObjectResult> {
  const { claims, store } = ctx.services;
  let { object } = item;
  let head: SourceHead | undefined;
  for (;;) {
    if (Date.now() >= deadline) {
      throw new TransientError(`${gsUri(object)}: out of time following its claim on ${table}`);
    }
    const state: ClaimState = await claims.read(object, table);
    const current = { ...item, object, head };
    const ownForced =
      forcedBy !== undefined && state.claim?.jobId.startsWith(forcedPrefix(current, forcedBy));
    let next: Followed = { kind: 'again' };
    if (state.claim && (forcedBy === undefined || ownForced)) {
      next = await follow(ctx, current, state.claim, deadline);
    }
    if (next.kind === 'result') return next.result;
    if (next.kind === 'again') {
      // Only an object about to be claimed is read: a duplicate costs no read.
      if (!head) {
        const checked = await checkObject(ctx, current, deadline);
        if (!('header' in checked)) return checked;
        head = current.head = checked;
      }
      arrived();
      const outcome =
        forcedBy === undefined
          ? await enqueue(ctx, current, state.version, deadline)
          : await runForced(ctx, current, forcedBy, state.version, deadline);
      if (outcome !== 'again') return outcome;
    }
    // A forced reload that failed goes again after a pause; so does a claim whose job is not there yet.
    const pause =
      next.kind === 'wait'
        ? next.ms
        : next.kind === 'again' && forcedBy !== undefined
          ? FORCED_RETRY_MS
          : 0;
    if (pause > 0) await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
    const fresh = await store.stat(object.bucket, object.name);
    if (!fresh || fresh.generation !== object.generation) {
      const reason = fresh
        ? `generation ${object.generation} was replaced by ${fresh.generation}, whose own event loads it`
        : 'object no longer exists';
      return { ...identify(object), outcome: 'skipped', reason };
    }
    object = fresh;
  }
}

/**
 * A forced reload: its own job, claimed over any earlier claim. It starts at once, counted against
 * the pace, unless BigQuery said the destination is over a limit: then it waits its turn.
 */
async function runForced(
  ctx: BatchContext,

  item: BatchObject,
  forcedBy: string,
  version: string,
  deadline: number,
): Promise<ObjectResult | 'again'> {
  const { batcher } = ctx;
  const { member, outcome } = newMember(item, version, deadline, forcedPrefix(item, forcedBy));
  if (batcher.throttled(member.table)) {
    queue(ctx, member, { alone: true });
    return outcome;
  }
  batcher.debit(member.table, ctx.paceOf(item));
  // Every way a job ends finishes its members or queues them again (over a limit).
  void runJob(ctx, member.table, [member], jobIdOf([member]));
  return outcome;
}

/** Rejects what cannot join a job before any claim: a bad header, or (BigQuery) a broken gzip. */
async function checkObject(
  ctx: BatchContext,

  item: BatchObject,
  deadline: number,
): Promise<ObjectResult | SourceHead> {
  const { services } = ctx;
  const { config, warehouse } = services;
  const { object, route, destination } = item;
  const checked = await checkObjectHead(object, route, destination, services);
  if (checked === 'gone')
    return { ...identify(object), outcome: 'skipped', reason: 'object no longer exists' };
  if ('skip' in checked) return { ...identify(object), outcome: 'skipped', reason: checked.skip };
  const problem =
    'problem' in checked ? checked.problem : await warehouse.precheck?.(object, deadline);
  if (problem === undefined) return checked as SourceHead;
  const jobId = jobIdFor([object], destination, 'append');
  return reject(
    object,
    problem,
    buildJob([object], route, destination, config, jobId, deadline),
    services,
  );
}
