import type { BatchObject } from '../batching';
import { RequestError, TransientError, errorMessage } from '../core/errors';
import type { IngestRequest, ObjectRef } from '../objects/request';
import { appendedAgain, loadBatch } from './load-batch';
import { mapLimit } from '../core/map-limit';
import {
  identify,
  overallOutcome,
  type IngestResult,
  type ObjectResult,
} from '../objects/outcomes';
import { notifyOutcomes } from './notify';
import { rebuildPartition } from './partition';
import { prepare, type Ready } from './prepare';
import { expandPrefix } from './prefix';
import type { Services } from './services';
import { BucketNotFoundError } from '../stores/store';
import { partitionedTableId } from '../warehouses/warehouse';

export type { Services } from './services';

const PARALLEL = 16;

/**
 * Ingests what a request names: plan, check the header, load, classify, quarantine what is rejected,
 * and tell the outcomes `notify` asks for. A transient failure of some objects is thrown (503) after
 * the outcomes of the others have been told.
 */
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
  const settled = await ingestObjects(refs, request, services, deadline);
  results.push(...settled.results);
  const told = await notifyOutcomes(results, services, deadline);
  if (settled.failure) throw settled.failure;
  const objects = results.map((r, i): ObjectResult => (told.has(i) ? { ...r, notified: true } : r));
  return { outcome: overallOutcome(objects), objects };
}

async function ingestObjects(
  refs: ObjectRef[],
  request: IngestRequest,
  services: Services,
  deadline: number,
): Promise<{ results: ObjectResult[]; failure?: TransientError }> {
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
          const again = forcedBy !== undefined && !item.route.lineage;
          return [again ? appendedAgain(result) : result];
        }),
      ),
    ),
  ]);
  results.push(...loaded.flat(), ...batched.flat());
  if (transient.length === 0) return { results };
  const summary = transient.map(errorMessage).slice(0, 5).join('; ');
  const failure = new TransientError(
    `${transient.length} failure(s) among ${refs.length} objects; redelivery will retry them: ${summary}`,
    { cause: transient[0] },
  );
  return { results, failure };
}
