import type { Route } from '../../config';
import { TransientError } from '../../core/errors';
import type { IngestRequest } from '../../objects/request';
import { batchLimitProblem } from '../../objects/fanout';
import { buildJob, loadOutcome, memberRows } from '../../objects/jobs';
import { identify, type ObjectResult } from '../../objects/outcomes';
import { Rounds } from '../../core/rounds';
import { reject } from '../../objects/quarantine';
import { jobIdFor } from '../../objects/routing';
import type { Services } from '../services';
import { gsUri, type StoredObject } from '../../stores/store';
import {
  partitionedTableId,
  tableId,
  type Destination,
  type LoadResult,
} from '../../warehouses/warehouse';
import { findCulprits } from './culprits';
import { isAmong, sameGenerations, type Day } from './day';
import { markRebuild, settleEarlierRebuilds } from './marks';
import { partitionMembers } from './members';
import { checkTriggers, sourcesWithHeads } from './sources';

export { listingPrefix } from './members';

/** How often one request rebuilds a partition that keeps changing before leaving it to a redelivery. */
const MAX_ROUNDS = 5;

/**
 * A `partition` route replaces a whole day (WRITE_TRUNCATE of `table$YYYYMMDD`), so an event never
 * loads its object alone: it rebuilds the partition from every current object the route maps to it.
 *
 * Racing rebuilds never leave an older, smaller set in place: after its job, a request lists the
 * partition again and, while the set differs from what its job loaded, rebuilds once more. The last
 * job to finish is therefore always followed by a listing that matches it. Job ids carry the set,
 * the objects whose event asked and the job they follow, so a redelivery repeats no write it already
 * made, yet an event that finds its set loaded by another request still writes it after that one.
 * Where a job can outlive its request, a redelivery first awaits the job its objects are marked with.
 *
 * In one instance a partition has one rebuild in flight: the events that arrive while it runs join
 * the next one, which rebuilds the day once for all of them (a forced reprocess goes alone).
 */
export async function rebuildPartition(
  triggers: StoredObject[],
  route: Route,
  destination: Destination,
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<ObjectResult[]> {
  const forcedBy = request.force ? request.forceId : undefined;
  const day: Day = { route, destination, services, deadline, forcedBy };
  if (request.force) return rebuildDay(triggers, day);
  let rounds = roundsOf.get(services);
  if (!rounds) roundsOf.set(services, (rounds = new Rounds()));
  const key = `${route.index}:${partitionedTableId(destination)}`;
  const followed = () => rounds.waiting(key);
  const all = rounds.join(key, triggers, deadline, (joined, latest) =>
    rebuildDay(uniqueObjects(joined), { ...day, deadline: latest }, followed),
  );
  const mine = await beforeDeadline(all, deadline, destination);
  return mine.filter((r) =>
    triggers.some((t) => r.uri === gsUri(t) && r.generation === t.generation),
  );
}

/** Each instance's (each Services') rebuild rounds, by route and partition. */
const roundsOf = new WeakMap<Services, Rounds<StoredObject, ObjectResult[]>>();

function uniqueObjects(objects: StoredObject[]): StoredObject[] {
  const byKey = new Map(objects.map((o) => [`${gsUri(o)}#${o.generation}`, o]));
  return [...byKey.values()];
}

/** The round's results, or a TransientError when this request's own time budget runs out first. */
async function beforeDeadline<T>(work: Promise<T>, deadline: number, destination: Destination) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject_) => {
    timer = setTimeout(
      () =>
        reject_(
          new TransientError(
            `the rebuild of partition ${partitionedTableId(destination)} did not end within the time budget; redelivery will join the next one`,
          ),
        ),
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function rebuildDay(
  triggers: StoredObject[],
  day: Day,
  followed: () => boolean = () => false,
): Promise<ObjectResult[]> {
  const { route, destination, services, deadline, forcedBy } = day;
  const { config, warehouse } = services;
  // A forced reprocess loads its objects again even where an earlier attempt quarantined them.
  const keep = forcedBy !== undefined ? triggers : [];
  const members = () => partitionMembers(triggers, keep, route, destination, services);

  let listed = await members();
  const { results, live } = await checkTriggers(triggers, listed, day);
  if (live.length === 0) return results;
  await settleEarlierRebuilds(live, route, destination, services, deadline);

  let sources = listed.objects.filter((o) => !isAmong(o, triggers) || isAmong(o, live));
  let after: string | undefined;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const ready = await sourcesWithHeads(sources, live, day, results);
    sources = ready.sources;
    const tooLarge = batchLimitProblem(sources);
    if (tooLarge) {
      const reason = `partition ${destination.partition ?? ''} cannot be rebuilt in one job: ${tooLarge}`;
      return [
        ...results,
        ...live.map((o) => ({ ...identify(o), outcome: 'rejected' as const, reason })),
      ];
    }
    const jobId = jobIdFor(sources, destination, route.write, forcedBy, {
      rebuiltFor: live,
      after,
    });
    const job = {
      ...buildJob(sources, route, destination, config, jobId, deadline),
      heads: ready.heads,
    };
    await markRebuild(live, jobId, services);
    const result = await warehouse.load(job);
    if (result.outcome === 'rejected') {
      // Quarantine the objects that are themselves bad, and rebuild without them.
      const culprits = await findCulprits(job, result.reason, live, day);
      for (const { object, reason } of culprits) {
        // The warehouse has recorded the failed job with all its sources.
        const rejected = await reject(object, reason, job, services, false);
        if (isAmong(object, live)) results.push(rejected);
      }
      const bad = culprits.map((c) => c.object);
      const remaining = live.filter((o) => !isAmong(o, bad));
      if (remaining.length === 0) return results;
      live.splice(0, live.length, ...remaining);
      sources = sources.filter((o) => !isAmong(o, bad));
      after = jobId;
      continue;
    }
    listed = await members();
    const current = listed.objects;
    // A rebuild queued after this one in the instance lists the day after this job: it writes the newer set.
    if (result.outcome !== 'replaced' && (sameGenerations(current, sources) || followed())) {
      return [...results, ...heldBy(result, sources, live, destination)];
    }
    sources = current;
    after = result.jobId;
  }
  throw new TransientError(
    `partition ${partitionedTableId(destination)} changed during ${MAX_ROUNDS} rebuilds in a row; redelivery will rebuild it again`,
  );
}

/** What a rebuild that wrote `sources` says of each object its request asked for. */
function heldBy(
  result: Exclude<LoadResult, { outcome: 'rejected' }>,
  sources: StoredObject[],
  live: StoredObject[],
  destination: Destination,
): ObjectResult[] {
  const outcome = loadOutcome(result, destination);
  const held = `partition ${destination.partition ?? ''} holds ${sources.length} object${sources.length === 1 ? '' : 's'}`;
  return live.map((object) =>
    isAmong(object, sources)
      ? {
          ...identify(object),
          ...outcome,
          ...memberRows(
            result,
            sources.findIndex((o) => isAmong(o, [object])),
            sources.length,
          ),
          reason: outcome.reason ? `${held}; ${outcome.reason}` : held,
        }
      : {
          ...identify(object),
          outcome: 'skipped' as const,
          destination: tableId(destination),
          reason: 'replaced or deleted while its partition was rebuilt',
        },
  );
}
