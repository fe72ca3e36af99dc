import type bigquery from '@google-cloud/bigquery/build/src/types';
import { createHash } from 'node:crypto';
import { TransientError } from '../../core/errors';
import { httpStatusOf } from '../../core/google-errors';
import { isLineageColumn, type GroupsPlan, type TableColumn } from '../../schema/columns';
import { gsUri, type StoredObject } from '../../stores/store';
import type { BadRecords, Destination, LoadJob, LoadResult } from '../warehouse';
import type { BigQueryContext } from './context';
import { toWarehouseError } from './errors';
import { describe, toResult } from './job-results';
import { attemptId } from './jobs';
import { toFieldSchema } from './load-config';
import type { LineageSource } from './lineage-sql';
import { originalUri, sourceUri } from './source-uris';
import { stagingCalls } from './staged-calls';
import { tableReference } from './staged-load';

/*
 * A lineage job's first step: each source loaded alone, by its own load job, into its own staging table
 * in the destination's dataset, with the columns the job's plan gives the table (lineage columns aside):
 * a load job cannot write the object a row came from, and each such job's statistics count that
 * source's rows (JobStatistics3.outputRows, badRecords). The staging table is created first by
 * tables.insert with `expirationTime` ("Table.expirationTime": an expired table is deleted), so that a
 * crash leaves nothing behind for long; the load's `destinationTableProperties.expirationTime` is
 * "Internal use only" in the REST reference, so it is not used. The load writes with
 * WRITE_TRUNCATE_DATA and CREATE_NEVER: the table keeps the schema and expiration it was created with.
 * Job ids are `<job>_src<i>` (then `_2`, `_3`, … after a transient failure), so a redelivery finds each
 * load instead of loading again.
 */

/** How long a staging table lives if the job never gets to delete it. */
const STAGING_TTL_MS = 24 * 3_600_000;
/** Loads found that wrote a staging table since gone, skipped before giving up. */
const MAX_STALE = 20;
/** Staging loads in flight at once for one job. */
const PARALLEL_STAGES = 8;

export interface StagedSource extends LineageSource {
  rows: number;
  badRecords?: BadRecords;
  inputBytes: number;
}

/** The staging table of a job's source `index` (`all`: the whole job's rows, for a copy). */
export function stageDestination(
  job: LoadJob,
  project: string,
  index: number | 'all',
): Destination {
  const hash = createHash('sha256').update(job.jobId).digest('hex').slice(0, 40);
  return {
    project: job.destination.project ?? project,
    dataset: job.destination.dataset,
    table: `_ingest_stage_${hash}_${index}`,
  };
}

/** The table's data columns in the plan: what a staging table holds, in table order. */
export function dataColumns(plan: GroupsPlan): TableColumn[] {
  return plan.table.filter((column) => !isLineageColumn(column.name));
}

/**
 * Creates a table that deletes itself after a day; one already there is kept. When it created the
 * table: its creation time (epoch ms).
 */
export async function createExpiring(
  ctx: BigQueryContext,
  job: LoadJob,
  destination: Destination,
  columns: TableColumn[],
  extra: bigquery.ITable = {},
): Promise<number | undefined> {
  const what = `creating staging table ${destination.table}`;
  const metadata: bigquery.ITable = {
    ...extra,
    schema: { fields: columns.map(toFieldSchema) },
    expirationTime: String(Date.now() + STAGING_TTL_MS),
  };
  const table = ctx.client
    .dataset(destination.dataset, { projectId: destination.project ?? ctx.defaultProject })
    .table(destination.table);
  try {
    const [, created] = await ctx.call(table.create(metadata), what, job.deadline);
    return Number((created as bigquery.ITable | undefined)?.creationTime ?? Date.now());
  } catch (error) {
    if (httpStatusOf(error) === 409) return undefined; // an earlier delivery created it
    if (error instanceof TransientError) throw error;
    throw toWarehouseError(error, what);
  }
}

/** Loads every source into its staging table: what each holds, or why one cannot load. */
export async function stageSources(
  ctx: BigQueryContext,
  job: LoadJob,
  plan: GroupsPlan,
): Promise<StagedSource[] | { rejected: string }> {
  const out: (StagedSource | { rejected: string })[] = [];
  let next = 0;
  const worker = async () => {
    while (next < job.sources.length) {
      const index = next++;
      out[index] = await stageSource(ctx, job, plan, index);
    }
  };
  const workers = Math.min(PARALLEL_STAGES, job.sources.length);
  await Promise.all(Array.from({ length: workers }, worker));
  const refused = out.find((s): s is { rejected: string } => 'rejected' in s);
  return refused ?? (out as StagedSource[]);
}

async function stageSource(
  ctx: BigQueryContext,
  job: LoadJob,
  plan: GroupsPlan,
  index: number,
): Promise<StagedSource | { rejected: string }> {
  const source = job.sources[index] as StoredObject;
  const stage = stageDestination(job, ctx.defaultProject, index);
  const columns = dataColumns(plan);
  const created = await createExpiring(ctx, job, stage, columns);
  const calls = stagingCalls(ctx, job);
  const part: LoadJob = {
    ...job,
    sources: [source],
    destination: stage,
    write: 'truncate',
    createDisposition: 'CREATE_NEVER',
    timePartitioning: undefined,
    clustering: undefined,
  };
  const configuration = calls.loadConfiguration(part, {
    ...plan,
    table: columns,
    added: [],
    relaxed: [],
  });
  let last = '';
  let stale = 0;
  for (let attempt = 1; attempt <= ctx.maxAttempts + stale; attempt++) {
    const jobId = attemptId(`${job.jobId}_src${index}`, attempt);
    const ran = await calls.run(configuration, jobId);
    if ('refused' in ran) return { rejected: naming(ran.refused, source, ctx) };
    // A load that ran before this table was created loaded into one that is gone (expired): its
    // rows must be loaded again, under the next id.
    if (ran.existing && created !== undefined && createdBefore(ran.job, created)) {
      if (++stale > MAX_STALE) break;
      continue;
    }
    const result = toResult(ran.job, jobId, false);
    if (result?.outcome === 'rejected') return { rejected: naming(result.reason, source, ctx) };
    if (result?.outcome === 'loaded') {
      const staged: StagedSource = {
        uri: gsUri(source),
        generation: source.generation,
        stage: tableReference(stage, ctx.defaultProject),
        rows: result.rows,
        inputBytes: Number(ran.job.statistics?.load?.inputFileBytes ?? 0),
      };
      return result.badRecords ? { ...staged, badRecords: result.badRecords } : staged;
    }
    last = describe(ran.job.status?.errorResult);
    if (attempt < ctx.maxAttempts) await ctx.pause(ctx.retryDelayMs * 2 ** (attempt - 1));
  }
  throw new TransientError(
    `staging ${gsUri(source)} for job ${job.jobId} failed ${ctx.maxAttempts} times (last: ${last})`,
  );
}

function createdBefore(job: bigquery.IJob, ms: number): boolean {
  return Number(job.statistics?.creationTime ?? Infinity) < ms;
}

/** A reason that names its source, as the caller finds a job's bad member by its URI. */
function naming(reason: string, source: StoredObject, ctx: BigQueryContext): string {
  const loaded = sourceUri(source, ctx.stagingPrefix);
  const text = reason.split(loaded).join(originalUri(loaded, ctx.stagingPrefix));
  return text.includes(gsUri(source)) ? text : `${gsUri(source)}: ${text}`;
}

/**
 * Why the staged rows may not be the claimed generation's: a source whose object now has another
 * generation (objects.get) was overwritten before or while its load read it (a load job reads the
 * live object). One that is gone was read before it went. Undefined when each is still current.
 */
export async function changedSource(
  ctx: BigQueryContext,
  job: LoadJob,
): Promise<string | undefined> {
  for (const source of job.sources) {
    const what = `reading the generation of ${gsUri(source)}`;
    const file = ctx.storageClient().bucket(source.bucket).file(source.name);
    let current: string;
    try {
      const [metadata] = await ctx.call(file.getMetadata(), what, job.deadline);
      current = String(metadata.generation);
    } catch (error) {
      if (httpStatusOf(error) === 404) continue;
      if (error instanceof TransientError) throw error;
      throw toWarehouseError(error, what);
    }
    if (current !== source.generation) {
      return `${gsUri(source)}: generation ${source.generation} was overwritten by generation ${current} before its load job read it, whose own event loads it; nothing was written`;
    }
  }
  return undefined;
}

/** Deletes the job's staging tables; a failure only leaves them to their expiration. */
export async function dropStages(
  ctx: BigQueryContext,
  job: LoadJob,
  whole: boolean,
): Promise<void> {
  const stages: (number | 'all')[] = [...job.sources.keys(), ...(whole ? ['all' as const] : [])];
  await Promise.all(
    stages.map((index) =>
      stagingCalls(ctx, job)
        .deleteTable(stageDestination(job, ctx.defaultProject, index))
        .catch(() => undefined),
    ),
  );
}

/** What the staged sources come to once written under `jobId`. */
export function stagedResult(
  jobId: string,
  staged: StagedSource[],
): Extract<LoadResult, { outcome: 'loaded' }> {
  const loaded: Extract<LoadResult, { outcome: 'loaded' }> = {
    outcome: 'loaded',
    jobId,
    rows: stagedRows(staged),
    inputBytes: staged.reduce((n, s) => n + s.inputBytes, 0),
  };
  if (staged.length > 1) loaded.sourceRows = staged.map((s) => s.rows);
  const bad = staged.filter((s) => s.badRecords && s.badRecords.count > 0);
  if (bad.length > 0) {
    const count = bad.reduce((n, s) => n + (s.badRecords?.count ?? 0), 0);
    loaded.badRecords = { count, first: `${bad[0]?.uri}: ${bad[0]?.badRecords?.first}` };
  }
  return loaded;
}

export function stagedRows(staged: StagedSource[]): number {
  return staged.reduce((n, s) => n + s.rows, 0);
}
