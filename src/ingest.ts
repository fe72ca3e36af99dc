import type { BatchObject } from './coalesce';
import type { Route } from './config';
import { RequestError, TransientError, errorMessage } from './errors';
import type { IngestRequest, ObjectRef } from './events';
import { batchLimitProblem } from './fanout';
import { mapLimit } from './map-limit';
import { buildJob, checkObjectHead, headerShape, loadOutcome, memberRows } from './jobs';
import {
  identify,
  overallOutcome,
  type IngestResult,
  type ObjectResult,
  type Outcome,
} from './outcomes';
import { rebuildPartition } from './partition';
import { expandPrefix } from './prefix';
import { reject } from './quarantine';
import { jobIdFor, routeObject } from './routing';
import type { Services } from './services';
import {
  BucketNotFoundError,
  UnsupportedNameError,
  gsUri,
  type StoredObject,
} from './stores/store';
import {
  partitionedTableId,
  tableId,
  type Destination,
  type LoadJob,
  type SourceHead,
} from './warehouses/warehouse';

export type { Services } from './services';

const PARALLEL = 16;

/** Ingests what a request names: plan, check the header, load, classify, quarantine what is rejected. */
export async function ingest(
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<IngestResult> {
  const results: ObjectResult[] = request.ignored.map(({ ref, reason }) => ({
    ...identify(ref),
    outcome: 'skipped',
    reason,
  }));
  let refs = request.objects;
  const { buckets } = services.config;
  if (request.prefix && buckets && !buckets.includes(request.prefix.bucket)) {
    const { bucket, prefix } = request.prefix;
    const reason = `bucket ${bucket} is not in the allowlist`;
    results.push({ uri: `gs://${bucket}/${prefix}`, outcome: 'skipped', reason });
  } else if (request.prefix) {
    const expanded = await expandPrefix(request.prefix, request, services).catch(
      (error: unknown) => {
        if (!(error instanceof BucketNotFoundError)) throw error;
        const { bucket, prefix } = request.prefix!;
        return {
          queued: [
            { uri: `gs://${bucket}/${prefix}`, outcome: 'skipped' as const, reason: error.message },
          ],
        };
      },
    );
    if ('queued' in expanded) results.push(...expanded.queued);
    else refs = expanded.refs;
  }
  results.push(...(await ingestObjects(refs, request, services, deadline)));
  return { outcome: overallOutcome(results), objects: results };
}

interface Ready {
  kind: 'ready';
  object: StoredObject;
  route: Route;
  destination: Destination;
}
type Prepared = { kind: 'done'; result: ObjectResult } | Ready;

async function ingestObjects(
  refs: ObjectRef[],
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<ObjectResult[]> {
  const transient: unknown[] = [];
  const settle = async <T>(work: () => Promise<T[]>): Promise<T[]> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof RequestError) throw error;
      transient.push(error);
      return [];
    }
  };
  const prepared = (
    await mapLimit(refs, PARALLEL, (ref) => settle(async () => [await prepare(ref, services)]))
  ).flat();
  const results: ObjectResult[] = [];
  const batches = new Map<string, Ready[]>();
  const coalesced: BatchObject[] = [];
  for (const p of prepared) {
    if (p.kind === 'done') {
      results.push(p.result);
      continue;
    }
    const { route } = p;
    if (route.batch !== false) {
      coalesced.push({
        object: p.object,
        route: { ...route, batch: route.batch },
        destination: p.destination,
      });
      continue;
    }
    // Truncating writes to one destination must be one job, or each job would erase the last.
    const key =
      p.route.write === 'append'
        ? `append:${batches.size}`
        : `${p.route.write}:${partitionedTableId(p.destination)}`;
    batches.set(key, [...(batches.get(key) ?? []), p]);
  }
  const forcedBy = request.force ? request.forceId : undefined;
  const [loaded, batched] = await Promise.all([
    mapLimit([...batches.values()], PARALLEL, (batch) =>
      settle(() => {
        const { route, destination } = batch[0] as Ready;
        if (route.write !== 'partition') return loadBatch(batch, request, services, deadline);
        const objects = batch.map((b) => b.object);
        return rebuildPartition(objects, route, destination, request, services, deadline);
      }),
    ),
    Promise.all(
      coalesced.map((item) =>
        settle(async () => {
          const result = await services.batches.load(item, forcedBy, deadline);
          return [forcedBy === undefined ? result : appendedAgain(result)];
        }),
      ),
    ),
  ]);
  results.push(...loaded.flat(), ...batched.flat());
  if (transient.length > 0) {
    const first = transient[0];
    const summary = transient.map(errorMessage).slice(0, 5).join('; ');
    throw new TransientError(
      `${transient.length} failure(s) among ${refs.length} objects; redelivery will retry them: ${summary}`,
      { cause: first },
    );
  }
  return results;
}

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

async function prepare(ref: ObjectRef, { config, store, warehouse }: Services): Promise<Prepared> {
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

async function loadBatch(
  batch: Ready[],
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<ObjectResult[]> {
  const { route, destination } = batch[0] as Ready;
  const forceId = request.force ? request.forceId : undefined;
  const build = (sources: StoredObject[], head?: SourceHead): LoadJob =>
    buildJob(
      sources,
      route,
      destination,
      services.config,
      jobIdFor(sources, destination, route.write, forceId),
      deadline,
      head,
    );
  const results: ObjectResult[] = [];
  let sources = batch.map((b) => b.object);
  const tooLarge = batchLimitProblem(sources);
  if (tooLarge)
    return sources.map((s) => ({ ...identify(s), outcome: 'rejected', reason: tooLarge }));

  // A duplicate the warehouse already knows of needs no read of the object.
  const { jobId } = build(sources);
  const known = services.warehouse.completedRows?.(jobId);
  if (known !== undefined) {
    const where = { destination: tableId(destination), jobId, rows: known };
    return sources.map((s) => ({ ...identify(s), outcome: 'duplicate' as const, ...where }));
  }

  // An append route's object carries a claim naming the job that loads it (coalesce.ts): follow an
  // earlier one (a coalesced job, while the route batched), or claim it for its own job below.
  const claimed = route.write === 'append' && forceId === undefined;
  let version = '';
  if (claimed) {
    const object = sources[0] as StoredObject;
    const earlier = await services.batches.followClaim({ object, route, destination }, deadline);
    if ('outcome' in earlier) return [earlier];
    version = earlier.version;
  }

  const bad: { object: StoredObject; reason: string }[] = [];
  let head: SourceHead | undefined;
  const heads = new Map<StoredObject, SourceHead>();
  for (const object of sources) {
    const checked = await checkObjectHead(object, route, destination, services);
    if (checked === 'gone')
      results.push({ ...identify(object), outcome: 'skipped', reason: 'object no longer exists' });
    else if ('skip' in checked)
      results.push({ ...identify(object), outcome: 'skipped', reason: checked.skip });
    else if ('problem' in checked) bad.push({ object, reason: checked.problem });
    else if (head && headerShape(head) !== headerShape(checked)) {
      const reason = `its header (${checked.header.join(',')}) differs from that of ${gsUri(sources[0]!)}: a ${route.write} batch loads in one job, whose files share one header`;
      bad.push({ object, reason });
    } else {
      head ??= checked;
      heads.set(object, checked);
    }
  }
  const gone = new Set(results.map((r) => r.uri)); // gone or skipped
  sources = sources.filter((s) => !gone.has(gsUri(s)));
  if (sources.length === 0) return results;
  const job = build(sources, head);
  if (bad.length === 0) job.heads = sources.map((s) => heads.get(s) as SourceHead);
  if (bad.length > 0) {
    for (const { object, reason } of bad) results.push(await reject(object, reason, job, services));
    const badUris = new Set(bad.map((b) => gsUri(b.object)));
    for (const object of sources.filter((s) => !badUris.has(gsUri(s)))) {
      const reason = `not loaded: ${gsUri(bad[0]!.object)} in the same ${route.write} batch was rejected`;
      results.push({
        ...identify(object),
        outcome: 'rejected',
        destination: tableId(destination),
        reason,
      });
    }
    return results;
  }

  if (claimed) {
    const item = { object: sources[0] as StoredObject, route, destination };
    const swap = await services.batches.claimAlone(item, job.jobId, version);
    if (swap === 'gone')
      return [{ ...identify(item.object), outcome: 'skipped', reason: 'object no longer exists' }];
    if (swap === 'lost') {
      throw new TransientError(
        `${gsUri(item.object)}: claimed by another delivery meanwhile; redelivery will follow its claim`,
      );
    }
  }
  const result = await services.warehouse.load(job);
  for (const [i, object] of sources.entries()) {
    if (result.outcome === 'rejected') {
      results.push(
        await reject(object, result.reason, { ...job, jobId: result.jobId }, services, false),
      );
    } else {
      const outcome = loadOutcome(result, destination);
      // The job's schema changes are told once, on its first object.
      if (i > 0) delete outcome.schemaChanges;
      const loaded = { ...identify(object), ...outcome, ...memberRows(result, i, sources.length) };
      results.push(
        forceId !== undefined && route.write === 'append' ? appendedAgain(loaded) : loaded,
      );
    }
  }
  return results;
}

/** A forced load on an `append` route adds the object's rows to the table again: the answer says so. */
function appendedAgain(result: ObjectResult): ObjectResult {
  return result.outcome === 'loaded' ? { ...result, appendedAgain: true } : result;
}
