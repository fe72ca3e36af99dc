import type bigquery from '@google-cloud/bigquery/build/src/types';
import type { ColumnPlan, TableColumn } from '../../schema/columns';
import type { SchemaField } from '../../config';
import type { LoadJob } from '../warehouse';
import { sourceUri } from './source-uris';
import { tableReference } from './staged-load';

export const DEFAULT_STAGING_PREFIX = '_quarantine/';

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
export function toTimePartitioning(job: LoadJob): bigquery.ITimePartitioning | undefined {
  const partitioning: LoadJob['timePartitioning'] =
    job.timePartitioning ?? (job.write === 'partition' ? { type: 'DAY' } : undefined);
  if (!partitioning) return undefined;
  const out: bigquery.ITimePartitioning = { type: partitioning.type };
  if (partitioning.field) out.field = partitioning.field;
  // int64 fields travel as JSON strings.
  if (partitioning.expirationMs !== undefined) out.expirationMs = String(partitioning.expirationMs);
  return out;
}

export function toFieldSchema(field: SchemaField | TableColumn): bigquery.ITableFieldSchema {
  const out: bigquery.ITableFieldSchema = { name: field.name, type: field.type };
  if (field.mode) out.mode = field.mode;
  if (field.description) out.description = field.description;
  return out;
}
