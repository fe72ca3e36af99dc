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
import { tableId, type LoadJob } from '../warehouses/warehouse';
import type { SourceHead } from '../schema/columns';

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
      const loaded = {
        ...identify(object),
        ...outcome,
        ...memberRows(result, i, sources.length),
        ...replacedOf(result, i),
      };
      const again = forceId !== undefined && route.write === 'append' && !route.lineage;
      results.push(again ? appendedAgain(loaded) : loaded);
    }
  }
  return results;
}

/** A forced load on an `append` route adds the object's rows to the table again: the answer says so. */
export function appendedAgain(result: ObjectResult): ObjectResult {
  return result.outcome === 'loaded' ? { ...result, appendedAgain: true } : result;
}
