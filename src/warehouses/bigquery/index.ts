import { TransientError } from '../../core/errors';
import type { Warehouse } from '../warehouse';
import { createContext, type BigQueryWarehouseOptions } from './context';
import { toWarehouseError } from './errors';
import { followJob, settle } from './follow';
import { precheckGzip } from './gzip';
import { load, loadClaimed } from './load';
import { loadLineage } from './lineage';
import { createColumnCache } from './table-columns';
import { listTables } from './tables';

export type { BigQueryWarehouseOptions } from './context';
export { quotaLimitOf } from './job-results';
export { toJobConfiguration, toLoadConfiguration } from './load-config';

// Load jobs per table per day a batching route may run: headroom under BigQuery's 1,500 for other writers.
const DEFAULT_JOBS_PER_DAY = 1000;

/**
 * The BigQuery Warehouse: one load job per LoadJob, reading the gs:// URIs itself; on a lineage route
 * staging loads and one query job (lineage.ts).
 */
export function createBigQueryWarehouse(options: BigQueryWarehouseOptions = {}): Warehouse {
  const ctx = createContext(options);
  const columns = createColumnCache(ctx);
  const running = new Set<Promise<unknown>>();
  // Every load in flight, so that abort() can wait for them to end.
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.catch(() => undefined).finally(() => running.delete(work));
    return work;
  };

  return {
    jobsPerDay: DEFAULT_JOBS_PER_DAY,
    tableColumns: columns.tableColumns,
    loadClaimed: (job) =>
      track(job.lineage ? loadLineage(ctx, columns, job) : loadClaimed(ctx, columns, job)),
    followJob: (jobId, where) => track(followJob(ctx, jobId, where)),
    precheck: async (object, deadline) => precheckGzip(ctx, object, deadline),
    load: (job) => track(job.lineage ? loadLineage(ctx, columns, job) : load(ctx, columns, job)),
    settle: (job) => settle(ctx, job),

    // Nothing to record: for BigQuery the failed job (INFORMATION_SCHEMA.JOBS) and the quarantine
    // copy with its metadata are the record of a rejection.
    async recordRejection() {},

    async tables() {
      try {
        return await listTables(ctx.client, ctx.call);
      } catch (error) {
        throw toWarehouseError(error, 'listing BigQuery tables');
      }
    },

    async close() {},

    async abort(reason) {
      ctx.stopping.abort(
        new TransientError(`${reason}; a redelivery awaits the same BigQuery job`),
      );
      await Promise.allSettled([...running]);
    },
  };
}
