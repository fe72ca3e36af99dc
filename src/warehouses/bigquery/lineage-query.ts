import type bigquery from '@google-cloud/bigquery/build/src/types';
import { TransientError } from '../../core/errors';
import type { LoadJob } from '../warehouse';
import type { BigQueryContext, Where } from './context';
import { toWarehouseError } from './errors';
import { describe, toResult, type JobResource } from './job-results';
import { attemptId } from './jobs';
import { HAS_ROWS, SUPERSEDED, newestQuery, type LineageSource } from './lineage-sql';
import { stagingCalls } from './staged-calls';

/*
 * The lineage job's query: one job (its id the load's, then `_2`, `_3`, … after an abort) whose
 * multi-statement transaction replaces the sources' rows ("Multi-statement transactions",
 * https://cloud.google.com/bigquery/docs/transactions: snapshot isolation, an error rolls the
 * transaction back). Two transactions that mutate one table at once abort one of them ("Transaction
 * concurrency", same page): "Transaction is aborted due to concurrent update against table …", or
 * "Could not serialize access to table … due to concurrent update" (reason invalidQuery; wording from
 * public issue threads, e.g. estuary/connectors#111, confluentinc/kafka-connect-bigquery#279). So the
 * instance runs one such job per table at a time, and an abort (a concurrent writer elsewhere) goes
 * again under the next id after a pause. A script's statements run as child jobs (jobs.list with
 * `parentJobId`, https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list), each with its
 * `statistics.query.statementType` and, for DML, `dmlStats`; a SELECT child's rows are read with
 * jobs.getQueryResults.
 */

const CONCURRENT_UPDATE = /concurrent update/i;
/** Jobs found that wrote a table since gone, skipped before giving up. */
const MAX_STALE = 20;

export type ScriptEnd =
  /** `replacing`: the script that deletes the sources' earlier rows ran (not a first load's). */
  | { kind: 'done'; job: JobResource; jobId: string; existing: boolean; replacing?: boolean }
  /** Its ASSERT found a newer generation of a source: nothing was written. */
  | { kind: 'superseded'; jobId: string }
  | { kind: 'failed'; jobId: string; reason: string };

export function queryConfiguration(query: string, job: LoadJob): bigquery.IJobConfiguration {
  return { query: { query, useLegacySql: false }, labels: { ...job.labels } };
}

/** What a finished lineage query job came to; undefined when it may go again under its next id. */
export function scriptEnd(
  done: JobResource,
  jobId: string,
  existing: boolean,
): ScriptEnd | undefined {
  const failure = done.status?.errorResult;
  if (!failure) return { kind: 'done', job: done, jobId, existing };
  if (failure.message?.includes(SUPERSEDED)) return { kind: 'superseded', jobId };
  // A first load that found rows, or an abort: the job goes again under its next id.
  if (failure.message?.includes(HAS_ROWS)) return undefined;
  if (CONCURRENT_UPDATE.test(failure.message ?? '')) return undefined;
  const result = toResult(done, jobId, existing);
  return result ? { kind: 'failed', jobId, reason: describe(failure) } : undefined;
}

/**
 * Runs the script under `base` (the job's id), or its next after an abort; one per table at a time
 * here. A job found that was created before `after` wrote a table since replaced: it runs again.
 */
export async function runScript(
  ctx: BigQueryContext,
  job: LoadJob,
  scripts: { first: string; replacing?: string },
  { base = job.jobId, after }: { base?: string; after?: number } = {},
): Promise<ScriptEnd> {
  const { project = ctx.defaultProject, dataset, table } = job.destination;
  const key = `${project}.${dataset}.${table}`;
  const calls = stagingCalls(ctx, job);
  let last = '';
  let stale = 0;
  let script = scripts.first;
  for (let attempt = 1; attempt <= ctx.maxAttempts + stale; attempt++) {
    const jobId = attemptId(base, attempt);
    const ran = await ctx.serialize(key, () => calls.run(queryConfiguration(script, job), jobId));
    // A statement BigQuery refuses is this code's fault, not the data's.
    if ('refused' in ran) throw new Error(ran.refused);
    const created = Number(ran.job.statistics?.creationTime ?? Infinity);
    if (ran.existing && after !== undefined && created < after && stale++ < MAX_STALE) continue;
    const end = scriptEnd(ran.job, jobId, ran.existing);
    if (end?.kind === 'done') return { ...end, replacing: script !== scripts.first };
    if (end) return end;
    last = describe(ran.job.status?.errorResult);
    if (scripts.replacing && ran.job.status?.errorResult?.message?.includes(HAS_ROWS)) {
      script = scripts.replacing;
      continue;
    }
    if (attempt < ctx.maxAttempts) await ctx.pause(ctx.retryDelayMs * 2 ** (attempt - 1));
  }
  throw new TransientError(
    `BigQuery lineage job ${job.jobId} went ${ctx.maxAttempts} times without committing (last: ${last}); redelivery tries again`,
  );
}

/** What a finished script's statements counted. */
export interface ScriptCounts {
  /** Per URI, its rows in the table before the job (the SELECT's result). */
  before: Map<string, number>;
  inserted?: number;
  deleted?: number;
}

export async function scriptCounts(
  ctx: BigQueryContext,
  jobId: string,
  where: Where,
): Promise<ScriptCounts> {
  const what = `listing the statements of BigQuery job ${jobId}`;
  const statements = await read(
    ctx,
    async () => {
      const [jobs] = await ctx.client.getJobs({ parentJobId: jobId, autoPaginate: false });
      return jobs.map((child) => child.metadata as JobResource);
    },
    what,
    where,
  );
  const of = (type: string) => statements.find((s) => s.statistics?.query?.statementType === type);
  const dml = (type: string, field: 'insertedRowCount' | 'deletedRowCount') => {
    const value = of(type)?.statistics?.query?.dmlStats?.[field];
    return value === undefined || value === null ? undefined : Number(value);
  };
  const before = new Map<string, number>();
  const select = of('SELECT')?.jobReference;
  if (select?.jobId) {
    const reading = `reading the counts of BigQuery job ${select.jobId}`;
    const rows = await read(
      ctx,
      async () => {
        const child = ctx.client.job(select.jobId as string, {
          location: select.location ?? undefined,
        });
        const [result] = await child.getQueryResults({ autoPaginate: false });
        return result as { _source_uri?: unknown; n?: unknown }[];
      },
      reading,
      where,
    );
    for (const row of rows) before.set(String(row._source_uri), Number(row.n));
  }
  return {
    before,
    inserted: dml('INSERT', 'insertedRowCount'),
    deleted: dml('DELETE', 'deletedRowCount'),
  };
}

/** URI → the newest generation the table holds of it, for the sources it holds newer ones of. */
export async function newerGenerations(
  ctx: BigQueryContext,
  job: Pick<LoadJob, 'destination' | 'location' | 'deadline'>,
  sources: Pick<LineageSource, 'uri' | 'generation'>[],
): Promise<Record<string, string>> {
  const { project = ctx.defaultProject, dataset, table } = job.destination;
  const reference = { projectId: project, datasetId: dataset, tableId: table };
  const query = newestQuery(
    reference,
    sources.map((s) => ({ ...s, stage: reference })),
  );
  const what = `reading the newest generations in ${project}.${dataset}.${table}`;
  const rows = await read(
    ctx,
    async () => {
      const [result] = await ctx.client.query({ query, location: job.location });
      return result as { _source_uri?: unknown; generation?: unknown }[];
    },
    what,
    job,
  );
  const newer: Record<string, string> = {};
  for (const row of rows) {
    const uri = String(row._source_uri);
    const own = sources.find((s) => s.uri === uri);
    if (own && BigInt(String(row.generation)) > BigInt(own.generation))
      newer[uri] = String(row.generation);
  }
  return newer;
}

async function read<T>(
  ctx: BigQueryContext,
  work: () => Promise<T>,
  what: string,
  where: Where,
): Promise<T> {
  try {
    return await ctx.call(work(), what, where.deadline);
  } catch (error) {
    if (error instanceof TransientError) throw error;
    throw toWarehouseError(error, what);
  }
}
