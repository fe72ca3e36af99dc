import { BigQuery } from '@google-cloud/bigquery';
import type bigquery from '@google-cloud/bigquery/build/src/types';
import { Storage } from '@google-cloud/storage';
import { setMaxListeners } from 'node:events';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import {
  groupByHeader,
  planGroups,
  schemaChanges,
  type ColumnPlan,
  type GroupsPlan,
  type TableColumn,
} from '../columns';
import { loadStaged, tableReference, type StagingCalls } from './bigquery-staged';
import type { SchemaField } from '../config';
import { HEAD_BYTES, checkHead } from '../header';
import { TransientError, errorMessage } from '../errors';
import { httpStatusOf, isTransientGoogleError, reasonsOf } from '../google-errors';
import { gsUri, type StoredObject } from '../stores/store';
import { removeCopies, stageSources } from './staging';
import { sourceUri, unloadableName, withOriginalUris, originalUri } from './source-uris';
import { withTimeout } from '../timeout';
import {
  tableId,
  type BadRecords,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type LoadResult,
  type QuotaLimit,
  type SourceHead,
  type TableInfo,
  type Warehouse,
} from './warehouse';

/** A job's column plan and the table's columns it was made from. */
interface Planned {
  plan: GroupsPlan | 'fromFile';
  before: TableColumn[] | undefined;
}

// How long this instance trusts the columns it read of a table (a load that disagrees reads them sooner).
const COLUMN_CACHE_MS = 5 * 60_000;

/** Where a job runs and how long it may be awaited. */
type Where = Pick<LoadJob, 'location' | 'deadline'>;

export interface BigQueryWarehouseOptions {
  /** A configured client; default `new BigQuery({projectId: project, location})`. */
  bigquery?: BigQuery;
  /** The project jobs run in, and the destination project when a route names none. */
  project?: string;
  /** The client's default location; each load job names its own. */
  location?: string;
  /** Longest time between jobs.get calls while a job runs (the first comes after 150 ms); default 1 s. */
  pollIntervalMs?: number;
  /** First pause before a transiently failed job is retried under a new id; doubles, at most 32 s. */
  retryDelayMs?: number;
  /** Attempts per job id (`J`, `J_2`, … `J_<n>`); default 5. */
  maxAttempts?: number;
  /** Longest wait for one API call (never past the job's deadline, but at least 1 s); default 60 s. */
  requestTimeoutMs?: number;
  /** Reads `.gz` sources to check them before a load; default `new Storage()` (honours STORAGE_EMULATOR_HOST). */
  storage?: Storage;
  /** Where a source BigQuery would misread is copied for its job (source-uris.ts); the quarantine prefix. */
  stagingPrefix?: string;
}

type JobResource = bigquery.IJob;
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
const QUOTA_REASONS = new Set(['quotaExceeded', 'rateLimitExceeded']);

/** Which limit an error's reason and message name, or undefined when it is none of BigQuery's limits. */
export function quotaLimitOf(reason: string, message: string): QuotaLimit | undefined {
  if (!QUOTA_REASONS.has(reason)) return undefined;
  return reason === 'rateLimitExceeded' || /exceeded rate limits/i.test(message)
    ? 'shortTerm'
    : 'daily';
}
// Load jobs per table per day a batching route may run: headroom under BigQuery's 1,500 for other writers.
const DEFAULT_JOBS_PER_DAY = 1000;
const TRANSIENT_HTTP_REASONS = new Set([
  'backendError',
  'internalError',
  'badGateway',
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'quotaExceeded',
  'jobRateLimitExceeded',
]);
const SUMMARY_MESSAGE = /too many errors, giving up|look into the errors\[\] collection/i;
/*
 * The client's own `timeout` does nothing in @google-cloud/bigquery 8: its teeny-request 10 hands it to
 * node-fetch 3, which dropped that option. So every call is raced against a timer here; a call that
 * lands after we gave up is harmless, since a redelivery re-inserts the same job id and gets a 409.
 */
const REQUEST_TIMEOUT_MS = 60_000;
const MIN_REQUEST_TIMEOUT_MS = 1000;
// BigQuery's SLA back-off: at least 1 s, doubling, at most 32 s.
const MAX_RETRY_DELAY_MS = 32_000;
// The first jobs.get after an insert; each later one waits twice as long, up to pollIntervalMs.
const FIRST_POLL_MS = 150;
const DEFAULT_STAGING_PREFIX = '_quarantine/';

/** The BigQuery Warehouse: one load job per LoadJob, reading the gs:// URIs itself. */
export function createBigQueryWarehouse(options: BigQueryWarehouseOptions = {}): Warehouse {
  const client = options.bigquery ?? createClient(options);
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 5;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  let storage = options.storage;
  const storageClient = (): Storage =>
    (storage ??= new Storage(options.project ? { projectId: options.project } : {}));
  const stagingPrefix = options.stagingPrefix ?? DEFAULT_STAGING_PREFIX;
  // abort() stops every wait at once; a job already inserted runs on in BigQuery, and the redelivery
  // finds it under the same id.
  const stopping = new AbortController();
  // Every wait in flight listens to it: as many as there are concurrent loads.
  setMaxListeners(0, stopping.signal);
  const running = new Set<Promise<unknown>>();
  const call = <T>(work: Promise<T>, what: string, deadline = Infinity): Promise<T> => {
    const ms = Math.min(requestTimeoutMs, Math.max(deadline - Date.now(), MIN_REQUEST_TIMEOUT_MS));
    const timeout = `${what}: no answer from BigQuery within ${ms} ms`;
    return unlessStopped(withTimeout(work, ms, timeout), stopping.signal);
  };
  const pause = (ms: number) => unlessStopped(sleep(ms), stopping.signal);
  // The client substitutes its project for this token when it sends a request.
  const defaultProject = options.project ?? client.projectId;

  async function getJob(jobId: string, job: Where): Promise<JobResource> {
    const { location } = job;
    const what = `reading BigQuery job ${jobId}`;
    try {
      const [metadata] = await call(
        client.job(jobId, { location }).getMetadata(),
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

  type Inserted =
    | { kind: 'inserted' | 'existing'; job: JobResource }
    | { kind: 'invalid'; reason: string }
    | { kind: 'quota'; reason: string; limit: QuotaLimit };

  async function insert(job: LoadJob, jobId: string, plan: Planned): Promise<Inserted> {
    return insertJob(job, jobId, toJobConfiguration(job, defaultProject, plan.plan, stagingPrefix));
  }

  async function insertJob(
    job: Where,
    jobId: string,
    configuration: bigquery.IJobConfiguration,
  ): Promise<Inserted> {
    const what = `inserting BigQuery ${configuration.copy ? 'copy' : 'load'} job ${jobId}`;
    try {
      const created = client.createJob({ configuration, jobId, location: job.location });
      const [, resource] = await call(created, what, job.deadline);
      return { kind: 'inserted', job: resource };
    } catch (error) {
      if (error instanceof TransientError) throw error;
      if (httpStatusOf(error) === 409) return { kind: 'existing', job: await getJob(jobId, job) };
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
          reason: `BigQuery refused load job ${jobId}: ${errorMessage(error)}`,
        };
      }
      throw toWarehouseError(error, what);
    }
  }

  async function awaitDone(resource: JobResource, jobId: string, job: Where): Promise<JobResource> {
    let current = resource;
    // A short job is seen soon after it ends; a long one is polled every pollIntervalMs.
    let interval = Math.min(FIRST_POLL_MS, pollIntervalMs);
    while (current.status?.state !== 'DONE') {
      const left = job.deadline - Date.now();
      if (left <= 0) {
        throw new TransientError(
          `BigQuery load job ${jobId} still running; redelivery will await it`,
        );
      }
      await pause(Math.min(interval, left));
      interval = Math.min(interval * 2, pollIntervalMs);
      current = await getJob(jobId, job);
    }
    return current;
  }

  /** The job, or undefined when this id was never inserted. */
  async function findJob(jobId: string, job: Where): Promise<JobResource | undefined> {
    try {
      const what = `reading BigQuery job ${jobId}`;
      const [metadata] = await call(
        client.job(jobId, { location: job.location }).getMetadata(),
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

  /** Why a gzip source cannot load whole, or undefined when every gzip source ends as it must. */
  async function truncatedGzip(job: LoadJob): Promise<string | undefined> {
    const gzipped = job.sources.filter((source) => /\.gz$/i.test(source.name));
    // An earlier delivery that inserted the job checked its sources.
    if (gzipped.length === 0 || (await findJob(job.jobId, job))) return undefined;
    for (const source of gzipped) {
      const signal = AbortSignal.any([
        stopping.signal,
        AbortSignal.timeout(Math.max(job.deadline - Date.now(), 0)),
      ]);
      const problem = await checkGzip(storageClient(), source, signal);
      if (problem) return problem;
    }
    return undefined;
  }

  async function load(job: LoadJob): Promise<LoadResult> {
    stopping.signal.throwIfAborted();
    const truncated = await truncatedGzip(job);
    if (truncated) return { outcome: 'rejected', jobId: job.jobId, reason: truncated };
    const planned = await planJob(job);
    if ('rejected' in planned)
      return { outcome: 'rejected', jobId: job.jobId, reason: planned.rejected };
    let lastFailure = '';
    const staged = job.trial || (planned.plan !== 'fromFile' && planned.plan.groups.length > 1);
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let jobId = attemptId(job.jobId, attempt);
      let done: JobResource;
      let existing: boolean;
      let stagedRows: number | undefined;
      await stage(job);
      if (staged) {
        const ran = await loadStaged(job, jobId, planned.plan, !!planned.before, staging(job));
        if ('refused' in ran)
          return ended(job, { outcome: 'rejected', jobId, reason: ran.refused });
        ({ job: done, jobId, existing, rows: stagedRows } = ran);
      } else {
        const inserted = await insert(job, jobId, planned);
        if (inserted.kind === 'invalid')
          return ended(job, { outcome: 'rejected', jobId, reason: inserted.reason });
        if (inserted.kind === 'quota')
          throw new TransientError(`inserting BigQuery load job ${jobId}: ${inserted.reason}`);
        done = await awaitDone(inserted.job, jobId, job);
        existing = inserted.kind === 'existing';
      }
      if (schemaDisagrees(done)) {
        forget(job.destination);
        throw new TransientError(
          `BigQuery load job ${jobId}: ${describe(done.status?.errorResult)}; the table changed, redelivery plans again from its new schema`,
        );
      }
      const result = toResult(done, jobId, existing, stagedRows);
      if (result) {
        const finished = await ended(job, result);
        return job.trial ? finished : withChanges(finished, job, planned);
      }
      lastFailure = describe(done.status?.errorResult);
      const delay = Math.min(retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
      if (attempt < maxAttempts && Date.now() + delay >= job.deadline) {
        const next = attemptId(job.jobId, attempt + 1);
        throw new TransientError(
          `BigQuery load job ${jobId} failed (${lastFailure}); redelivery will try ${next}`,
        );
      }
      if (attempt < maxAttempts) await pause(delay);
    }
    throw new TransientError(
      `BigQuery load job ${job.jobId} failed ${maxAttempts} times for transient reasons (last: ${lastFailure}); ` +
        'a forced reprocess starts a new series of attempts',
    );
  }

  async function loadClaimed(job: LoadJob): Promise<ClaimedLoadResult> {
    stopping.signal.throwIfAborted();
    const planned = await planJob(job);
    if ('rejected' in planned)
      return { outcome: 'rejected', jobId: job.jobId, reason: planned.rejected };
    await stage(job);
    const inserted = await insert(job, job.jobId, planned);
    if (inserted.kind === 'invalid')
      return ended(job, { outcome: 'rejected', jobId: job.jobId, reason: inserted.reason });
    if (inserted.kind === 'quota')
      return {
        outcome: 'failed',
        jobId: job.jobId,
        reason: inserted.reason,
        quota: inserted.limit,
      };
    // Its id is new, so an existing job is this very insert, retried after a lost answer.
    const done = await awaitDone(inserted.job, job.jobId, job);
    if (schemaDisagrees(done)) {
      forget(job.destination);
      const reason = `${describe(done.status?.errorResult)}; the table changed, its members go again`;
      return { outcome: 'failed', jobId: job.jobId, reason, quota: false };
    }
    const result = claimedResult(done, job.jobId);
    return result.outcome === 'failed'
      ? result
      : withChanges(await ended(job, result), job, planned);
  }

  // ---- Sources BigQuery would misread: loaded from copies (source-uris.ts) ----

  /** Copies the sources that need it; the load rejects when one cannot have a safe name. */
  async function stage(job: LoadJob): Promise<void> {
    await stageSources(storageClient(), job.sources, stagingPrefix, (work, what) =>
      call(work, what, job.deadline),
    );
  }

  /** Why the job cannot load: a source that needs a copy whose name would be too long. */
  function unloadable(job: LoadJob): string | undefined {
    return job.sources.map((s) => unloadableName(s, stagingPrefix)).find((p) => p !== undefined);
  }

  /** A final result: the job's copies removed, and its reason naming the originals. */
  async function ended<R extends ClaimedLoadResult>(job: LoadJob, result: R): Promise<R> {
    const uris = job.sources.map((s) => sourceUri(s, stagingPrefix));
    return finished(uris, result, job);
  }

  async function finished<R extends ClaimedLoadResult>(
    uris: string[],
    result: R,
    where: Where,
  ): Promise<R> {
    await removeCopies(storageClient(), uris, stagingPrefix, (work, what) =>
      call(work, what, where.deadline),
    );
    if (!('reason' in result) || typeof result.reason !== 'string') return result;
    return { ...result, reason: withOriginalUris(result.reason, uris, stagingPrefix) };
  }

  // ---- Columns: the table's, cached per instance, and what a job's files do to them ----

  const columnCache = new Map<
    string,
    { at: number; columns: Promise<TableColumn[] | undefined> }
  >();
  const forget = (destination: Destination) => columnCache.delete(tableId(destination));

  function tableColumns(
    destination: Destination,
    fresh = false,
  ): Promise<TableColumn[] | undefined> {
    const key = tableId(destination);
    const cached = columnCache.get(key);
    if (!fresh && cached && Date.now() - cached.at < COLUMN_CACHE_MS) return cached.columns;
    const columns = readTableColumns(destination);
    columnCache.set(key, { at: Date.now(), columns });
    columns.catch(() => columnCache.delete(key));
    return columns;
  }

  async function readTableColumns(destination: Destination): Promise<TableColumn[] | undefined> {
    const project = destination.project ?? defaultProject;
    const table = client
      .dataset(destination.dataset, { projectId: project })
      .table(destination.table);
    const what = `reading table ${tableId(destination)}`;
    try {
      const [metadata] = await call(table.getMetadata(), what);
      const fields = (metadata as bigquery.ITable).schema?.fields ?? [];
      return fields.map((field) => ({
        name: field.name ?? '',
        type: field.type ?? 'STRING',
        mode: field.mode === 'REQUIRED' ? 'REQUIRED' : 'NULLABLE',
      }));
    } catch (error) {
      if (error instanceof TransientError) throw error;
      if (httpStatusOf(error) === 404) return undefined;
      throw toWarehouseError(error, what);
    }
  }

  /** How the job's files meet the table: its plan and the columns it was made from, or why not. */
  async function planJob(job: LoadJob): Promise<Planned | { rejected: string }> {
    const badName = unloadable(job);
    if (badName) return { rejected: badName };
    let heads = job.heads;
    if (!heads) {
      const first = job.head ?? (await readHead(job));
      if ('problem' in first) return { rejected: first.problem };
      heads = [first];
      // A coalesced job's members were grouped by header already.
      for (let i = 1; i < job.sources.length; i++) {
        const head = job.claimed ? first : await readHead(job, i);
        if ('problem' in head) return { rejected: head.problem };
        heads.push(head);
      }
    }
    const groups = groupByHeader(heads);
    const id = tableId(job.destination);
    const planWith = (table: TableColumn[] | undefined) => {
      const plan = planGroups(groups, job, table, id);
      if (plan === 'fromFile' || !('rejected' in plan) || groups.length === 1) return plan;
      return {
        rejected: `${plan.rejected} (${plan.indexes.map((i) => gsUri(job.sources[i]!)).join(', ')})`,
      };
    };
    const before = await tableColumns(job.destination);
    const plan = planWith(before);
    if (plan !== 'fromFile' && 'rejected' in plan) {
      // A stale cache never rejects a file: ask the table itself.
      const fresh = await tableColumns(job.destination, true);
      const again = planWith(fresh);
      if (again !== 'fromFile' && 'rejected' in again) return again;
      return { plan: again, before: fresh };
    }
    return { plan, before };
  }

  /** The calls a staged load makes (bigquery-staged.ts), for `job`'s destination and deadline. */
  function staging(job: LoadJob): StagingCalls {
    const table = (d: Destination) =>
      client.dataset(d.dataset, { projectId: d.project ?? defaultProject }).table(d.table);
    const fields = (columns: TableColumn[]) => ({ fields: columns.map(toFieldSchema) });
    const calling = async (work: Promise<unknown>, what: string) => {
      try {
        await call(work, what, job.deadline);
      } catch (error) {
        if (error instanceof TransientError) throw error;
        throw toWarehouseError(error, what);
      }
    };
    return {
      project: defaultProject,
      loadConfiguration: (part, plan) =>
        toJobConfiguration(part, defaultProject, plan, stagingPrefix),
      async run(configuration, jobId) {
        const inserted = await insertJob(job, jobId, configuration);
        if (inserted.kind === 'quota')
          throw new TransientError(`inserting BigQuery job ${jobId}: ${inserted.reason}`);
        if (inserted.kind === 'invalid') return { refused: inserted.reason };
        const done = await awaitDone(inserted.job, jobId, job);
        return { job: done, existing: inserted.kind === 'existing' };
      },
      async find(jobId) {
        const found = await findJob(jobId, job);
        return found && awaitDone(found, jobId, job);
      },
      createTable: (d, columns, created) => {
        const metadata: bigquery.ITable = { schema: fields(columns) };
        const partitioning = toTimePartitioning(created);
        if (partitioning) metadata.timePartitioning = partitioning;
        if (created.clustering) metadata.clustering = { fields: [...created.clustering] };
        return calling(table(d).create(metadata), `creating table ${tableId(d)}`);
      },
      patchSchema: (d, columns) =>
        calling(
          table(d).setMetadata({ schema: fields(columns) }),
          `adding columns to ${tableId(d)}`,
        ),
      deleteTable: (d) =>
        calling(table(d).delete({ ignoreNotFound: true }), `deleting staging table ${tableId(d)}`),
    };
  }

  /** The first source's head, read when the job does not carry it. */
  async function readHead(job: LoadJob, index = 0): Promise<SourceHead | { problem: string }> {
    const source = job.sources[index] as StoredObject;
    const file = storageClient()
      .bucket(source.bucket)
      .file(source.name, { generation: source.generation });
    const what = `reading the head of ${gsUri(source)}`;
    let bytes: Buffer;
    try {
      [bytes] = await call(
        file.download({ start: 0, end: HEAD_BYTES - 1, decompress: false, validation: false }),
        what,
        job.deadline,
      );
    } catch (error) {
      if (error instanceof TransientError) throw error;
      throw toWarehouseError(error, what);
    }
    const head = await checkHead({
      head: bytes,
      complete: bytes.length >= source.size,
      gzip: /\.gz$/i.test(source.name),
      csv: job.csv,
    });
    return 'problem' in head ? { problem: `${head.problem} (${gsUri(source)})` } : head;
  }

  /** A loaded result with what the job changed in the table's schema, read back when it changed any. */
  async function withChanges<R extends ClaimedLoadResult>(
    result: R,
    job: LoadJob,
    { plan, before }: Planned,
  ): Promise<R> {
    const changing =
      plan === 'fromFile' ||
      !before ||
      job.write === 'replace' ||
      plan.added.length > 0 ||
      plan.relaxed.length > 0;
    if (!changing) return result;
    forget(job.destination);
    if (result.outcome !== 'loaded' || !before) return result;
    const after = await tableColumns(job.destination).catch(() => undefined);
    const changes = after ? schemaChanges(before, after) : [];
    return changes.length > 0 ? { ...result, schemaChanges: changes } : result;
  }

  // Every load in flight, so that abort() can wait for them to end.
  const track = <T>(work: Promise<T>): Promise<T> => {
    running.add(work);
    void work.catch(() => undefined).finally(() => running.delete(work));
    return work;
  };

  return {
    jobsPerDay: DEFAULT_JOBS_PER_DAY,
    tableColumns,
    loadClaimed: (job) => track(loadClaimed(job)),
    followJob: (jobId, where) =>
      track(
        (async () => {
          const found = await findJob(jobId, where);
          if (!found) return undefined;
          const done = await awaitDone(found, jobId, where);
          const uris = done.configuration?.load?.sourceUris ?? [];
          const claimed = claimedResult(done, jobId);
          const result =
            claimed.outcome === 'failed' ? claimed : await finished(uris, claimed, where);
          return { result, uris: uris.map((uri) => originalUri(uri, stagingPrefix)) };
        })(),
      ),
    precheck: async (object, deadline) => {
      if (!/\.gz$/i.test(object.name)) return undefined;
      const signal = AbortSignal.any([
        stopping.signal,
        AbortSignal.timeout(Math.max(deadline - Date.now(), 0)),
      ]);
      return checkGzip(storageClient(), object, signal);
    },
    load: (job) => track(load(job)),

    async settle(job) {
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const jobId = attemptId(job.jobId, attempt);
        const found = await findJob(jobId, job);
        if (!found) return; // a later attempt needs this one first
        const done = await awaitDone(found, jobId, job);
        if (!done.status?.errorResult) return;
      }
    },

    // Nothing to record: for BigQuery the failed job (INFORMATION_SCHEMA.JOBS) and the quarantine
    // copy with its metadata are the record of a rejection.
    async recordRejection() {},

    async tables() {
      try {
        return await listTables(client, call);
      } catch (error) {
        throw toWarehouseError(error, 'listing BigQuery tables');
      }
    },

    async close() {},

    async abort(reason) {
      stopping.abort(new TransientError(`${reason}; a redelivery awaits the same BigQuery job`));
      await Promise.allSettled([...running]);
    },
  };
}

function createClient(options: BigQueryWarehouseOptions): BigQuery {
  return new BigQuery({
    ...(options.project ? { projectId: options.project } : {}),
    ...(options.location ? { location: options.location } : {}),
  });
}

export function attemptId(jobId: string, attempt: number): string {
  return attempt === 1 ? jobId : `${jobId}_${attempt}`;
}

/**
 * The load job configuration for a LoadJob, typed with the client library's own REST types so that
 * a misspelt or mistyped field does not compile.
 */
export function toJobConfiguration(
  job: LoadJob,
  defaultProject: string,
  plan?: ColumnPlan | 'fromFile',
  stagingPrefix = DEFAULT_STAGING_PREFIX,
): bigquery.IJobConfiguration {
  const load = toLoadConfiguration(job, defaultProject, plan, stagingPrefix);
  return { load, labels: { ...job.labels } };
}

const WRITE_DISPOSITIONS = {
  append: 'WRITE_APPEND',
  // Rows replaced, the table's schema kept (and evolved by the schema update options).
  truncate: 'WRITE_TRUNCATE_DATA',
  replace: 'WRITE_TRUNCATE',
  // On a `table$YYYYMMDD` destination: that partition only.
  partition: 'WRITE_TRUNCATE',
} as const;

/**
 * The load configuration; with a column plan (columns.ts), the table's schema as the plan leaves it,
 * the schema update options that lets the job add and relax columns, and how columns match.
 */
export function toLoadConfiguration(
  job: LoadJob,
  defaultProject: string,
  plan?: ColumnPlan | 'fromFile',
  stagingPrefix = DEFAULT_STAGING_PREFIX,
): bigquery.IJobConfigurationLoad {
  const { destination, csv } = job;
  const load: bigquery.IJobConfigurationLoad = {
    sourceFormat: 'CSV',
    sourceUris: job.sources.map((source) => sourceUri(source, stagingPrefix)),
    destinationTable: tableReference(destination, defaultProject),
    writeDisposition: WRITE_DISPOSITIONS[job.write],
    createDisposition: job.createDisposition,
    skipLeadingRows: csv.skipLeadingRows,
    fieldDelimiter: csv.delimiter,
    quote: csv.quote,
    encoding: csv.encoding,
    allowQuotedNewlines: csv.allowQuotedNewlines,
    allowJaggedRows: csv.allowJaggedRows,
    maxBadRecords: csv.maxBadRecords,
    nullMarker: csv.nullMarker,
  };
  // Without a header row there are no names to match by.
  load.sourceColumnMatch =
    job.columns.match === 'byName' && csv.skipLeadingRows > 0 ? 'NAME' : 'POSITION';
  if (plan && plan !== 'fromFile') {
    load.schema = { fields: plan.table.map(toFieldSchema) };
    const updates: string[] = [];
    if (plan.added.length > 0) updates.push('ALLOW_FIELD_ADDITION');
    if (plan.relaxed.length > 0) updates.push('ALLOW_FIELD_RELAXATION');
    if (updates.length > 0 && job.write !== 'replace') load.schemaUpdateOptions = updates;
  } else if (job.schema === 'auto') load.autodetect = true;
  else load.schema = { fields: job.schema.map(toFieldSchema) };
  const partitioning = toTimePartitioning(job);
  if (partitioning) load.timePartitioning = partitioning;
  if (job.clustering) load.clustering = { fields: [...job.clustering] };
  return load;
}

/** A `table$YYYYMMDD` destination needs a day-partitioned table, and creating one needs the spec. */
function toTimePartitioning(job: LoadJob): bigquery.ITimePartitioning | undefined {
  const partitioning: LoadJob['timePartitioning'] =
    job.timePartitioning ?? (job.write === 'partition' ? { type: 'DAY' } : undefined);
  if (!partitioning) return undefined;
  const out: bigquery.ITimePartitioning = { type: partitioning.type };
  if (partitioning.field) out.field = partitioning.field;
  // int64 fields travel as JSON strings.
  if (partitioning.expirationMs !== undefined) out.expirationMs = String(partitioning.expirationMs);
  return out;
}

function toFieldSchema(field: SchemaField | TableColumn): bigquery.ITableFieldSchema {
  const out: bigquery.ITableFieldSchema = { name: field.name, type: field.type };
  if (field.mode) out.mode = field.mode;
  if (field.description) out.description = field.description;
  return out;
}

/**
 * A job refused because the schema it carried no longer fits the table (changed since this instance
 * read it): BigQuery's "Provided Schema does not match Table" (assumed wording, error-messages docs).
 */
function schemaDisagrees(job: JobResource): boolean {
  const error = job.status?.errorResult;
  return (
    error?.reason === 'invalid' && /Provided Schema does not match Table/i.test(error.message ?? '')
  );
}

/** A finished coalesced job: its transient failure is an outcome (its members are claimed again). */
function claimedResult(job: JobResource, jobId: string): ClaimedLoadResult {
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
function toResult(
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

function describe(error: ErrorProto | undefined): string {
  if (!error) return 'no error reported';
  const where =
    error.location && !error.message?.includes(error.location)
      ? ` (location: ${error.location})`
      : '';
  return `${error.reason ?? 'unknown'}: ${error.message ?? 'no message'}${where}`;
}

type Call = <T>(work: Promise<T>, what: string) => Promise<T>;

async function listTables(client: BigQuery, call: Call): Promise<TableInfo[]> {
  const out: TableInfo[] = [];
  const [datasets] = await call(client.getDatasets(), 'listing datasets');
  for (const dataset of datasets) {
    const [tables] = await call(dataset.getTables(), `listing tables of ${dataset.id}`);
    for (const table of tables) {
      // tables.list carries no row counts; tables.get does (numRows, an int64 string).
      const [metadata] = await call(table.getMetadata(), `reading table ${dataset.id}.${table.id}`);
      out.push({
        table: `${dataset.id}.${table.id}`,
        rows: Number((metadata as bigquery.ITable).numRows ?? 0),
      });
    }
  }
  return out.sort((a, b) => a.table.localeCompare(b.table));
}

function isJobResource(value: unknown): value is JobResource {
  if (typeof value !== 'object' || value === null) return false;
  const { status, jobReference } = value as { status?: unknown; jobReference?: unknown };
  return (
    typeof status === 'object' &&
    status !== null &&
    typeof jobReference === 'object' &&
    jobReference !== null
  );
}

function toWarehouseError(error: unknown, action: string): Error {
  const status = httpStatusOf(error);
  const what = status === undefined ? 'network error' : `HTTP ${status}`;
  const message = `${action}: ${what}: ${errorMessage(error)}`;
  return isTransientGoogleError(error, TRANSIENT_HTTP_REASONS)
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}

/**
 * Reads a gzip source through gunzip to its end, keeping nothing: the reason it is not a complete gzip
 * stream (as `gzip -t` words it), or undefined.
 */
async function checkGzip(
  storage: Storage,
  object: StoredObject,
  signal: AbortSignal,
): Promise<string | undefined> {
  const file = storage.bucket(object.bucket).file(object.name, { generation: object.generation });
  const source = file.createReadStream({ decompress: false, validation: false });
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  try {
    await pipeline(source, zlib.createGunzip(), discard, { signal });
    return undefined;
  } catch (error) {
    const uri = gsUri(object);
    if (signal.aborted) {
      const why = signal.reason instanceof TransientError ? signal.reason.message : 'out of time';
      throw new TransientError(`checking gzip stream ${uri}: ${why}`, { cause: error });
    }
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      return `${uri} is not a complete gzip stream (${errorMessage(error)}); nothing of it was loaded`;
    }
    throw toWarehouseError(error, `reading ${uri} to check its gzip stream`);
  }
}

/** The work's result, or the abort reason as soon as `signal` aborts. */
function unlessStopped<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(signal.reason as Error);
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
