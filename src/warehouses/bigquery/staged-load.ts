import type bigquery from '@google-cloud/bigquery/build/src/types';
import { createHash } from 'node:crypto';
import type { GroupsPlan, TableColumn } from '../../schema/columns';
import type { Destination, LoadJob } from '../warehouse';

type JobResource = bigquery.IJob;

/*
 * Files whose headers differ never share a load job: the REST reference says only that
 * `sourceColumnMatch: NAME` "reads the header row as column names and reorders columns to match the
 * field names in the schema" (https://cloud.google.com/bigquery/docs/reference/rest/v2/Job,
 * JobConfigurationLoad.sourceColumnMatch), not that each file's own header row is read. A day made
 * of such files is loaded one load job per header into a staging table, then written in one step by
 * a copy job with WRITE_TRUNCATE into `table$YYYYMMDD` ("Copy partitions",
 * https://cloud.google.com/bigquery/docs/managing-partitioned-table-data; a copy job's write is "one
 * atomic update upon job completion", JobConfigurationTableCopy.writeDisposition). A copy job cannot
 * change a schema, so the columns the files add are added to the table first with tables.patch
 * (https://cloud.google.com/bigquery/docs/managing-table-schemas: adding columns, relaxing REQUIRED
 * to NULLABLE). A trial (`job.trial`) stops after the staging loads and deletes the staging table.
 */

/** The BigQuery calls a staged load makes, bound to one client. */
export interface StagingCalls {
  /** Inserts a job (a 409 finds the existing one) and awaits it: the job, and whether it existed. */
  run(
    configuration: bigquery.IJobConfiguration,
    jobId: string,
  ): Promise<{ job: JobResource; existing: boolean } | { refused: string }>;
  /** The job, awaited, or undefined when it was never inserted. */
  find(jobId: string): Promise<JobResource | undefined>;
  createTable(destination: Destination, columns: TableColumn[], job: LoadJob): Promise<void>;
  patchSchema(destination: Destination, columns: TableColumn[]): Promise<void>;
  deleteTable(destination: Destination): Promise<void>;
  /** The load configuration of `job` with this plan (load-config.ts's toLoadConfiguration). */
  loadConfiguration(job: LoadJob, plan: GroupsPlan | 'fromFile'): bigquery.IJobConfiguration;
  project: string;
}

/** What a staged load came to: the last job it ran (the copy, or the failed step), with the rows. */
export interface Staged {
  job: JobResource;
  jobId: string;
  existing: boolean;
  rows: number;
}

export async function loadStaged(
  job: LoadJob,
  jobId: string,
  plan: GroupsPlan | 'fromFile',
  tableExists: boolean,
  calls: StagingCalls,
): Promise<Staged | { refused: string }> {
  // A copy that already ran (a redelivery) needs no staging again.
  const copied = job.trial ? undefined : await calls.find(jobId);
  if (copied) return { job: copied, jobId, existing: true, rows: copiedRows(copied) };
  const stage: Destination = {
    project: job.destination.project ?? calls.project,
    dataset: job.destination.dataset,
    table: `_ingest_stage_${createHash('sha256').update(jobId).digest('hex').slice(0, 40)}`,
  };
  const groups =
    plan === 'fromFile' ? [{ indexes: job.sources.map((_, i) => i), into: [] }] : plan.groups;
  let rows = 0;
  for (const [i, group] of groups.entries()) {
    const part: LoadJob = {
      ...job,
      sources: group.indexes.map((index) => job.sources[index] as LoadJob['sources'][number]),
      destination: stage,
      write: i === 0 ? 'replace' : 'append',
      createDisposition: 'CREATE_IF_NEEDED',
      timePartitioning: undefined,
      clustering: undefined,
    };
    // Every group loads with the whole table's columns: what its file lacks is NULL.
    const staged = plan === 'fromFile' ? plan : { ...plan, added: [], relaxed: [] };
    const ran = await calls.run(calls.loadConfiguration(part, staged), `${jobId}_g${i + 1}`);
    if ('refused' in ran) return ran;
    if (ran.job.status?.errorResult) return { ...ran, jobId: `${jobId}_g${i + 1}`, rows };
    rows += Number(ran.job.statistics?.load?.outputRows ?? 0);
  }
  if (job.trial || plan === 'fromFile') {
    await calls.deleteTable(stage);
    const done: JobResource = { status: { state: 'DONE' }, statistics: {} };
    return { job: done, jobId, existing: false, rows };
  }
  if (!tableExists) await calls.createTable(job.destination, plan.table, job);
  else if (plan.added.length > 0 || plan.relaxed.length > 0)
    await calls.patchSchema(job.destination, plan.table);
  const copy = await calls.run(copyConfiguration(job, stage, calls.project), jobId);
  if ('refused' in copy) return copy;
  if (!copy.job.status?.errorResult) await calls.deleteTable(stage);
  return { ...copy, jobId, rows };
}

function copyConfiguration(
  job: LoadJob,
  stage: Destination,
  project: string,
): bigquery.IJobConfiguration {
  return {
    copy: {
      sourceTables: [tableReference(stage, project)],
      destinationTable: tableReference(job.destination, project),
      writeDisposition: job.write === 'append' ? 'WRITE_APPEND' : 'WRITE_TRUNCATE',
      createDisposition: 'CREATE_NEVER',
    },
    labels: { ...job.labels },
  };
}

/** The table a job writes: `table$YYYYMMDD` for a partition. */
export function tableReference(
  destination: Destination,
  project: string,
): bigquery.ITableReference {
  return {
    projectId: destination.project ?? project,
    datasetId: destination.dataset,
    tableId: destination.partition
      ? `${destination.table}$${destination.partition}`
      : destination.table,
  };
}

/** The rows a copy job wrote (JobStatistics5.copiedRows, an int64 string). */
function copiedRows(job: JobResource): number {
  return Number(job.statistics?.copy?.copiedRows ?? 0);
}
