import { TransientError } from '../../core/errors';
import type { ClaimedLoadResult, LoadJob, LoadResult } from '../warehouse';
import type { BigQueryContext } from './context';
import { truncatedGzip } from './gzip';
import { ended, stage } from './job-copies';
import {
  claimedResult,
  describe,
  schemaDisagrees,
  toResult,
  type JobResource,
} from './job-results';
import { attemptId, awaitDone, insertJob, type Inserted } from './jobs';
import { toJobConfiguration } from './load-config';
import { planJob, withChanges, type Planned } from './plan';
import { stagingCalls } from './staged-calls';
import { loadStaged } from './staged-load';
import type { ColumnCache } from './table-columns';

// BigQuery's SLA back-off: at least 1 s, doubling, at most 32 s.
const MAX_RETRY_DELAY_MS = 32_000;

async function insert(
  ctx: BigQueryContext,
  job: LoadJob,
  jobId: string,
  plan: Planned,
): Promise<Inserted> {
  return insertJob(
    ctx,
    job,
    jobId,
    toJobConfiguration(job, ctx.defaultProject, plan.plan, ctx.stagingPrefix),
  );
}

export async function load(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
): Promise<LoadResult> {
  ctx.stopping.signal.throwIfAborted();
  const truncated = await truncatedGzip(ctx, job);
  if (truncated) return { outcome: 'rejected', jobId: job.jobId, reason: truncated };
  const planned = await planJob(ctx, columns, job);
  if ('rejected' in planned)
    return { outcome: 'rejected', jobId: job.jobId, reason: planned.rejected };
  let lastFailure = '';
  const staged = job.trial || (planned.plan !== 'fromFile' && planned.plan.groups.length > 1);
  for (let attempt = 1; attempt <= ctx.maxAttempts; attempt++) {
    let jobId = attemptId(job.jobId, attempt);
    let done: JobResource;
    let existing: boolean;
    let stagedRows: number | undefined;
    await stage(ctx, job);
    if (staged) {
      const ran = await loadStaged(
        job,
        jobId,
        planned.plan,
        !!planned.before,
        stagingCalls(ctx, job),
      );
      if ('refused' in ran)
        return ended(ctx, job, { outcome: 'rejected', jobId, reason: ran.refused });
      ({ job: done, jobId, existing, rows: stagedRows } = ran);
    } else {
      const inserted = await insert(ctx, job, jobId, planned);
      if (inserted.kind === 'invalid')
        return ended(ctx, job, { outcome: 'rejected', jobId, reason: inserted.reason });
      if (inserted.kind === 'quota')
        throw new TransientError(`inserting BigQuery load job ${jobId}: ${inserted.reason}`);
      done = await awaitDone(ctx, inserted.job, jobId, job);
      existing = inserted.kind === 'existing';
    }
    if (schemaDisagrees(done)) {
      columns.forget(job.destination);
      throw new TransientError(
        `BigQuery load job ${jobId}: ${describe(done.status?.errorResult)}; the table changed, redelivery plans again from its new schema`,
      );
    }
    const result = toResult(done, jobId, existing, stagedRows);
    if (result) {
      const finished = await ended(ctx, job, result);
      return job.trial ? finished : withChanges(columns, finished, job, planned);
    }
    lastFailure = describe(done.status?.errorResult);
    const delay = Math.min(ctx.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
    if (attempt < ctx.maxAttempts && Date.now() + delay >= job.deadline) {
      const next = attemptId(job.jobId, attempt + 1);
      throw new TransientError(
        `BigQuery load job ${jobId} failed (${lastFailure}); redelivery will try ${next}`,
      );
    }
    if (attempt < ctx.maxAttempts) await ctx.pause(delay);
  }
  throw new TransientError(
    `BigQuery load job ${job.jobId} failed ${ctx.maxAttempts} times for transient reasons (last: ${lastFailure}); ` +
      'a forced reprocess starts a new series of attempts',
  );
}

export async function loadClaimed(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
): Promise<ClaimedLoadResult> {
  ctx.stopping.signal.throwIfAborted();
  const planned = await planJob(ctx, columns, job);
  if ('rejected' in planned)
    return { outcome: 'rejected', jobId: job.jobId, reason: planned.rejected };
  await stage(ctx, job);
  const inserted = await insert(ctx, job, job.jobId, planned);
  if (inserted.kind === 'invalid')
    return ended(ctx, job, { outcome: 'rejected', jobId: job.jobId, reason: inserted.reason });
  if (inserted.kind === 'quota')
    return {
      outcome: 'failed',
      jobId: job.jobId,
      reason: inserted.reason,
      quota: inserted.limit,
    };
  // Its id is new, so an existing job is this very insert, retried after a lost answer.
  const done = await awaitDone(ctx, inserted.job, job.jobId, job);
  if (schemaDisagrees(done)) {
    columns.forget(job.destination);
    const reason = `${describe(done.status?.errorResult)}; the table changed, its members go again`;
    return { outcome: 'failed', jobId: job.jobId, reason, quota: false };
  }
  const result = claimedResult(done, job.jobId);
  return result.outcome === 'failed'
    ? result
    : withChanges(columns, await ended(ctx, job, result), job, planned);
}
