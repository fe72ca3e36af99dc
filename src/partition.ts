import type { Route } from './config';
import { TransientError } from './errors';
import type { IngestRequest } from './events';
import { batchLimitProblem } from './fanout';
import { buildJob, checkObjectHead, loadOutcome, memberRows, namesObject } from './jobs';
import { identify, type ObjectResult } from './outcomes';
import { matchPattern } from './pattern';
import { quarantinedUnder, reject, type Quarantined } from './quarantine';
import { jobIdFor, routeObject } from './routing';
import type { Services } from './services';
import { ownMetadataValue, readOwnMetadata } from './stores/own-metadata';
import { BucketNotFoundError, ObjectGoneError, type StoredObject } from './stores/store';
import { partitionedTableId, tableId, type Destination } from './warehouses/warehouse';

/** The custom metadata key naming the last rebuild job an event's object generation started. */
const REBUILD_JOB_KEY = 'ingest-rebuild-job';

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
 */
export async function rebuildPartition(
  triggers: StoredObject[],
  route: Route,
  destination: Destination,
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<ObjectResult[]> {
  const { config, warehouse } = services;
  const forcedBy = request.force ? request.forceId : undefined;
  const results: ObjectResult[] = [];
  // A forced reprocess loads its objects again even where an earlier attempt quarantined them.
  const keep = request.force ? triggers : [];
  const members = () => partitionMembers(triggers, keep, route, destination, services);

  let listed = await members();
  const live: StoredObject[] = [];
  for (const object of triggers) {
    const quarantined = listed.quarantined.get(object.name);
    if (quarantined?.generation === object.generation) {
      results.push(rejectedEarlier(object, quarantined));
      continue;
    }
    const checked = await checkObjectHead(object, route, destination, services);
    if (checked === 'gone') {
      results.push({ ...identify(object), outcome: 'skipped', reason: 'object no longer exists' });
    } else if ('problem' in checked) {
      const job = buildJob(
        [object],
        route,
        destination,
        config,
        jobIdFor([object], destination, route.write, forcedBy),
        deadline,
      );
      results.push(await reject(object, checked.problem, job, services));
    } else {
      live.push(object);
    }
  }
  if (live.length === 0) return results;
  await settleEarlierRebuilds(live, route, destination, services, deadline);

  let sources = listed.objects.filter((o) => !isAmong(o, triggers) || isAmong(o, live));
  let after: string | undefined;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
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
    const job = buildJob(sources, route, destination, config, jobId, deadline);
    await markRebuild(live, jobId, services);
    const result = await warehouse.load(job);
    if (result.outcome === 'rejected') {
      // Quarantine the objects the reason names and rebuild without them; unnamed, the request's own.
      const named = sources.filter((o) => namesObject(result.reason, o));
      const culprits = named.length > 0 ? named : live;
      for (const object of culprits) {
        // The warehouse has recorded the failed job with all its sources.
        const rejected = await reject(object, result.reason, job, services, false);
        if (isAmong(object, live)) results.push(rejected);
      }
      const remaining = live.filter((o) => !isAmong(o, culprits));
      if (remaining.length === 0) return results;
      live.splice(0, live.length, ...remaining);
      sources = sources.filter((o) => !isAmong(o, culprits));
      after = jobId;
      continue;
    }
    listed = await members();
    const current = listed.objects;
    if (result.outcome !== 'replaced' && sameGenerations(current, sources)) {
      const outcome = loadOutcome(result, destination);
      const held = `partition ${destination.partition ?? ''} holds ${sources.length} object${sources.length === 1 ? '' : 's'}`;
      for (const object of live) {
        if (isAmong(object, sources)) {
          const reason = outcome.reason ? `${held}; ${outcome.reason}` : held;
          const own = memberRows(
            result,
            sources.findIndex((o) => isAmong(o, [object])),
            sources.length,
          );
          results.push({ ...identify(object), ...outcome, ...own, reason });
        } else {
          results.push({
            ...identify(object),
            outcome: 'skipped',
            destination: tableId(destination),
            reason: 'replaced or deleted while its partition was rebuilt',
          });
        }
      }
      return results;
    }
    sources = current;
    after = result.jobId;
  }
  throw new TransientError(
    `partition ${partitionedTableId(destination)} changed during ${MAX_ROUNDS} rebuilds in a row; redelivery will rebuild it again`,
  );
}

/**
 * Where a load job can outlive the process that inserted it (BigQuery), each event's objects carry the
 * id of the last rebuild they started, so that a redelivery awaits that job before writing: a job
 * left running by a dead instance can then never finish after the redelivery's newer set.
 */
async function markRebuild(objects: StoredObject[], jobId: string, services: Services) {
  const { store, warehouse } = services;
  if (!store.annotate || !warehouse.settle) return;
  const annotate = store.annotate.bind(store);
  await Promise.all(
    objects.map((object) =>
      annotate(object, { [REBUILD_JOB_KEY]: ownMetadataValue(object, { job: jobId }) }).catch(
        (error: unknown) => {
          // Replaced meanwhile: the rebuild's last listing leaves it out and says so.
          if (!(error instanceof ObjectGoneError)) throw error;
        },
      ),
    ),
  );
}

async function settleEarlierRebuilds(
  objects: StoredObject[],
  route: Route,
  destination: Destination,
  { config, warehouse }: Services,
  deadline: number,
): Promise<void> {
  if (!warehouse.settle) return;
  // A copy of an object arrives with its source's mark, which names the source: not its rebuild.
  const marks = objects.map((o) => readOwnMetadata(o, o.metadata?.[REBUILD_JOB_KEY])?.job);
  for (const jobId of new Set(marks)) {
    if (typeof jobId !== 'string') continue;
    await warehouse.settle(buildJob(objects, route, destination, config, jobId, deadline));
  }
}

interface Listing {
  /** The partition's current objects, in name order, without empty or quarantined generations. */
  objects: StoredObject[];
  quarantined: Map<string, Quarantined>;
}

/** Every current object the route maps to this partition, in the buckets it may come from. */
async function partitionMembers(
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

function rejectedEarlier(object: StoredObject, copy: Quarantined): ObjectResult {
  return { ...identify(object), outcome: 'rejected', reason: `rejected earlier: ${copy.reason}` };
}

function isAmong(object: StoredObject, list: StoredObject[]): boolean {
  return list.some(
    (o) =>
      o.bucket === object.bucket && o.name === object.name && o.generation === object.generation,
  );
}

function sameGenerations(a: StoredObject[], b: StoredObject[]): boolean {
  return a.length === b.length && a.every((o) => isAmong(o, b));
}
