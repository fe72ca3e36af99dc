import type { Route } from '../../config';
import { buildJob } from '../../objects/jobs';
import type { Services } from '../services';
import { ownMetadataValue, readOwnMetadata } from '../../stores/own-metadata';
import { ObjectGoneError, type StoredObject } from '../../stores/store';
import type { Destination } from '../../warehouses/warehouse';

/** The custom metadata key naming the last rebuild job an event's object generation started. */
const REBUILD_JOB_KEY = 'ingest-rebuild-job';

/**
 * Where a load job can outlive the process that inserted it (BigQuery), each event's objects carry the
 * id of the last rebuild they started, so that a redelivery awaits that job before writing: a job
 * left running by a dead instance can then never finish after the redelivery's newer set.
 */
export async function markRebuild(objects: StoredObject[], jobId: string, services: Services) {
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

export async function settleEarlierRebuilds(
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
