import { TransientError } from '../../core/errors';
import type { ClaimedLoadResult, FollowedJob } from '../warehouse';
import type { BigQueryContext, Where } from './context';
import type { JobResource } from './job-results';
import { attemptId, awaitDone, findJob } from './jobs';
import { newerGenerations, scriptCounts, scriptEnd } from './lineage-query';
import { writtenBy } from './lineage-sql';

/*
 * Following a lineage job another delivery or instance runs (a claim names its id). Its query job
 * says what it wrote in its own text: the INSERT's table, and per source a SELECT of the source's URI
 * and generation (lineage-sql.ts, `writtenBy`); the rows it inserted are its INSERT statement's
 * `dmlStats` (a child job). Before the query job exists, the job's first staging load (`<id>_src0`)
 * shows that it is underway: it is awaited for a while (staging takes as long as the loads), so that
 * a follower does not claim the objects again meanwhile.
 */

/** How long after its first staging load a lineage job's query may still come. */
const STAGING_WINDOW_MS = 10 * 60_000;
/** How long after an aborted transaction its next attempt may still come. */
const RETRY_WINDOW_MS = 60_000;

/** A lineage job whose query job is not there yet: undefined when none is underway either. */
export async function followStaging(
  ctx: BigQueryContext,
  jobId: string,
  where: Where,
): Promise<JobResource | undefined> {
  const staging = await findJob(ctx, `${jobId}_src0`, where);
  if (!staging) return undefined;
  const since = Number(staging.statistics?.creationTime ?? Date.now());
  return appearing(ctx, jobId, where, since + STAGING_WINDOW_MS);
}

/** A finished lineage query job, or the attempt after it that ended: its result and the URIs. */
export async function followLineage(
  ctx: BigQueryContext,
  jobId: string,
  done: JobResource,
  where: Where,
): Promise<FollowedJob | undefined> {
  let current = done;
  for (let attempt = 1; ; attempt++) {
    const id = attemptId(jobId, attempt);
    const written = writtenBy(current.configuration?.query?.query ?? '');
    const uris = written?.sources.map((s) => s.uri) ?? [];
    const end = scriptEnd(current, id, true);
    if (end) return { result: await resultOf(ctx, end, written, where), uris };
    if (attempt >= ctx.maxAttempts) {
      const reason = `BigQuery lineage job ${jobId} was aborted ${attempt} times`;
      return { result: { outcome: 'failed', jobId: id, reason, quota: false }, uris };
    }
    const ended = Number(current.statistics?.endTime ?? Date.now());
    const next = await appearing(
      ctx,
      attemptId(jobId, attempt + 1),
      where,
      ended + RETRY_WINDOW_MS,
    );
    if (!next) {
      const reason = `BigQuery lineage job ${id} was aborted (${current.status?.errorResult?.message}) and not run again`;
      return { result: { outcome: 'failed', jobId: id, reason, quota: false }, uris };
    }
    current = await awaitDone(ctx, next, attemptId(jobId, attempt + 1), where);
  }
}

async function resultOf(
  ctx: BigQueryContext,
  end: NonNullable<ReturnType<typeof scriptEnd>>,
  written: ReturnType<typeof writtenBy>,
  where: Where,
): Promise<ClaimedLoadResult> {
  if (end.kind === 'failed') return { outcome: 'rejected', jobId: end.jobId, reason: end.reason };
  if (end.kind === 'done') {
    const { inserted } = await scriptCounts(ctx, end.jobId, where);
    return { outcome: 'loaded', jobId: end.jobId, rows: inserted ?? 0 };
  }
  const table = written?.table;
  const newer =
    table && written
      ? await newerGenerations(
          ctx,
          {
            ...where,
            destination: {
              project: table.projectId ?? undefined,
              dataset: table.datasetId ?? '',
              table: table.tableId ?? '',
            },
          },
          written.sources,
        )
      : {};
  if (Object.keys(newer).length > 0) return { outcome: 'superseded', jobId: end.jobId, newer };
  const reason = `BigQuery lineage job ${end.jobId} found a newer generation, no longer there`;
  return { outcome: 'failed', jobId: end.jobId, reason, quota: false };
}

/** The job once it exists, looked up with growing pauses; undefined if it has not by `until`. */
async function appearing(
  ctx: BigQueryContext,
  jobId: string,
  where: Where,
  until: number,
): Promise<JobResource | undefined> {
  let interval = Math.min(150, ctx.pollIntervalMs);
  for (;;) {
    const found = await findJob(ctx, jobId, where);
    if (found) return found;
    const now = Date.now();
    if (now >= until) return undefined;
    if (now >= where.deadline) {
      throw new TransientError(
        `BigQuery lineage job ${jobId} is staging its sources; redelivery follows it again`,
      );
    }
    await ctx.pause(Math.min(interval, until - now, where.deadline - now));
    interval = Math.min(interval * 2, 5 * ctx.pollIntervalMs);
  }
}
