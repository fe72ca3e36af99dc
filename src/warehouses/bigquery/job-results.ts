import type bigquery from '@google-cloud/bigquery/build/src/types';
import type { BadRecords, ClaimedLoadResult, LoadResult, QuotaLimit } from '../warehouse';

export type JobResource = bigquery.IJob;
type ErrorProto = bigquery.IErrorProto;

/*
 * How BigQuery reports each case, and where that comes from:
 * - ErrorProto `reason` values and their HTTP codes: https://cloud.google.com/bigquery/docs/error-messages
 *   ("Error table"). `rateLimitExceeded` and `quotaExceeded` come with HTTP 403, not 429, so reasons are
 *   checked as well as status codes.
 * - Which reasons a failed job may be retried for: python-bigquery's retry.py (`job_retry_reasons`:
 *   rateLimitExceeded, backendError, internalError, jobRateLimitExceeded), plus jobBackendError and
 *   jobInternalError, which BigQuery reports for failures inside a job (data-integrations/google-cloud
 *   PR 1358). `timeout` is treated alike (assumption).
 * - A load job that cannot read its data ends DONE with errorResult `invalid`; the errorResult message
 *   may be a summary ("CSV table encountered too many errors, giving up. Rows: 1; errors: 1. Please look
 *   into the errors[] collection…", location = the gs:// URI) with the row-level message in errors[]
 *   (m-lab/etl-gardener#291, onlybooks/bigquery#1), so the first specific message is reported.
 * - A missing table with CREATE_NEVER: errorResult `notFound` (assumed from the error table).
 * - jobs.insert with an existing job id: HTTP 409, reason `duplicate` (error table; the client's own
 *   createJob handles 409 the same way for ids it generated).
 * - statistics.load.outputRows is an int64, sent as a JSON string (REST reference, JobStatistics3).
 * - Rows skipped under maxBadRecords: the job succeeds (no errorResult) with statistics.load.badRecords
 *   (int64 string, JobStatistics3) and one ErrorProto per skipped row in status.errors ("the first errors
 *   encountered during the running of the job", REST reference JobStatus; python-bigquery#5624).
 * - A truncated gzip source: nothing we could find documents that a load job fails on a gzip stream that
 *   ends early (docs "Load CSV data from Cloud Storage" only say gzip is read serially, up to 4 GB; the
 *   issue trackers searched - googleapis/google-cloud-python, python-bigquery, m-lab/etl-gardener - show
 *   row-level `invalid` errors, none about an unexpected end of a gzip stream). A stream cut at a flush
 *   point decompresses to whole rows, so no CSV error need follow either. So a job may load the part
 *   before the cut and succeed: each `.gz` source is read through gunzip before the job is inserted
 *   (`gzip -t`), and a source whose gzip stream ends early is rejected.
 */
const TRANSIENT_JOB_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'quotaExceeded',
  'jobBackendError',
  'jobInternalError',
  'jobRateLimitExceeded',
  'timeout',
]);
const CONTENT_REASONS = new Set(['invalid', 'invalidQuery', 'notFound']);
/*
 * BigQuery's limits come in two kinds, told apart by the reason
 * (https://cloud.google.com/bigquery/docs/troubleshoot-quotas, "Overview"): `rateLimitExceeded` is a
 * short-term limit, to be retried after a few seconds with exponential back-off (e.g. "Exceeded rate
 * limits: too many table update operations for this table", the table metadata updates per 10 s of
 * https://cloud.google.com/bigquery/quotas#standard_tables); `quotaExceeded` a longer-term one (e.g.
 * the load jobs per table per day, 1,500 with failed jobs counted, location `load_job_per_table.long`:
 * https://cloud.google.com/bigquery/quotas#load_jobs). A message that begins "Exceeded rate limits"
 * is taken as short-term whatever its reason. A daily quota slows a coalescing destination's pace; a
 * rate limit holds its jobs a few seconds (batcher.ts).
 */
export const QUOTA_REASONS = new Set(['quotaExceeded', 'rateLimitExceeded']);

/** Which limit an error's reason and message name, or undefined when it is none of BigQuery's limits. */
export function quotaLimitOf(reason: string, message: string): QuotaLimit | undefined {
  if (!QUOTA_REASONS.has(reason)) return undefined;
  return reason === 'rateLimitExceeded' || /exceeded rate limits/i.test(message)
    ? 'shortTerm'
    : 'daily';
}
const SUMMARY_MESSAGE = /too many errors, giving up|look into the errors\[\] collection/i;

/**
 * A job refused because the schema it carried no longer fits the table (changed since this instance
 * read it): BigQuery's "Provided Schema does not match Table" (assumed wording, error-messages docs).
 */
export function schemaDisagrees(job: JobResource): boolean {
  const error = job.status?.errorResult;
  return (
    error?.reason === 'invalid' && /Provided Schema does not match Table/i.test(error.message ?? '')
  );
}

/** A finished coalesced job: its transient failure is an outcome (its members are claimed again). */
export function claimedResult(job: JobResource, jobId: string): ClaimedLoadResult {
  const result = toResult(job, jobId, false);
  const inputBytes = job.statistics?.load?.inputFileBytes;
  if (result?.outcome === 'loaded' && inputBytes !== undefined && inputBytes !== null)
    return { ...result, inputBytes: Number(inputBytes) };
  if (result) return result;
  const { reason = '', message = '' } = job.status?.errorResult ?? {};
  return {
    outcome: 'failed',
    jobId,
    reason: describe(job.status?.errorResult),
    quota: quotaLimitOf(reason ?? '', message ?? '') ?? false,
  };
}

/**
 * The outcome of a finished job, or undefined when it failed for a reason worth another attempt.
 * Only the request whose jobs.insert created the job reports `loaded`: one that found it existing
 * (an earlier or concurrent delivery inserted it) reports `duplicate`, so each job's rows are
 * reported as loaded at most once.
 */
export function toResult(
  job: JobResource,
  jobId: string,
  foundExisting: boolean,
  stagedRows?: number,
): LoadResult | undefined {
  const failure = job.status?.errorResult;
  if (!failure) {
    const rows = stagedRows ?? Number(job.statistics?.load?.outputRows ?? 0);
    if (foundExisting) return { outcome: 'duplicate', jobId, rows };
    const badRecords = skippedRows(job);
    return badRecords
      ? { outcome: 'loaded', jobId, rows, badRecords }
      : { outcome: 'loaded', jobId, rows };
  }
  const reason = failure.reason ?? '';
  if (TRANSIENT_JOB_REASONS.has(reason)) return undefined;
  if (CONTENT_REASONS.has(reason)) {
    return { outcome: 'rejected', jobId, reason: contentReason(job.status ?? {}) };
  }
  throw new Error(`BigQuery load job ${jobId} failed: ${describe(failure)}`);
}

/** Rows a successful job skipped under maxBadRecords, with the first row error it reported. */
function skippedRows(job: JobResource): BadRecords | undefined {
  const count = Number(job.statistics?.load?.badRecords ?? 0);
  if (!(count > 0)) return undefined;
  const first = job.status?.errors?.find((e) => e.message && !SUMMARY_MESSAGE.test(e.message));
  return { count, first: first ? describe(first) : 'BigQuery reported no row error' };
}

function contentReason(status: bigquery.IJobStatus): string {
  const all = [status.errorResult, ...(status.errors ?? [])].filter(
    (e): e is ErrorProto => e !== undefined,
  );
  const specific =
    all.find((e) => e.message && !SUMMARY_MESSAGE.test(e.message)) ?? status.errorResult;
  return describe(specific);
}

export function describe(error: ErrorProto | undefined): string {
  if (!error) return 'no error reported';
  const where =
    error.location && !error.message?.includes(error.location)
      ? ` (location: ${error.location})`
      : '';
  return `${error.reason ?? 'unknown'}: ${error.message ?? 'no message'}${where}`;
}

export function isJobResource(value: unknown): value is JobResource {
  if (typeof value !== 'object' || value === null) return false;
  const { status, jobReference } = value as { status?: unknown; jobReference?: unknown };
  return (
    typeof status === 'object' &&
    status !== null &&
    typeof jobReference === 'object' &&
    jobReference !== null
  );
}
