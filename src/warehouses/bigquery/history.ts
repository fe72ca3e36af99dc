import type { BigQuery } from '@google-cloud/bigquery';
import type api from '@google-cloud/bigquery/build/src/types';
import { z } from 'zod/v3';
import { httpStatusOf } from '../../core/google-errors';
import { originalUri } from './source-uris';
import { HAS_ROWS, SUPERSEDED, writtenBy } from './lineage-sql';
import { BucketNotFoundError, type ObjectStore } from '../../stores/store';
import type { HistoryEntry } from '../../history/entry';

/**
 * Load history on Google Cloud: the service's load jobs from BigQuery's INFORMATION_SCHEMA, found by
 * their labels, with what that view lacks (source URIs, rows) from each job's own resource, joined
 * with the reasons kept on the quarantined copies. A lineage job is its query job (lineage.ts): its
 * objects and table are read from its own query text, its rows and replaced rows from its INSERT and
 * DELETE statements' dmlStats (child jobs, jobs.list with parentJobId), the replaced rows as one count
 * for the job (per object only the job's own answer has them). Its staging loads (into
 * `_ingest_stage_…` tables) are left out, and so is a job whose ASSERT found a newer generation (it
 * wrote nothing, like a skipped object). A `replace` or `partition` lineage job ends in a copy job,
 * which this view does not list (as for a staged partition rebuild).
 */
export interface CloudHistoryOptions {
  bigquery: BigQuery;
  store: ObjectStore;
  location: string;
  quarantinePrefix: string;
  /** Buckets whose quarantine is read besides those the jobs' labels name (the allowlist). */
  buckets?: string[];
  since: Date;
}

const PARALLEL_GETS = 8;

/** The query on `region-<location>`.INFORMATION_SCHEMA.JOBS_BY_PROJECT; `@since` is a TIMESTAMP. */
export function jobsQuery(location: string): string {
  if (!/^[A-Za-z0-9-]+$/.test(location))
    throw new Error(`location "${location}" is not a BigQuery location`);
  return `SELECT job_id, UNIX_MILLIS(creation_time) AS created_ms, UNIX_MILLIS(end_time) AS ended_ms,
  state, destination_table.project_id AS project_id, destination_table.dataset_id AS dataset_id,
  destination_table.table_id AS table_id, error_result.reason AS error_reason,
  error_result.message AS error_message,
  (SELECT value FROM UNNEST(labels) WHERE key = 'bucket') AS bucket
FROM \`region-${location.toLowerCase()}\`.INFORMATION_SCHEMA.JOBS_BY_PROJECT
WHERE creation_time >= @since
  AND job_type IN ('LOAD', 'QUERY')
  AND parent_job_id IS NULL
  AND EXISTS (SELECT 1 FROM UNNEST(labels) WHERE key = 'component' AND value = 'gcs-bq-ingest')
ORDER BY creation_time DESC`;
}

const count = z.union([z.number(), z.string()]).transform(Number);
const jobRow = z.object({
  job_id: z.string(),
  created_ms: count,
  ended_ms: count.nullable(),
  state: z.string(),
  project_id: z.string().nullable(),
  dataset_id: z.string().nullable(),
  table_id: z.string().nullable(),
  error_reason: z.string().nullable(),
  error_message: z.string().nullable(),
  bucket: z.string().nullable(),
});
export type JobRow = z.infer<typeof jobRow>;

/** The query's rows, checked; a row of another shape is an error naming the field. */
export function parseJobRows(rows: unknown[]): JobRow[] {
  return rows.map((row, i) => {
    const parsed = jobRow.safeParse(row);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new Error(`INFORMATION_SCHEMA row ${i}: ${issue?.path.join('.')}: ${issue?.message}`);
  });
}

/** A quarantined copy, as its custom metadata tells. */
interface Copy {
  source: string;
  reason: string;
  jobId?: string;
  /** Epoch ms: Cloud Storage generations are creation times in microseconds. */
  at: number;
}

export async function readCloudHistory(options: CloudHistoryOptions): Promise<HistoryEntry[]> {
  const { bigquery, location, since } = options;
  const [rows] = await bigquery.query({ query: jobsQuery(location), params: { since }, location });
  const jobs = parseJobRows(rows as unknown[]);
  const buckets = new Set(options.buckets ?? []);
  for (const job of jobs) if (job.bucket) buckets.add(bucketOf(job.bucket, options.buckets));
  const [sources, copies] = await Promise.all([
    jobSources(bigquery, jobs, location, options.quarantinePrefix),
    quarantined(options.store, [...buckets], options.quarantinePrefix, since),
  ]);
  const entries = jobs
    .filter(
      (job) => !job.table_id?.startsWith(STAGING_TABLE) && sources.get(job.job_id)?.skip !== true,
    )
    .flatMap((job) => jobEntries(job, sources.get(job.job_id), copies));
  const known = new Set(jobs.map((j) => j.job_id));
  for (const copy of copies) {
    if (copy.jobId !== undefined && known.has(copy.jobId)) continue;
    entries.push({
      time: new Date(copy.at).toISOString(),
      objects: [copy.source],
      outcome: 'rejected',
      jobId: copy.jobId,
      reason: copy.reason,
    });
  }
  return entries;
}

/** A job's entries: one, or for a rejected job one per distinct reason of its quarantined objects. */
function jobEntries(job: JobRow, source: JobSource | undefined, copies: Copy[]): HistoryEntry[] {
  const base = {
    time: new Date(job.ended_ms ?? job.created_ms).toISOString(),
    destination:
      source?.destination ??
      [job.project_id, job.dataset_id, job.table_id].filter(Boolean).join('.'),
    jobId: job.job_id,
  };
  const objects = source?.uris ?? [];
  if (job.state !== 'DONE') return [{ ...base, objects, outcome: 'running' }];
  if (job.error_reason === null) {
    const replaced =
      source?.replacedRows === undefined ? {} : { replacedRows: source.replacedRows };
    return [{ ...base, objects, outcome: 'loaded', rows: source?.rows, ...replaced }];
  }
  const mine = copies.filter((c) => c.jobId === job.job_id);
  const reason = job.error_message ?? job.error_reason;
  if (mine.length === 0) return [{ ...base, objects, outcome: 'failed', reason }];
  const byReason = new Map<string, string[]>();
  for (const copy of mine)
    byReason.set(copy.reason, [...(byReason.get(copy.reason) ?? []), copy.source]);
  return [...byReason].map(([why, uris]) => ({
    ...base,
    objects: uris,
    outcome: 'rejected',
    reason: why,
  }));
}

interface JobSource {
  uris: string[];
  rows?: number;
  /** A lineage job's. */
  destination?: string;
  replacedRows?: number;
  /** Not a job of the history: a staging step, or a lineage job that wrote nothing. */
  skip?: boolean;
}

const STAGING_TABLE = '_ingest_stage_';

/** Each job's source URIs and rows loaded, from jobs.get; a job it may not read is left out. */
async function jobSources(
  bigquery: BigQuery,
  jobs: JobRow[],
  location: string,
  quarantinePrefix: string,
): Promise<Map<string, JobSource>> {
  const found = new Map<string, JobSource>();
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const id = (jobs[next++] as JobRow).job_id;
      try {
        const [metadata] = (await bigquery.job(id, { location }).getMetadata()) as [
          api.IJob,
          unknown,
        ];
        if (metadata.configuration?.query) {
          found.set(id, await lineageSource(bigquery, metadata));
          continue;
        }
        const load = metadata.configuration?.load;
        const rows = metadata.statistics?.load?.outputRows;
        found.set(id, {
          // A source loaded from a copy under a safe name is shown as its original.
          uris: (load?.sourceUris ?? []).map((uri) => originalUri(uri, quarantinePrefix)),
          ...(rows === undefined || rows === null ? {} : { rows: Number(rows) }),
        });
      } catch (error) {
        // A job this caller may not read (or no longer there) is shown from its view row alone.
        if (![403, 404].includes(httpStatusOf(error) ?? 0)) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_GETS, jobs.length) }, worker));
  return found;
}

/** The quarantined copies created since `since` in these buckets; a bucket that is gone has none. */
async function quarantined(
  store: ObjectStore,
  buckets: string[],
  prefix: string,
  since: Date,
): Promise<Copy[]> {
  const copies: Copy[] = [];
  for (const bucket of buckets) {
    try {
      for await (const object of store.list(bucket, prefix)) {
        const meta = object.metadata ?? {};
        const source = meta['ingest-source'];
        const at = Number(object.generation) / 1000;
        if (source === undefined || at < since.getTime()) continue;
        const copy: Copy = { source, reason: meta['ingest-reason'] ?? 'rejected', at };
        if (meta['ingest-job-id'] !== undefined) copy.jobId = meta['ingest-job-id'];
        copies.push(copy);
      }
    } catch (error) {
      if (!(error instanceof BucketNotFoundError)) throw error;
    }
  }
  return copies;
}

/**
 * The bucket a job's `bucket` label names: label values are lower-cased with other characters as `_`,
 * so an allowlisted bucket that gives the same label is the one; else the label itself.
 */
function bucketOf(label: string, allowlist: string[] | undefined): string {
  const asLabel = (b: string) =>
    b
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, '_')
      .slice(0, 63);
  return allowlist?.find((b) => asLabel(b) === label) ?? label;
}

/** A lineage query job as history shows it (see the top of this file). */
async function lineageSource(bigquery: BigQuery, job: api.IJob): Promise<JobSource> {
  const written = writtenBy(job.configuration?.query?.query ?? '');
  const error = job.status?.errorResult;
  if (!written || written.table.tableId?.startsWith(STAGING_TABLE)) return { uris: [], skip: true };
  // Superseded wrote nothing; a first load that found rows went again as the replacing script.
  if (error?.message?.includes(SUPERSEDED) || error?.message?.includes(HAS_ROWS))
    return { uris: [], skip: true };
  const { projectId, datasetId, tableId } = written.table;
  const source: JobSource = {
    uris: written.sources.map((s) => s.uri),
    destination: `${projectId}.${datasetId}.${tableId}`,
  };
  if (job.status?.state !== 'DONE' || error) return source;
  const [children] = await bigquery.getJobs({
    parentJobId: job.jobReference?.jobId ?? '',
    autoPaginate: false,
  });
  const dml = (type: string) =>
    children
      .map((c) => c.metadata as api.IJob)
      .find((c) => c.statistics?.query?.statementType === type)?.statistics?.query?.dmlStats;
  const inserted = dml('INSERT')?.insertedRowCount;
  const deleted = dml('DELETE')?.deletedRowCount;
  if (inserted !== undefined && inserted !== null) source.rows = Number(inserted);
  if (deleted !== undefined && deleted !== null) source.replacedRows = Number(deleted);
  return source;
}
