import { Batcher, type PaceChange } from './batcher';
import type { BatchContext } from './context';
import type { ObjectServices } from '../objects/services';
import { jobIdOf } from './job-ids';
import { load } from './load';
import { claimAlone, followClaim } from './lone';
import { runJob } from './run-job';
import type { BatchLog, BatchObject, Batches, Member } from './types';
import { TransientError } from '../core/errors';
import { createJobWatch } from './job-watch';
import { gsUri } from '../stores/store';

export type { BatchLog, BatchObject, Batches, LoneObject } from './types';

export function createBatches(services: ObjectServices, log: BatchLog): Batches {
  const { config, warehouse } = services;
  // Objects per destination between their arrival and the queue (their claim and head being read).
  const arriving = new Map<string, number>();
  const context: BatchContext = {
    services,
    log,
    inFlight: new Map<string, Promise<void>>(),
    // The jobs that claims made elsewhere (another instance, an earlier delivery) name.
    jobs: createJobWatch((jobId, deadline) =>
      warehouse.followJob(jobId, { location: config.location, deadline }),
    ),
    arriving,
    batcher: new Batcher<Member>(
      (table, members) => runJob(context, table, members, jobIdOf(members)),
      (change: PaceChange) => log.warn(change, describePaceChange(change)),
      (table) => (arriving.get(table) ?? 0) > 0,
    ),
    paceOf: (item: BatchObject) => ({
      jobsPerDay: item.route.batch.jobsPerDay ?? warehouse.jobsPerDay,
      burst: item.route.batch.burst,
      maxFiles: item.route.batch.maxFiles,
    }),
  };

  return {
    load: (item, forcedBy, deadline) => load(context, item, forcedBy, deadline),
    followClaim: (item, deadline) => followClaim(context, item, deadline),
    claimAlone: (item, jobId, version) => claimAlone(context, item, jobId, version),
    abort(reason) {
      context.batcher.abort(new TransientError(reason), (m) =>
        m.finish(new TransientError(`${reason}; ${gsUri(m.item.object)} was not claimed yet`)),
      );
    },
  };
}

/** Says how BigQuery's limits changed a destination's pace. */
function describePaceChange({ destination, jobsPerDay, reason, heldMs }: PaceChange): string {
  if (heldMs !== undefined)
    return `load jobs into ${destination} held for ${heldMs / 1000} s (the pace stays at ${Math.round(jobsPerDay)} a day): ${reason}`;
  return `load jobs into ${destination} now paced at ${Math.round(jobsPerDay)} a day: ${reason}`;
}
