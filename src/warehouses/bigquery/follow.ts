import type { FollowedJob, LoadJob } from '../warehouse';
import type { BigQueryContext, Where } from './context';
import { finished } from './job-copies';
import { claimedResult } from './job-results';
import { attemptId, awaitDone, findJob } from './jobs';
import { followLineage, followStaging } from './lineage-follow';
import { originalUri } from './source-uris';

/** A job another instance inserted, awaited: its result and the sources it read, or undefined. */
export async function followJob(
  ctx: BigQueryContext,
  jobId: string,
  where: Where,
): Promise<FollowedJob | undefined> {
  // A lineage job's query job comes after its staging loads (lineage-follow.ts).
  const found = (await findJob(ctx, jobId, where)) ?? (await followStaging(ctx, jobId, where));
  if (!found) return undefined;
  const done = await awaitDone(ctx, found, jobId, where);
  if (done.configuration?.query) return followLineage(ctx, jobId, done, where);
  const uris = done.configuration?.load?.sourceUris ?? [];
  const claimed = claimedResult(done, jobId);
  const result = claimed.outcome === 'failed' ? claimed : await finished(ctx, uris, claimed, where);
  return { result, uris: uris.map((uri) => originalUri(uri, ctx.stagingPrefix)) };
}

/** Awaits the job's attempts in turn until one ran without failing or one was never inserted. */
export async function settle(ctx: BigQueryContext, job: LoadJob): Promise<void> {
  for (let attempt = 1; attempt <= ctx.maxAttempts; attempt++) {
    const jobId = attemptId(job.jobId, attempt);
    const found = await findJob(ctx, jobId, job);
    if (!found) return; // a later attempt needs this one first
    const done = await awaitDone(ctx, found, jobId, job);
    if (!done.status?.errorResult) return;
  }
}
