import type { ObjectResult } from '../objects/outcomes';
import { identify } from '../objects/outcomes';
import { namesObject, memberRows, replacedOf, supersededReason } from '../objects/jobs';
import { reject } from '../objects/quarantine';
import { gsUri } from '../stores/store';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type LoadResult,
  type QuotaLimit,
} from '../warehouses/warehouse';
import { asError, type BatchContext } from './context';
import type { Member } from './types';

/** Puts members back on their destination's queue, at its front; a forced reload is told to go again. */
interface Requeue {
  (members: Member[], alone?: boolean): void;
  /** Over a BigQuery limit a forced reload waits its turn in the queue too, still claimed. */
  overLimit(members: Member[]): void;
}

/** Settles a job's members by its result: loaded, split or bisected when rejected, requeued when failed. */
export async function settleJob(
  ctx: BatchContext,
  table: string,
  won: Member[],
  job: LoadJob,
  result: ClaimedLoadResult,
  started: number,
): Promise<void> {
  const requeue = requeuer(ctx, table, won);
  switch (result.outcome) {
    case 'loaded':
    case 'duplicate':
      settleLoaded(ctx, table, won, job.destination, result);
      return;
    case 'rejected':
      return settleRejected(ctx, won, job, result.reason, requeue);
    case 'replaced': {
      // The changed objects go again: their new generation is skipped here and loads by its own event.
      const named = won.filter((m) => namesObject(result.reason, m.item.object));
      named.forEach((m) => m.finish('again'));
      requeue(won.filter((m) => !named.includes(m)));
      return;
    }
    case 'superseded':
      settleSuperseded(won, job.destination, result.newer, requeue);
      return;
    case 'failed':
      settleFailed(ctx, table, won, result, started, requeue);
      return;
  }
}

/** Members whose table rows are of a newer generation change nothing; the others go again. */
function settleSuperseded(
  won: Member[],
  destination: Destination,
  newer: Record<string, string>,
  requeue: Requeue,
): void {
  const stale = won.filter((m) => gsUri(m.item.object) in newer);
  for (const m of stale) {
    m.finish({
      ...identify(m.item.object),
      outcome: 'skipped',
      destination: tableId(destination),
      reason: supersededReason(newer[gsUri(m.item.object)]),
    });
  }
  requeue(won.filter((m) => !stale.includes(m)));
}

function requeuer(ctx: BatchContext, table: string, won: Member[]): Requeue {
  const { batcher } = ctx;
  const pace = ctx.paceOf((won[0] as Member).item);
  const requeue = (members: Member[], alone = false) => {
    members.filter((m) => m.forced).forEach((m) => m.finish('again'));
    const rest = members.filter((m) => !m.forced);
    if (rest.length > 0) batcher.add(table, pace, rest, { alone, front: true });
  };
  const overLimit = (members: Member[]) => {
    for (const m of members.filter((member) => member.forced))
      batcher.add(table, pace, [m], { alone: true, front: true });
    requeue(members.filter((m) => !m.forced));
  };
  return Object.assign(requeue, { overLimit });
}

function settleLoaded(
  ctx: BatchContext,
  table: string,
  won: Member[],
  destination: Destination,
  result: Extract<LoadResult, { outcome: 'loaded' | 'duplicate' }>,
): void {
  const done: Omit<ObjectResult, 'uri'> = {
    outcome: 'loaded',
    destination: tableId(destination),
    jobId: result.jobId,
    rows: result.rows,
    jobObjects: won.length,
  };
  if (result.outcome === 'loaded' && result.badRecords && result.badRecords.count > 0) {
    done.badRecords = result.badRecords.count;
    done.reason = `${result.badRecords.count} bad rows skipped under maxBadRecords in the job; first: ${result.badRecords.first}`;
  }
  ctx.batcher.succeeded(table);
  // Schema changes are told once, on the first member: each has the header that made them.
  const changes = result.outcome === 'loaded' ? result.schemaChanges : undefined;
  won.forEach((m, i) =>
    m.finish({
      ...identify(m.item.object),
      ...done,
      ...memberRows(result, i, won.length),
      ...replacedOf(result, i),
      ...(i === 0 && changes?.length ? { schemaChanges: changes } : {}),
    }),
  );
  // Only a warning can come of it: the next job need not wait for these reads.
  void warnReplaced(
    ctx,
    won,
    result.jobId,
    result.outcome === 'loaded' ? result.inputBytes : undefined,
  );
}

/** Quarantines the members the reason names (or the one member); the rest load again, halved when none is named. */
async function settleRejected(
  ctx: BatchContext,
  won: Member[],
  job: LoadJob,
  reason: string,
  requeue: Requeue,
): Promise<void> {
  const named = won.filter((m) => namesObject(reason, m.item.object));
  if (won.length === 1 || (named.length > 0 && named.length < won.length)) {
    const bad = won.length === 1 ? won : named;
    for (const m of bad) {
      const one = { ...job, sources: [m.item.object] };
      m.finish(await reject(m.item.object, reason, one, ctx.services).catch(asError));
    }
    requeue(won.filter((m) => !bad.includes(m)));
    return;
  }
  // The reason names no single member: halve until each bad object is alone.
  const half = Math.ceil(won.length / 2);
  requeue(won.slice(half), true);
  requeue(won.slice(0, half), true);
}

function settleFailed(
  ctx: BatchContext,
  table: string,
  won: Member[],
  result: { reason: string; quota: QuotaLimit | false },
  started: number,
  requeue: Requeue,
): void {
  const { batcher } = ctx;
  if (result.quota === 'daily') batcher.slowDown(table, result.reason, started);
  if (result.quota === 'shortTerm') batcher.holdOff(table, result.reason);
  if (result.quota) requeue.overLimit(won);
  else requeue(won);
}

/**
 * A load job reads the live object and cannot pin a generation: a member replaced between its claim
 * and the job may have been loaded with its newer bytes. Its own event loads the newer generation.
 * A job that read exactly the claimed sizes is taken to have read the claimed generations (a
 * replacement of the very same size goes unwarned), which spares a read of each member.
 */
async function warnReplaced(
  ctx: BatchContext,
  members: Member[],
  jobId: string,
  inputBytes?: number,
): Promise<void> {
  const {
    services: { warehouse, store },
    log,
  } = ctx;
  const claimedBytes = members.reduce((sum, m) => sum + m.item.object.size, 0);
  if (!warehouse.pinsGenerations && inputBytes !== claimedBytes) {
    await Promise.all(
      members.map(async ({ item: { object } }) => {
        const current = await store.stat(object.bucket, object.name).catch(() => undefined);
        if (current && current.generation !== object.generation) {
          log.warn(
            {
              uri: gsUri(object),
              claimed: object.generation,
              current: current.generation,
              jobId,
            },
            `${gsUri(object)} was replaced while job ${jobId} loaded it: generation ${object.generation} was claimed, ${current.generation} may be what was read`,
          );
        }
      }),
    );
  }
}
