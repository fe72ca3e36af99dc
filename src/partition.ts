import type { Route } from './config';
import { TransientError } from './errors';
import type { IngestRequest } from './events';
import { batchLimitProblem } from './fanout';
import { buildJob, checkObjectHead, loadOutcome, memberRows, namesObject } from './jobs';
import { identify, type ObjectResult } from './outcomes';
import { matchPattern } from './pattern';
import { Rounds } from './rounds';
import { quarantinedUnder, reject, type Quarantined } from './quarantine';
import { jobIdFor, routeObject } from './routing';
import type { Services } from './services';
import { ownMetadataValue, readOwnMetadata } from './stores/own-metadata';
import { BucketNotFoundError, ObjectGoneError, gsUri, type StoredObject } from './stores/store';
import {
  partitionedTableId,
  tableId,
  type Destination,
  type LoadJob,
  type LoadResult,
  type SourceHead,
} from './warehouses/warehouse';

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

/** The objects whose events asked for the rebuild that can join it; results for the others. */
async function checkTriggers(
  triggers: StoredObject[],
  listed: Listing,
  day: Day,
): Promise<{ results: ObjectResult[]; live: StoredObject[] }> {
  const { route, destination, services, deadline, forcedBy } = day;
  const results: ObjectResult[] = [];
  const live: StoredObject[] = [];
  for (const object of triggers) {
    const quarantined = listed.quarantined.get(object.name);
    if (quarantined?.generation === object.generation) {
      results.push(rejectedEarlier(object, quarantined));
      continue;
    }
    const checked = await checkSource(object, day);
    if (checked === 'gone') {
      results.push({ ...identify(object), outcome: 'skipped', reason: 'object no longer exists' });
    } else if ('problem' in checked) {
      const jobId = jobIdFor([object], destination, route.write, forcedBy);
      const job = buildJob([object], route, destination, services.config, jobId, deadline);
      results.push(await reject(object, checked.problem, job, services));
    } else {
      live.push(object);
    }
  }
  return { results, live };
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

/** What a rebuild of one day works with. */
interface Day {
  route: Route;
  destination: Destination;
  services: Services;
  deadline: number;
  forcedBy: string | undefined;
}

// Heads of the object generations this instance has checked, so that a day's rebuilds read each file once.
const HEADS_KEPT = 20_000;
const checkedHeads = new WeakMap<object, Map<string, SourceHead>>();

/** The object's head, checked against its table (cached once it passed), its problem, or 'gone'. */
async function checkSource(
  object: StoredObject,
  { route, destination, services }: Day,
): Promise<SourceHead | { problem: string } | 'gone'> {
  let heads = checkedHeads.get(services.store);
  if (!heads) checkedHeads.set(services.store, (heads = new Map()));
  const key = `${gsUri(object)}#${object.generation}`;
  const known = heads.get(key);
  if (known) return known;
  const checked = await checkObjectHead(object, route, destination, services);
  if (checked === 'gone' || 'problem' in checked) return checked;
  // A partition route never skips: a header-only file loads its 0 rows.
  if ('skip' in checked) return { problem: checked.skip };
  if (heads.size >= HEADS_KEPT) heads.delete(heads.keys().next().value as string);
  heads.set(key, checked);
  return checked;
}

/**
 * The sources that can join the day's job, each with its head: a sibling whose own head shows it
 * cannot load is quarantined on its own (the objects the request asked for were checked already);
 * one that is gone is left out.
 */
async function sourcesWithHeads(
  sources: StoredObject[],
  live: StoredObject[],
  day: Day,
  results: ObjectResult[],
): Promise<{ sources: StoredObject[]; heads: SourceHead[] }> {
  const kept: StoredObject[] = [];
  const heads: SourceHead[] = [];
  for (const object of sources) {
    const checked = await checkSource(object, day);
    if (checked === 'gone') continue;
    if ('problem' in checked) {
      const rejected = await reject(object, checked.problem, undefined, day.services);
      if (isAmong(object, live)) results.push(rejected);
      continue;
    }
    kept.push(object);
    heads.push(checked);
  }
  return { sources: kept, heads };
}

/**
 * The sources of a rejected rebuild that are themselves bad. A reason naming exactly one source
 * blames it; one that names several, or none, is split by loading halves of the suspects on trial
 * (writing nothing) until each bad file is alone. Should no half fail alone, the objects the request
 * asked for are blamed, as a last resort that always makes progress.
 */
async function findCulprits(
  job: LoadJob,
  reason: string,
  live: StoredObject[],
  day: Day,
): Promise<{ object: StoredObject; reason: string }[]> {
  const named = job.sources.filter((o) => namesObject(reason, o));
  if (named.length === 1) return [{ object: named[0] as StoredObject, reason }];
  const suspects = named.length > 1 ? named : job.sources;
  if (suspects.length === 1) return [{ object: suspects[0] as StoredObject, reason }];
  const half = Math.ceil(suspects.length / 2);
  const found = [
    ...(await bisect(job, suspects.slice(0, half), day)),
    ...(await bisect(job, suspects.slice(half), day)),
  ];
  return found.length > 0 ? found : live.map((object) => ({ object, reason }));
}

async function bisect(
  job: LoadJob,
  suspects: StoredObject[],
  day: Day,
): Promise<{ object: StoredObject; reason: string }[]> {
  const heads = suspects.map((o) => job.heads?.[job.sources.indexOf(o)] as SourceHead);
  const trialId = jobIdFor(suspects, job.destination, job.write, day.forcedBy, {
    rebuiltFor: suspects,
    after: `trial of ${job.jobId}`,
  });
  const trial = { ...job, jobId: trialId, sources: suspects, heads, trial: true };
  const result = await day.services.warehouse.load(trial);
  if (result.outcome !== 'rejected') return [];
  const named = suspects.filter((o) => namesObject(result.reason, o));
  if (suspects.length === 1 || named.length === 1) {
    return [{ object: (named[0] ?? suspects[0]) as StoredObject, reason: result.reason }];
  }
  const half = Math.ceil(suspects.length / 2);
  return [
    ...(await bisect(job, suspects.slice(0, half), day)),
    ...(await bisect(job, suspects.slice(half), day)),
  ];
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
