import type bigquery from '@google-cloud/bigquery/build/src/types';
import { TransientError, errorMessage } from '../../core/errors';
import { httpStatusOf, reasonsOf } from '../../core/google-errors';
import type { QuotaLimit } from '../warehouse';
import type { BigQueryContext, Where } from './context';
import { toWarehouseError } from './errors';
import { QUOTA_REASONS, isJobResource, quotaLimitOf, type JobResource } from './job-results';

// The first jobs.get after an insert; each later one waits twice as long, up to pollIntervalMs.
const FIRST_POLL_MS = 150;

async function getJob(ctx: BigQueryContext, jobId: string, job: Where): Promise<JobResource> {
  const { location } = job;
  const what = `reading BigQuery job ${jobId}`;
  try {
    const [metadata] = await ctx.call(
      ctx.client.job(jobId, { location }).getMetadata(),
      what,
      job.deadline,
    );
    return metadata as JobResource;
  } catch (error) {
    if (error instanceof TransientError) throw error;
    if (httpStatusOf(error) === 404) {
      // Seen right after a 409, or when the job lives in another location than the one configured.
      const message = `BigQuery job ${jobId} exists but is not found in location ${location}`;
      throw new TransientError(message, { cause: error });
    }
    throw toWarehouseError(error, what);
  }
}

export type Inserted =
  | { kind: 'inserted' | 'existing'; job: JobResource }
  | { kind: 'invalid'; reason: string }
  | { kind: 'quota'; reason: string; limit: QuotaLimit };

export async function insertJob(
  ctx: BigQueryContext,
  job: Where,
  jobId: string,
  configuration: bigquery.IJobConfiguration,
): Promise<Inserted> {
  const kind = configuration.copy ? 'copy' : configuration.query ? 'query' : 'load';
  const what = `inserting BigQuery ${kind} job ${jobId}`;
  try {
    const created = ctx.client.createJob({ configuration, jobId, location: job.location });
    const [, resource] = await ctx.call(created, what, job.deadline);
    return { kind: 'inserted', job: resource };
  } catch (error) {
    if (error instanceof TransientError) throw error;
    if (httpStatusOf(error) === 409)
      return { kind: 'existing', job: await getJob(ctx, jobId, job) };
    // createJob rejects when the job it created already carries status.errors (a job that failed at
    // once, or row errors under maxBadRecords); the job resource is then the error's `response`.
    const resource = (error as { response?: unknown } | null)?.response;
    if (isJobResource(resource)) return { kind: 'inserted', job: resource };
    // A configuration BigQuery refuses comes from the object's route and name (e.g. a partition
    // date that is no date): the object is rejected, as for content errors.
    const quota = reasonsOf(error).find((reason) => QUOTA_REASONS.has(reason));
    if (quota) {
      const message = errorMessage(error);
      const limit = quotaLimitOf(quota, message) ?? 'daily';
      return { kind: 'quota', reason: `${quota}: ${message}`, limit };
    }
    if (httpStatusOf(error) === 400 && reasonsOf(error).includes('invalid')) {
      return {
        kind: 'invalid',
        reason: `BigQuery refused ${kind} job ${jobId}: ${errorMessage(error)}`,
      };
    }
    throw toWarehouseError(error, what);
  }
}

export async function awaitDone(
  ctx: BigQueryContext,
  resource: JobResource,
  jobId: string,
  job: Where,
): Promise<JobResource> {
  let current = resource;
  // A short job is seen soon after it ends; a long one is polled every pollIntervalMs.
  let interval = Math.min(FIRST_POLL_MS, ctx.pollIntervalMs);
  while (current.status?.state !== 'DONE') {
    const left = job.deadline - Date.now();
    if (left <= 0) {
      throw new TransientError(
        `BigQuery load job ${jobId} still running; redelivery will await it`,
      );
    }
    await ctx.pause(Math.min(interval, left));
    interval = Math.min(interval * 2, ctx.pollIntervalMs);
    current = await getJob(ctx, jobId, job);
  }
  return current;
}

/** The job, or undefined when this id was never inserted. */
export async function findJob(
  ctx: BigQueryContext,
  jobId: string,
  job: Where,
): Promise<JobResource | undefined> {
  try {
    const what = `reading BigQuery job ${jobId}`;
    const [metadata] = await ctx.call(
      ctx.client.job(jobId, { location: job.location }).getMetadata(),
      what,
      job.deadline,
    );
    return metadata as JobResource;
  } catch (error) {
    if (httpStatusOf(error) === 404) return undefined;
    if (error instanceof TransientError) throw error;
    throw toWarehouseError(error, `reading BigQuery job ${jobId}`);
  }
}

export function attemptId(jobId: string, attempt: number): string {
  return attempt === 1 ? jobId : `${jobId}_${attempt}`;
}
