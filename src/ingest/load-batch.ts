import { TransientError } from '../core/errors';
import type { IngestRequest } from '../objects/request';
import { batchLimitProblem } from '../objects/fanout';
import {
  buildJob,
  checkObjectHead,
  headerShape,
  loadOutcome,
  memberRows,
  replacedOf,
} from '../objects/jobs';
import { identify, type ObjectResult } from '../objects/outcomes';
import type { Ready } from './prepare';
import { reject } from '../objects/quarantine';
import { jobIdFor } from '../objects/routing';
import type { Services } from './services';
import { gsUri, type StoredObject } from '../stores/store';
import { tableId, type Destination, type LoadJob, type LoadResult } from '../warehouses/warehouse';
import type { SourceHead } from '../schema/columns';
import type { Route } from '../config';

export async function loadBatch(
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

  const { skipped, bad, head, heads } = await checkHeads(sources, route, destination, services);
  const gone = new Set(skipped.map((r) => r.uri)); // gone or skipped
  sources = sources.filter((s) => !gone.has(gsUri(s)));
  if (sources.length === 0) return skipped;
  const job = build(sources, head);
  if (bad.length > 0)
    return [...skipped, ...(await rejectBatch(bad, sources, job, route.write, services))];
  job.heads = sources.map((s) => heads.get(s) as SourceHead);

  if (claimed) {
    const item = { object: sources[0] as StoredObject, route, destination };
    const goneBeforeClaim = await claimForOwnJob(item, job.jobId, version, services);
    if (goneBeforeClaim) return [goneBeforeClaim];
  }
  const result = await services.warehouse.load(job);
  const appended = forceId !== undefined && route.write === 'append' && !route.lineage;
  return [...skipped, ...(await loadResults(result, job, appended, services))];
}

interface BadObject {
  object: StoredObject;
  reason: string;
}

/**
 * Reads each source's head: those gone or to be skipped are answered at once, those that cannot
 * load (or whose header differs from the first good one's) are bad, the rest share `head`.
 */
async function checkHeads(
  sources: StoredObject[],
  route: Route,
  destination: Destination,
  services: Services,
) {
  const skipped: ObjectResult[] = [];
  const bad: BadObject[] = [];
  let head: SourceHead | undefined;
  const heads = new Map<StoredObject, SourceHead>();
  for (const object of sources) {
    const checked = await checkObjectHead(object, route, destination, services);
    if (checked === 'gone')
      skipped.push({ ...identify(object), outcome: 'skipped', reason: 'object no longer exists' });
    else if ('skip' in checked)
      skipped.push({ ...identify(object), outcome: 'skipped', reason: checked.skip });
    else if ('problem' in checked) bad.push({ object, reason: checked.problem });
    else if (head && headerShape(head) !== headerShape(checked)) {
      const reason = `its header (${checked.header.join(',')}) differs from that of ${gsUri(sources[0]!)}: a ${route.write} batch loads in one job, whose files share one header`;
      bad.push({ object, reason });
    } else {
      head ??= checked;
      heads.set(object, checked);
    }
  }
  return { skipped, bad, head, heads };
}

/** Quarantines the bad objects; the batch loads in one job, so the others are rejected with them. */
async function rejectBatch(
  bad: BadObject[],
  sources: StoredObject[],
  job: LoadJob,
  write: Route['write'],
  services: Services,
): Promise<ObjectResult[]> {
  const results: ObjectResult[] = [];
  for (const { object, reason } of bad) results.push(await reject(object, reason, job, services));
  const badUris = new Set(bad.map((b) => gsUri(b.object)));
  for (const object of sources.filter((s) => !badUris.has(gsUri(s)))) {
    const reason = `not loaded: ${gsUri(bad[0]!.object)} in the same ${write} batch was rejected`;
    results.push({
      ...identify(object),
      outcome: 'rejected',
      destination: tableId(job.destination),
      reason,
    });
  }
  return results;
}

/** Claims the object for its own job: a skipped result when it is gone; throws when another delivery won it. */
async function claimForOwnJob(
  item: { object: StoredObject; route: Route; destination: Destination },
  jobId: string,
  version: string,
  services: Services,
): Promise<ObjectResult | undefined> {
  const swap = await services.batches.claimAlone(item, jobId, version);
  if (swap === 'gone')
    return { ...identify(item.object), outcome: 'skipped', reason: 'object no longer exists' };
  if (swap === 'lost') {
    throw new TransientError(
      `${gsUri(item.object)}: claimed by another delivery meanwhile; redelivery will follow its claim`,
    );
  }
  return undefined;
}

/** Each source's result of the job: quarantined when the job was rejected, loaded otherwise. */
async function loadResults(
  result: LoadResult,
  job: LoadJob,
  appended: boolean,
  services: Services,
): Promise<ObjectResult[]> {
  const results: ObjectResult[] = [];
  for (const [i, object] of job.sources.entries()) {
    if (result.outcome === 'rejected') {
      results.push(
        await reject(object, result.reason, { ...job, jobId: result.jobId }, services, false),
      );
    } else {
      const outcome = loadOutcome(result, job.destination);
      // The job's schema changes are told once, on its first object.
      if (i > 0) delete outcome.schemaChanges;
      const count = job.sources.length;
      const loaded = {
        ...identify(object),
        ...outcome,
        ...memberRows(result, i, count),
        ...replacedOf(result, i),
      };
      results.push(appended ? appendedAgain(loaded) : loaded);
    }
  }
  return results;
}

/** A forced load on an `append` route adds the object's rows to the table again: the answer says so. */
export function appendedAgain(result: ObjectResult): ObjectResult {
  return result.outcome === 'loaded' ? { ...result, appendedAgain: true } : result;
}
