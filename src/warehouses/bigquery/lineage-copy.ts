import type bigquery from '@google-cloud/bigquery/build/src/types';
import { TransientError } from '../../core/errors';
import type { GroupsPlan } from '../../schema/columns';
import type { LoadJob, LoadResult } from '../warehouse';
import type { BigQueryContext } from './context';
import { describe, schemaDisagrees, toResult } from './job-results';
import { attemptId } from './jobs';
import { toTimePartitioning } from './load-config';
import { runScript } from './lineage-query';
import { truncateScript } from './lineage-sql';
import {
  createExpiring,
  dataColumns,
  stageDestination,
  stagedResult,
  type StagedSource,
} from './lineage-stage';
import { prepareTable } from './lineage-table';
import type { Planned } from './plan';
import { stagingCalls } from './staged-calls';
import { tableReference } from './staged-load';
import type { ColumnCache } from './table-columns';

/*
 * `replace` and `partition` with lineage: their one atomic step stays a single write, now a copy job
 * (JobConfigurationTableCopy.writeDisposition: "Creation, truncation and append actions occur as one
 * atomic update upon job completion"). The staged sources with their lineage columns are gathered
 * first into one more staging table with the table's whole schema (and for `replace` its partitioning
 * and clustering), by a transaction under `<job>_rows` that empties and fills it (so that it can run
 * again). Then the copy
 * under the job's id: WRITE_TRUNCATE of the whole table "uses the schema and table constraints from
 * the source table" (`replace`); of `table$YYYYMMDD` that partition only, after the columns the day
 * adds were added to the table (`partition`, as staged-load.ts does).
 */

export async function copyWhole(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
  planned: Planned,
  staged: StagedSource[],
): Promise<LoadResult> {
  const plan = planned.plan as GroupsPlan;
  const all = stageDestination(job, ctx.defaultProject, 'all');
  // A whole table copied takes the staging table's partitioning and clustering; one day's rows are
  // copied into `table$YYYYMMDD` from an unpartitioned table, as staged-load.ts does.
  const extra: bigquery.ITable = {};
  const partitioning = job.write === 'replace' ? toTimePartitioning(job) : undefined;
  if (partitioning) extra.timePartitioning = partitioning;
  if (job.clustering && job.write === 'replace') extra.clustering = { fields: [...job.clustering] };
  const created = await createExpiring(ctx, job, all, plan.table, extra);
  const whole = tableReference(all, ctx.defaultProject);
  const names = dataColumns(plan).map((c) => c.name);
  const filled = await runScript(
    ctx,
    job,
    { first: truncateScript(whole, names, staged) },
    {
      base: `${job.jobId}_rows`,
      after: created,
    },
  );
  if (filled.kind !== 'done') {
    const reason = filled.kind === 'failed' ? filled.reason : 'the staging table held other rows';
    return { outcome: 'rejected', jobId: filled.jobId, reason };
  }
  if (job.write === 'partition') await prepareTable(ctx, columns, job, planned);
  const calls = stagingCalls(ctx, job);
  const configuration: bigquery.IJobConfiguration = {
    copy: {
      sourceTables: [whole],
      destinationTable: tableReference(job.destination, ctx.defaultProject),
      writeDisposition: 'WRITE_TRUNCATE',
      createDisposition: job.write === 'replace' ? job.createDisposition : 'CREATE_NEVER',
    },
    labels: { ...job.labels },
  };
  let last = '';
  for (let attempt = 1; attempt <= ctx.maxAttempts; attempt++) {
    const jobId = attemptId(job.jobId, attempt);
    const ran = await calls.run(configuration, jobId);
    if ('refused' in ran) return { outcome: 'rejected', jobId, reason: ran.refused };
    if (schemaDisagrees(ran.job)) {
      columns.forget(job.destination);
      throw new TransientError(
        `BigQuery copy job ${jobId}: ${describe(ran.job.status?.errorResult)}; the table changed, redelivery plans again from its new schema`,
      );
    }
    const result = toResult(ran.job, jobId, ran.existing);
    if (result?.outcome === 'rejected') return result;
    if (result?.outcome === 'duplicate')
      return { ...result, rows: stagedResult(jobId, staged).rows };
    if (result) return stagedResult(jobId, staged);
    last = describe(ran.job.status?.errorResult);
    if (attempt < ctx.maxAttempts) await ctx.pause(ctx.retryDelayMs * 2 ** (attempt - 1));
  }
  throw new TransientError(
    `BigQuery copy job ${job.jobId} failed ${ctx.maxAttempts} times (last: ${last}); redelivery tries again`,
  );
}
