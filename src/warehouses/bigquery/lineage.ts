import { TransientError } from '../../core/errors';
import type { GroupsPlan } from '../../schema/columns';
import { gsUri } from '../../stores/store';
import { tableId, type LoadJob, type LoadResult } from '../warehouse';
import type { BigQueryContext } from './context';
import { truncatedGzip } from './gzip';
import { ended, stage } from './job-copies';
import { toResult } from './job-results';
import { findJob, awaitDone, attemptId } from './jobs';
import { copyWhole } from './lineage-copy';
import {
  newerGenerations,
  runScript,
  scriptCounts,
  scriptEnd,
  type ScriptEnd,
} from './lineage-query';
import { appendScript, firstLoadScript, truncateScript } from './lineage-sql';
import {
  changedSource,
  dataColumns,
  dropStages,
  stageSources,
  stagedResult,
  stagedRows,
  type StagedSource,
} from './lineage-stage';
import { prepareTable } from './lineage-table';
import { planJob, withChanges, type Planned } from './plan';
import type { ColumnCache } from './table-columns';

/*
 * A lineage job (`job.lineage`): its sources staged one per table (lineage-stage.ts), checked to be
 * the claimed generations, then written with their lineage columns by one query job under the job's
 * id (lineage-query.ts, lineage-sql.ts): on `append` a transaction that replaces each source's earlier
 * rows, unless the table already holds a newer generation of one (`superseded`); on `truncate` one that
 * empties the table first. `replace` and `partition` keep their one atomic step, a copy job
 * (lineage-copy.ts). The staging tables are deleted once the job has an outcome; after a transient
 * failure they stay for the redelivery, which finds every job under the same ids.
 */

export async function loadLineage(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
): Promise<LoadResult> {
  ctx.stopping.signal.throwIfAborted();
  const planned = await planJob(ctx, columns, job);
  if ('rejected' in planned)
    return { outcome: 'rejected', jobId: job.jobId, reason: planned.rejected };
  // A claimed job's id is new; another job may have finished before this delivery.
  const earlier = job.claimed || job.trial ? undefined : await finishedEarlier(ctx, job);
  if (earlier) return ended(ctx, job, earlier);
  const truncated = await truncatedGzip(ctx, job);
  if (truncated) return { outcome: 'rejected', jobId: job.jobId, reason: truncated };
  if (!planned.before && job.createDisposition === 'CREATE_NEVER') {
    const reason = `notFound: Not found: Table ${tableId(job.destination)} (createDisposition: CREATE_NEVER)`;
    return { outcome: 'rejected', jobId: job.jobId, reason };
  }
  await stage(ctx, job);
  const plan = planned.plan as GroupsPlan;
  const staged = await stageSources(ctx, job, plan);
  const whole = job.write === 'replace' || job.write === 'partition';
  let result: LoadResult;
  if ('rejected' in staged) {
    result = { outcome: 'rejected', jobId: job.jobId, reason: staged.rejected };
  } else {
    const replaced = await changedSource(ctx, job);
    if (replaced) result = { outcome: 'replaced', jobId: job.jobId, reason: replaced };
    else if (job.trial) result = stagedResult(job.jobId, staged);
    else if (whole) result = await copyWhole(ctx, columns, job, planned, staged);
    else result = await writeRows(ctx, columns, job, planned, staged);
  }
  // Only an outcome ends the staging: after a throw, a redelivery still reads these tables.
  await dropStages(ctx, job, whole);
  const final = await ended(ctx, job, result);
  return job.trial ? final : withChanges(columns, final, job, planned);
}

/** The table made ready, then the transaction, and what it came to. */
async function writeRows(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
  planned: Planned,
  staged: StagedSource[],
): Promise<LoadResult> {
  const plan = planned.plan as GroupsPlan;
  await prepareTable(ctx, columns, job, planned);
  const { project = ctx.defaultProject, dataset, table } = job.destination;
  const target = { projectId: project, datasetId: dataset, tableId: table };
  const names = dataColumns(plan).map((c) => c.name);
  const scripts =
    job.write === 'append'
      ? {
          first: firstLoadScript(target, names, staged),
          replacing: appendScript(target, names, staged),
        }
      : { first: truncateScript(target, names, staged) };
  const end = await runScript(ctx, job, scripts);
  return scriptResult(ctx, job, end, staged);
}

async function scriptResult(
  ctx: BigQueryContext,
  job: LoadJob,
  end: ScriptEnd,
  staged: StagedSource[],
): Promise<LoadResult> {
  if (end.kind === 'failed') return { outcome: 'rejected', jobId: end.jobId, reason: end.reason };
  if (end.kind === 'superseded') return superseded(ctx, job, end.jobId, staged);
  if (end.existing) return { outcome: 'duplicate', jobId: end.jobId, rows: stagedRows(staged) };
  const loaded = stagedResult(end.jobId, staged);
  if (job.write === 'append' && !end.replacing) loaded.replacedRows = staged.map(() => 0);
  if (job.write === 'append' && end.replacing) {
    const { before } = await scriptCounts(ctx, end.jobId, job);
    loaded.replacedRows = staged.map((s) => before.get(s.uri) ?? 0);
  }
  return loaded;
}

async function superseded(
  ctx: BigQueryContext,
  job: LoadJob,
  jobId: string,
  sources: { uri: string; generation: string }[],
): Promise<LoadResult> {
  const newer = await newerGenerations(ctx, job, sources);
  if (Object.keys(newer).length === 0) {
    // The newer rows went between the ASSERT and this read: the job may go again.
    throw new TransientError(
      `BigQuery lineage job ${jobId}: a newer generation was in the table, and is no longer; redelivery tries again`,
    );
  }
  return { outcome: 'superseded', jobId, newer };
}

/**
 * What an earlier delivery's job under this id came to, when it ended: a committed transaction or
 * copy is a duplicate, an ASSERT that found a newer generation is `superseded`. Undefined when there
 * is none, or none that ended for good (an abort goes again under the next id).
 */
async function finishedEarlier(
  ctx: BigQueryContext,
  job: LoadJob,
): Promise<LoadResult | undefined> {
  for (let attempt = 1; attempt <= ctx.maxAttempts; attempt++) {
    const jobId = attemptId(job.jobId, attempt);
    const found = await findJob(ctx, jobId, job);
    if (!found) return undefined;
    const done = await awaitDone(ctx, found, jobId, job);
    if (done.configuration?.copy) {
      if (done.status?.errorResult) continue;
      return { outcome: 'duplicate', jobId, rows: Number(done.statistics?.copy?.copiedRows ?? 0) };
    }
    // A plain load under this id: the route had no lineage when it ran.
    if (done.configuration?.load) return toResult(done, jobId, true);
    const end = scriptEnd(done, jobId, true);
    if (!end) continue;
    if (end.kind === 'failed') return { outcome: 'rejected', jobId, reason: end.reason };
    if (end.kind === 'superseded') {
      const sources = job.sources.map((s) => ({ uri: gsUri(s), generation: s.generation }));
      return superseded(ctx, job, jobId, sources);
    }
    const { inserted } = await scriptCounts(ctx, jobId, job);
    return { outcome: 'duplicate', jobId, rows: inserted ?? 0 };
  }
  return undefined;
}
