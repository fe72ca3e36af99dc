import type { ClaimedLoadResult, LoadJob } from '../warehouse';
import type { BigQueryContext, Where } from './context';
import { removeCopies, stageSources } from './source-copies';
import { sourceUri, unloadableName, withOriginalUris } from './source-uris';

// Sources BigQuery would misread: loaded from copies (source-uris.ts).

/** Copies the sources that need it; the load rejects when one cannot have a safe name. */
export async function stage(ctx: BigQueryContext, job: LoadJob): Promise<void> {
  await stageSources(ctx.storageClient(), job.sources, ctx.stagingPrefix, (work, what) =>
    ctx.call(work, what, job.deadline),
  );
}

/** Why the job cannot load: a source that needs a copy whose name would be too long. */
export function unloadable(ctx: BigQueryContext, job: LoadJob): string | undefined {
  return job.sources.map((s) => unloadableName(s, ctx.stagingPrefix)).find((p) => p !== undefined);
}

/** A final result: the job's copies removed, and its reason naming the originals. */
export async function ended<R extends ClaimedLoadResult>(
  ctx: BigQueryContext,
  job: LoadJob,
  result: R,
): Promise<R> {
  const uris = job.sources.map((s) => sourceUri(s, ctx.stagingPrefix));
  return finished(ctx, uris, result, job);
}

export async function finished<R extends ClaimedLoadResult>(
  ctx: BigQueryContext,
  uris: string[],
  result: R,
  where: Where,
): Promise<R> {
  await removeCopies(ctx.storageClient(), uris, ctx.stagingPrefix, (work, what) =>
    ctx.call(work, what, where.deadline),
  );
  if (!('reason' in result) || typeof result.reason !== 'string') return result;
  return { ...result, reason: withOriginalUris(result.reason, uris, ctx.stagingPrefix) };
}
