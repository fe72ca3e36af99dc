import type bigquery from '@google-cloud/bigquery/build/src/types';
import type { TableColumn } from '../../schema/columns';
import { TransientError } from '../../core/errors';
import { tableId, type Destination, type LoadJob } from '../warehouse';
import type { BigQueryContext } from './context';
import { toWarehouseError } from './errors';
import { awaitDone, findJob, insertJob } from './jobs';
import { toFieldSchema, toJobConfiguration, toTimePartitioning } from './load-config';
import type { StagingCalls } from './staged-load';

/** The calls a staged load makes (staged-load.ts), for `job`'s destination and deadline. */
export function stagingCalls(ctx: BigQueryContext, job: LoadJob): StagingCalls {
  const table = (d: Destination) =>
    ctx.client.dataset(d.dataset, { projectId: d.project ?? ctx.defaultProject }).table(d.table);
  const fields = (columns: TableColumn[]) => ({ fields: columns.map(toFieldSchema) });
  const calling = async (work: Promise<unknown>, what: string) => {
    try {
      await ctx.call(work, what, job.deadline);
    } catch (error) {
      if (error instanceof TransientError) throw error;
      throw toWarehouseError(error, what);
    }
  };
  return {
    project: ctx.defaultProject,
    loadConfiguration: (part, plan) =>
      toJobConfiguration(part, ctx.defaultProject, plan, ctx.stagingPrefix),
    async run(configuration, jobId) {
      const inserted = await insertJob(ctx, job, jobId, configuration);
      if (inserted.kind === 'quota')
        throw new TransientError(`inserting BigQuery job ${jobId}: ${inserted.reason}`);
      if (inserted.kind === 'invalid') return { refused: inserted.reason };
      const done = await awaitDone(ctx, inserted.job, jobId, job);
      return { job: done, existing: inserted.kind === 'existing' };
    },
    async find(jobId) {
      const found = await findJob(ctx, jobId, job);
      return found && awaitDone(ctx, found, jobId, job);
    },
    createTable: (d, columns, created) => {
      const metadata: bigquery.ITable = { schema: fields(columns) };
      const partitioning = toTimePartitioning(created);
      if (partitioning) metadata.timePartitioning = partitioning;
      if (created.clustering) metadata.clustering = { fields: [...created.clustering] };
      return calling(table(d).create(metadata), `creating table ${tableId(d)}`);
    },
    patchSchema: (d, columns) =>
      calling(table(d).setMetadata({ schema: fields(columns) }), `adding columns to ${tableId(d)}`),
    deleteTable: (d) =>
      calling(table(d).delete({ ignoreNotFound: true }), `deleting staging table ${tableId(d)}`),
  };
}
