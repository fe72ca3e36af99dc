import { BigQuery, type BigQueryOptions } from '@google-cloud/bigquery';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import {
  applyFault,
  closeServer,
  isRecord,
  readBody,
  record,
  sendJson,
  sizeOf,
  type Fault,
  type GcsServer,
  type RecordedRequest,
  type VirtualContent,
} from './gcs-server';
import { parseScript, type Statement } from './bigquery-sql';
import { runScript, type ScriptRun, type StatementRun } from './bigquery-script';

/**
 * A BigQuery REST v2 test server: jobs.insert / jobs.get for load, copy and query jobs (a query job
 * runs the statement forms of bigquery-sql.ts against the rows kept here, a script's statements as
 * child jobs listed by jobs.list with `parentJobId`, a SELECT's rows read by jobs.getQueryResults), and
 * the datasets and tables calls that list row counts. Every jobs.insert body is checked against the field names and JSON
 * types of the REST reference (Job, JobConfiguration, JobConfigurationLoad, TableReference,
 * TableSchema, TimePartitioning, Clustering), answering 400 as BigQuery does for an unknown name or a
 * wrong type. Load jobs read their CSV from the GCS test server's memory, count rows (skipping
 * `skipLeadingRows`), check values against the schema and keep row counts per table and partition.
 */

export interface ErrorProto {
  reason?: string;
  message?: string;
  location?: string;
}

/** What one job does instead of (or on top of) the simulated load. */
export interface JobScript {
  /** Time from insert to DONE; default the server's `jobDurationMs`. Infinity: until `finish()`. */
  durationMs?: number;
  /** The job ends DONE with this errorResult (and `errors`, default `[errorResult]`); nothing is written. */
  errorResult?: ErrorProto;
  errors?: ErrorProto[];
}

export interface Field {
  name: string;
  type: string;
  mode?: string;
}

/** A row as loaded: each column's value as its CSV text, null when absent or null. */
export type Row = Record<string, string | null>;

export interface TableState {
  schema?: Field[];
  /** Rows per partition; '' for rows written without a partition decorator. */
  partitions: Map<string, number>;
  /** The rows loaded from real (not virtual) content, per partition. */
  rows: Map<string, Row[]>;
  /** Table.expirationTime as tables.insert set it (epoch ms, an int64 string). */
  expirationTime?: string;
}

export interface BigQueryServerOptions {
  /** Where load jobs read `gs://` URIs from. */
  gcs: GcsServer;
  /** Default time from insert to DONE; 0 answers the insert with a DONE job. */
  jobDurationMs?: number;
  /** Load jobs into a dataset that does not exist create it (real BigQuery answers notFound). */
  autoCreateDatasets?: boolean;
  /**
   * BigQuery's load jobs per table per day (1,500; failed jobs count too) over a rolling `dayMs`: a job
   * over it ends with errorResult quotaExceeded at `load_job_per_table.long`. Unset: no limit.
   */
  loadJobsPerTable?: { limit: number; dayMs: number };
  /**
   * BigQuery's short-term limit on table metadata updates (5 per 10 s, a load job being one): a job
   * that makes more than `limit` within `windowMs` ends with errorResult rateLimitExceeded, "Exceeded
   * rate limits: too many table update operations for this table". Unset: no limit.
   */
  tableUpdateRate?: { limit: number; windowMs: number };
  /** jobs.query answers `jobComplete: false`, so that the client fetches rows with getQueryResults. */
  slowQueries?: boolean;
}

export interface BigQueryServer {
  /** `http://127.0.0.1:PORT`, for BIGQUERY_EMULATOR_HOST or `apiEndpoint`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** The bodies of jobs.insert requests, in order. */
  inserts(): JobBody[];
  /** The job resource as jobs.get would answer now. */
  job(projectId: string, jobId: string): Record<string, unknown> | undefined;
  script(jobId: string, script: JobScript): void;
  /** Ends a running job now. */
  finish(projectId: string, jobId: string): void;
  /**
   * The next query job that mutates a table fails at COMMIT, rolled back, as when a concurrent
   * transaction updated the table ("Transaction is aborted due to concurrent update …").
   */
  abortNextTransaction(times?: number): void;
  createDataset(projectId: string, datasetId: string): void;
  createTable(
    projectId: string,
    datasetId: string,
    tableId: string,
    schema?: TableState['schema'],
  ): void;
  table(projectId: string, datasetId: string, tableId: string): TableState | undefined;
  /** Load jobs inserted for a table (failed ones included), as its quota counts them. */
  jobsFor(projectId: string, datasetId: string, tableId: string): number;
  /** Rows in a table (all partitions), or undefined when it does not exist. */
  rows(projectId: string, datasetId: string, tableId: string): number | undefined;
  count(match?: (request: RecordedRequest) => boolean): number;
  fail(fault: Fault): void;
  clearFaults(): void;
  resetCounters(): void;
  close(): Promise<void>;
}

export interface JobBody {
  jobReference?: { projectId?: string; jobId?: string; location?: string };
  configuration?: {
    load?: Record<string, unknown>;
    copy?: CopyConfiguration;
    query?: { query?: string; useLegacySql?: boolean };
    labels?: Record<string, string>;
  };
}

interface TableRef {
  projectId?: string;
  datasetId: string;
  tableId: string;
}

/** JobConfigurationTableCopy, as far as the service uses it. */
interface CopyConfiguration {
  sourceTables?: TableRef[];
  destinationTable?: TableRef;
  writeDisposition?: string;
  createDisposition?: string;
}

export const isInsert = (r: RecordedRequest) =>
  r.method === 'POST' && /^\/projects\/[^/]+\/jobs$/.test(r.path);
export const isJobGet = (r: RecordedRequest) =>
  r.method === 'GET' && /^\/projects\/[^/]+\/jobs\/[^/]+$/.test(r.path);

// ---- The REST reference, as field name -> JSON type ----
// From https://cloud.google.com/bigquery/docs/reference/rest/v2/Job (JobConfigurationLoad and the
// types it uses); the same names and types as `bigquery.IJobConfigurationLoad` in the client's
// types.d.ts, which a test compares with this table. int64 fields are JSON strings there; this server
// insists on strings (BigQuery also accepts numbers), matching the client's types.

type Spec =
  | 'string'
  | 'boolean'
  | 'int32'
  | 'int64'
  | 'double'
  | 'any'
  | { enum: readonly string[] }
  | { array: Spec }
  | { map: Spec }
  | { object: () => Record<string, Spec> };

const obj = (fields: () => Record<string, Spec>): Spec => ({ object: fields });
const arr = (spec: Spec): Spec => ({ array: spec });
const oneOf = (...values: string[]): Spec => ({ enum: values });

const TABLE_REFERENCE = obj(() => ({
  projectId: 'string',
  datasetId: 'string',
  tableId: 'string',
}));
// prettier-ignore
const FIELD_TYPES = oneOf(
  'STRING', 'BYTES', 'INTEGER', 'INT64', 'FLOAT', 'FLOAT64', 'NUMERIC', 'BIGNUMERIC', 'BOOLEAN', 'BOOL',
  'TIMESTAMP', 'DATE', 'TIME', 'DATETIME', 'INTERVAL', 'GEOGRAPHY', 'RECORD', 'STRUCT', 'JSON', 'RANGE',
);
const TABLE_FIELD_SCHEMA: Spec = obj(() => ({
  name: 'string',
  type: FIELD_TYPES,
  mode: oneOf('NULLABLE', 'REQUIRED', 'REPEATED'),
  fields: arr(TABLE_FIELD_SCHEMA),
  description: 'string',
  policyTags: obj(() => ({ names: arr('string') })),
  dataPolicies: arr('any'),
  maxLength: 'int64',
  precision: 'int64',
  scale: 'int64',
  timestampPrecision: 'int64',
  roundingMode: oneOf('ROUNDING_MODE_UNSPECIFIED', 'ROUND_HALF_AWAY_FROM_ZERO', 'ROUND_HALF_EVEN'),
  collation: 'string',
  defaultValueExpression: 'string',
  rangeElementType: obj(() => ({ type: 'string' })),
  foreignTypeDefinition: 'string',
  generatedColumn: 'any',
  categories: obj(() => ({ names: arr('string') })),
}));

export const LOAD_FIELDS: Record<string, Spec> = {
  allowJaggedRows: 'boolean',
  allowQuotedNewlines: 'boolean',
  autodetect: 'boolean',
  clustering: obj(() => ({ fields: arr('string') })),
  columnNameCharacterMap: oneOf('COLUMN_NAME_CHARACTER_MAP_UNSPECIFIED', 'STRICT', 'V1', 'V2'),
  connectionProperties: arr(obj(() => ({ key: 'string', value: 'string' }))),
  copyFilesOnly: 'boolean',
  createDisposition: oneOf('CREATE_IF_NEEDED', 'CREATE_NEVER'),
  createSession: 'boolean',
  dateFormat: 'string',
  datetimeFormat: 'string',
  decimalTargetTypes: arr(
    oneOf('DECIMAL_TARGET_TYPE_UNSPECIFIED', 'NUMERIC', 'BIGNUMERIC', 'STRING'),
  ),
  destinationEncryptionConfiguration: obj(() => ({ kmsKeyName: 'string' })),
  destinationTable: TABLE_REFERENCE,
  destinationTableProperties: obj(() => ({
    description: 'string',
    expirationTime: 'int64',
    friendlyName: 'string',
    labels: { map: 'string' },
  })),
  encoding: oneOf('UTF-8', 'ISO-8859-1', 'UTF-16BE', 'UTF-16LE', 'UTF-32BE', 'UTF-32LE'),
  fieldDelimiter: 'string',
  fileSetSpecType: oneOf(
    'FILE_SET_SPEC_TYPE_FILE_SYSTEM_MATCH',
    'FILE_SET_SPEC_TYPE_NEW_LINE_DELIMITED_MANIFEST',
  ),
  hivePartitioningOptions: obj(() => ({
    fields: arr('string'),
    mode: 'string',
    requirePartitionFilter: 'boolean',
    sourceUriPrefix: 'string',
  })),
  ignoreUnknownValues: 'boolean',
  jsonExtension: oneOf('JSON_EXTENSION_UNSPECIFIED', 'GEOJSON'),
  maxBadRecords: 'int32',
  nullMarker: 'string',
  nullMarkers: arr('string'),
  parquetOptions: obj(() => ({
    enableListInference: 'boolean',
    enumAsString: 'boolean',
    mapTargetType: oneOf('MAP_TARGET_TYPE_UNSPECIFIED', 'ARRAY_OF_STRUCT'),
  })),
  preserveAsciiControlCharacters: 'boolean',
  projectionFields: arr('string'),
  quote: 'string',
  rangePartitioning: obj(() => ({
    field: 'string',
    range: obj(() => ({ start: 'int64', end: 'int64', interval: 'int64' })),
  })),
  referenceFileSchemaUri: 'string',
  schema: obj(() => ({ fields: arr(TABLE_FIELD_SCHEMA), foreignTypeInfo: 'any' })),
  schemaInline: 'string',
  schemaInlineFormat: 'string',
  schemaUpdateOptions: arr(oneOf('ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION')),
  skipLeadingRows: 'int32',
  sourceColumnMatch: oneOf('SOURCE_COLUMN_MATCH_UNSPECIFIED', 'POSITION', 'NAME'),
  sourceFormat: oneOf(
    'CSV',
    'NEWLINE_DELIMITED_JSON',
    'AVRO',
    'PARQUET',
    'ORC',
    'DATASTORE_BACKUP',
    'ICEBERG',
  ),
  sourceUris: arr('string'),
  timeFormat: 'string',
  timePartitioning: obj(() => ({
    type: oneOf('DAY', 'HOUR', 'MONTH', 'YEAR'),
    expirationMs: 'int64',
    field: 'string',
    requirePartitionFilter: 'boolean',
  })),
  timeZone: 'string',
  timestampFormat: 'string',
  timestampTargetPrecision: arr('int32'),
  useAvroLogicalTypes: 'boolean',
  writeDisposition: oneOf('WRITE_TRUNCATE', 'WRITE_TRUNCATE_DATA', 'WRITE_APPEND', 'WRITE_EMPTY'),
};

// JobConfigurationQuery (REST reference), the names and JSON types of `bigquery.IJobConfigurationQuery`.
export const QUERY_FIELDS: Record<string, Spec> = {
  allowLargeResults: 'boolean',
  clustering: obj(() => ({ fields: arr('string') })),
  connectionProperties: arr(obj(() => ({ key: 'string', value: 'string' }))),
  continuous: 'boolean',
  createDisposition: oneOf('CREATE_IF_NEEDED', 'CREATE_NEVER'),
  createSession: 'boolean',
  defaultDataset: obj(() => ({ projectId: 'string', datasetId: 'string' })),
  destinationEncryptionConfiguration: obj(() => ({ kmsKeyName: 'string' })),
  destinationTable: TABLE_REFERENCE,
  flattenResults: 'boolean',
  maximumBillingTier: 'int32',
  maximumBytesBilled: 'int64',
  parameterMode: 'string',
  preserveNulls: 'boolean',
  priority: oneOf('INTERACTIVE', 'BATCH'),
  query: 'string',
  queryParameters: arr('any'),
  rangePartitioning: 'any',
  schemaUpdateOptions: arr(oneOf('ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION')),
  scriptOptions: 'any',
  systemVariables: 'any',
  tableDefinitions: 'any',
  timePartitioning: 'any',
  useLegacySql: 'boolean',
  useQueryCache: 'boolean',
  userDefinedFunctionResources: arr('any'),
  writeDisposition: oneOf('WRITE_TRUNCATE', 'WRITE_TRUNCATE_DATA', 'WRITE_APPEND', 'WRITE_EMPTY'),
  writeIncrementalResults: 'boolean',
};

const JOB_CONFIGURATION: Record<string, Spec> = {
  copy: 'any',
  dryRun: 'boolean',
  extract: 'any',
  jobTimeoutMs: 'int64',
  jobType: 'string',
  labels: { map: 'string' },
  load: { object: () => LOAD_FIELDS },
  maxSlots: 'int32',
  query: { object: () => QUERY_FIELDS },
  reservation: 'string',
};

const JOB: Record<string, Spec> = {
  configuration: { object: () => JOB_CONFIGURATION },
  jobReference: obj(() => ({ projectId: 'string', jobId: 'string', location: 'string' })),
  // Output-only fields: accepted and ignored.
  etag: 'any',
  id: 'any',
  kind: 'any',
  selfLink: 'any',
  statistics: 'any',
  status: 'any',
  user_email: 'any',
  principal_subject: 'any',
  jobCreationReason: 'any',
};

/** The first way `value` breaks the spec, as BigQuery words it; undefined when it fits. */
export function checkAgainstSpec(
  value: unknown,
  fields: Record<string, Spec>,
  path: string,
): string | undefined {
  if (!isRecord(value)) return `Invalid value at '${path}', expected an object`;
  for (const [key, item] of Object.entries(value)) {
    const spec = fields[key];
    if (spec === undefined)
      return `Invalid JSON payload received. Unknown name "${key}" at '${path}': Cannot find field.`;
    const problem = checkValue(item, spec, `${path}.${key}`);
    if (problem) return problem;
  }
  return undefined;
}

function checkValue(value: unknown, spec: Spec, path: string): string | undefined {
  const bad = (expected: string) =>
    `Invalid value at '${path}' (${expected}), ${JSON.stringify(value)}`;
  if (value === null) return undefined;
  if (spec === 'any') return undefined;
  if (spec === 'string') return typeof value === 'string' ? undefined : bad('TYPE_STRING');
  if (spec === 'boolean') return typeof value === 'boolean' ? undefined : bad('TYPE_BOOL');
  if (spec === 'double') return typeof value === 'number' ? undefined : bad('TYPE_DOUBLE');
  if (spec === 'int32') {
    return typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < 2 ** 31
      ? undefined
      : bad('TYPE_INT32');
  }
  if (spec === 'int64')
    return typeof value === 'string' && /^-?\d+$/.test(value) ? undefined : bad('TYPE_INT64');
  if ('enum' in spec) {
    return typeof value === 'string' && spec.enum.includes(value)
      ? undefined
      : bad(`one of ${spec.enum.join(', ')}`);
  }
  if ('array' in spec) {
    if (!Array.isArray(value)) return bad('a list');
    for (const [i, item] of value.entries()) {
      const problem = checkValue(item, spec.array, `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if ('map' in spec) {
    if (!isRecord(value)) return bad('a map');
    for (const [k, item] of Object.entries(value)) {
      const problem = checkValue(item, spec.map, `${path}[${JSON.stringify(k)}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  return checkAgainstSpec(value, spec.object(), path);
}

// Semantic checks BigQuery makes on a load job (REST reference and the labels requirements).
const JOB_ID = /^[A-Za-z0-9_-]{1,1024}$/;
const DATASET_ID = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd}\p{Zs}]{1,1024}(\$\d{4,10})?$/u;
const LABEL_KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

function checkLoadSemantics(body: JobBody): string | undefined {
  const jobId = body.jobReference?.jobId;
  if (jobId !== undefined && !JOB_ID.test(jobId)) return `Invalid job ID "${jobId}".`;
  for (const [key, value] of Object.entries(body.configuration?.labels ?? {})) {
    if (!LABEL_KEY.test(key)) return `Label key "${key}" has invalid characters.`;
    if (!LABEL_VALUE.test(value)) return `Label value "${value}" has invalid characters.`;
  }
  const query = body.configuration?.query;
  if (query && !body.configuration?.load && !copy_(body)) {
    if (typeof query.query !== 'string') return 'Required parameter is missing: query';
    // The client sends no useLegacySql; BigQuery's REST default is legacy SQL, which these forms are not.
    if (query.useLegacySql !== false) return 'test server: query jobs must set useLegacySql: false';
    return undefined;
  }
  const copy = body.configuration?.copy;
  if (copy && !body.configuration?.load) {
    if (!copy.sourceTables?.length || !copy.destinationTable)
      return 'Copy configuration must specify sourceTables and destinationTable';
    return undefined;
  }
  const load = body.configuration?.load;
  if (!load)
    return 'Job configuration must contain exactly one job-specific configuration object (e.g., query, load, extract, spreadsheetExtract), but there were 0.';
  const uris = load.sourceUris;
  if (!Array.isArray(uris) || uris.length === 0)
    return 'Load configuration must specify at least one source URI';
  const notGs = uris.find((u) => typeof u !== 'string' || !u.startsWith('gs://'));
  if (notGs !== undefined)
    return `Source URI must be a Google Cloud Storage location: ${String(notGs)}`;
  const table = load.destinationTable;
  if (!isRecord(table) || !table.projectId || !table.datasetId || !table.tableId) {
    return 'Required parameter is missing: destinationTable (projectId, datasetId and tableId)';
  }
  if (!DATASET_ID.test(String(table.datasetId)))
    return `Invalid dataset ID "${String(table.datasetId)}".`;
  if (!TABLE_ID.test(String(table.tableId))) return `Invalid table ID "${String(table.tableId)}".`;
  const quote = load.quote;
  if (typeof quote === 'string' && quote.length > 1)
    return `Invalid value for quote: "${quote}" must be one character`;
  return undefined;
}

const copy_ = (body: JobBody) => body.configuration?.copy !== undefined;

// ---- Jobs ----

interface JobState {
  body: JobBody;
  projectId: string;
  jobId: string;
  location: string;
  created: number;
  doneAt: number;
  script?: JobScript;
  result?: {
    errorResult?: ErrorProto;
    errors?: ErrorProto[];
    load?: LoadStatistics;
    query?: ScriptRun;
  };
  /** A statement of a script: its parent's id, and what the statement did. */
  child?: { parentJobId: string; run: StatementRun };
  /** A query job's statements, parsed at insert. */
  statements?: Statement[];
}

interface LoadStatistics {
  inputFiles: number;
  inputFileBytes: number;
  outputRows: number;
  badRecords: number;
}

export async function startBigQueryServer(options: BigQueryServerOptions): Promise<BigQueryServer> {
  const { gcs } = options;
  const defaultDuration = options.jobDurationMs ?? 0;
  const autoCreateDatasets = options.autoCreateDatasets ?? true;
  const jobs = new Map<string, JobState>();
  const scripts = new Map<string, JobScript>();
  const tableJobs = new Map<string, number[]>();
  const datasets = new Map<string, Map<string, TableState>>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  let aborts = 0;
  let url = '';

  const datasetKey = (projectId: string, datasetId: string) => `${projectId}:${datasetId}`;
  const jobKey = (projectId: string, jobId: string) => `${projectId}:${jobId}`;

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendBqError(res, 500, 'internalError', `test server: ${String(error)}`);
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const r = record(req, raw, /^\/bigquery\/v2(?=\/)/);
    requests.push(r);
    if (await applyFault(faults, r, res, sendBqError)) return;
    let m: RegExpExecArray | null;
    if ((m = /^\/projects\/([^/]+)\/jobs$/.exec(r.path)) && r.method === 'POST')
      return insertJob(m[1] ?? '', r, res);
    if ((m = /^\/projects\/([^/]+)\/jobs$/.exec(r.path)) && r.method === 'GET')
      return listJobs(m[1] ?? '', r, res);
    if ((m = /^\/projects\/([^/]+)\/jobs\/([^/]+)$/.exec(r.path)) && r.method === 'GET') {
      return getJob(m[1] ?? '', m[2] ?? '', r, res);
    }
    if ((m = /^\/projects\/([^/]+)\/queries$/.exec(r.path)) && r.method === 'POST')
      return runQuery(m[1] ?? '', r, res);
    if ((m = /^\/projects\/([^/]+)\/queries\/([^/]+)$/.exec(r.path)) && r.method === 'GET')
      return getQueryResults(m[1] ?? '', m[2] ?? '', res);
    if ((m = /^\/projects\/([^/]+)\/datasets$/.exec(r.path)) && r.method === 'GET')
      return listDatasets(m[1] ?? '', res);
    if (
      (m = /^\/projects\/([^/]+)\/datasets\/([^/]+)\/tables$/.exec(r.path)) &&
      r.method === 'GET'
    ) {
      return listTables(m[1] ?? '', m[2] ?? '', res);
    }
    if (
      (m = /^\/projects\/([^/]+)\/datasets\/([^/]+)\/tables\/([^/]+)$/.exec(r.path)) &&
      r.method === 'GET'
    ) {
      return getTable(m[1] ?? '', m[2] ?? '', m[3] ?? '', res);
    }
    if (
      (m = /^\/projects\/([^/]+)\/datasets\/([^/]+)\/tables(?:\/([^/]+))?$/.exec(r.path)) &&
      ['POST', 'PATCH', 'PUT', 'DELETE'].includes(r.method)
    ) {
      return changeTable(r, [m[1] ?? '', m[2] ?? '', decodeURIComponent(m[3] ?? '')], res);
    }
    sendBqError(res, 404, 'notFound', `test server: no route for ${r.method} ${r.path}`);
  }

  function insertJob(projectId: string, r: RecordedRequest, res: http.ServerResponse): void {
    const problem = checkAgainstSpec(r.body, JOB, 'job') ?? checkLoadSemantics(r.body as JobBody);
    if (problem) return sendBqError(res, 400, 'invalid', problem, 'INVALID_ARGUMENT');
    const body = r.body as JobBody;
    const text = body.configuration?.query?.query;
    const statements = text === undefined ? undefined : parseScript(text);
    if (statements && 'error' in statements)
      return sendBqError(res, 400, 'invalidQuery', statements.error, 'INVALID_ARGUMENT');
    const jobId = body.jobReference?.jobId ?? `job_${jobs.size + 1}`;
    const location = body.jobReference?.location ?? 'US';
    const key = jobKey(projectId, jobId);
    if (jobs.has(key)) {
      const message = `Already Exists: Job ${projectId}:${location}.${jobId}`;
      return sendBqError(res, 409, 'duplicate', message, 'ALREADY_EXISTS');
    }
    const now = Date.now();
    const script = overQuota(projectId, body, now) ?? scripts.get(jobId);
    const state: JobState = {
      body,
      projectId,
      jobId,
      location,
      created: now,
      doneAt: now + (script?.durationMs ?? defaultDuration),
    };
    if (script) state.script = script;
    if (statements) state.statements = statements;
    jobs.set(key, state);
    sendJson(res, 200, resource(state));
  }

  /** jobs.list: only a script's child jobs (`parentJobId`), newest first as BigQuery lists them. */
  function listJobs(projectId: string, r: RecordedRequest, res: http.ServerResponse): void {
    const parent = r.query.parentJobId;
    if (parent === undefined)
      return sendBqError(res, 400, 'invalid', 'test server: jobs.list needs parentJobId');
    const parentState = jobs.get(jobKey(projectId, parent));
    if (parentState) resource(parentState); // finishes it when its time has come
    const children = [...jobs.values()]
      .filter((state) => state.projectId === projectId && state.child?.parentJobId === parent)
      .reverse()
      .map((state) => {
        const job = resource(state);
        return { ...job, state: (job.status as { state: string }).state };
      });
    sendJson(res, 200, { kind: 'bigquery#jobList', etag: 'etag', jobs: children });
  }

  /** Counts the job against its table's limits; the rateLimitExceeded or quotaExceeded script when over one. */
  function overQuota(projectId: string, body: JobBody, now: number): JobScript | undefined {
    const ref = body.configuration?.load?.destinationTable as
      { projectId?: string; datasetId: string; tableId: string } | undefined;
    if (!ref) return undefined;
    const key = `${ref.projectId ?? projectId}:${ref.datasetId}.${ref.tableId.split('$')[0]}`;
    const times = tableJobs.get(key) ?? [];
    tableJobs.set(key, times);
    times.push(now);
    const rate = options.tableUpdateRate;
    if (rate && times.filter((t) => t > now - rate.windowMs).length > rate.limit) {
      const message = 'Exceeded rate limits: too many table update operations for this table';
      return { durationMs: 0, errorResult: { reason: 'rateLimitExceeded', message } };
    }
    const quota = options.loadJobsPerTable;
    if (!quota) return undefined;
    const inWindow = times.filter((t) => t > now - quota.dayMs).length;
    if (inWindow <= quota.limit) return undefined;
    return {
      durationMs: 0,
      errorResult: {
        reason: 'quotaExceeded',
        location: 'load_job_per_table.long',
        message:
          'Quota exceeded: Your table exceeded quota for imports or query appends per table. ' +
          'For more information, see https://cloud.google.com/bigquery/docs/troubleshoot-quotas',
      },
    };
  }

  function getJob(
    projectId: string,
    jobId: string,
    r: RecordedRequest,
    res: http.ServerResponse,
  ): void {
    const state = jobs.get(jobKey(projectId, jobId));
    const location = r.query.location;
    if (
      !state ||
      (location !== undefined && location.toLowerCase() !== state.location.toLowerCase())
    ) {
      return sendBqError(
        res,
        404,
        'notFound',
        `Not found: Job ${projectId}:${location ?? 'US'}.${jobId}`,
        'NOT_FOUND',
      );
    }
    sendJson(res, 200, resource(state));
  }

  /** The job as BigQuery shows it now; a job past its time is finished (and its load applied) first. */
  function resource(state: JobState): Record<string, unknown> {
    if (!state.result && Date.now() >= state.doneAt) state.result = run(state);
    const { projectId, jobId, location } = state;
    const status: Record<string, unknown> = { state: state.result ? 'DONE' : 'RUNNING' };
    if (state.result?.errorResult) status.errorResult = state.result.errorResult;
    if (state.result?.errors?.length) status.errors = state.result.errors;
    const statistics: Record<string, unknown> = {
      creationTime: String(state.created),
      startTime: String(state.created),
    };
    if (state.child) {
      statistics.parentJobId = state.child.parentJobId;
      const { statementType, dmlStats } = state.child.run;
      statistics.query = dmlStats ? { statementType, dmlStats } : { statementType };
    } else if (state.statements) {
      const single = state.statements.length === 1 ? state.statements[0]?.type : undefined;
      const only = state.result?.query?.statements[0];
      statistics.query = single
        ? {
            statementType: only?.statementType ?? single,
            ...(only?.dmlStats ? { dmlStats: only.dmlStats } : {}),
          }
        : { statementType: 'SCRIPT' };
      if (!single && state.result)
        statistics.numChildJobs = String(state.result.query?.statements.length ?? 0);
    }
    if (state.result) {
      statistics.endTime = String(Math.max(Date.now(), state.created));
      const load = state.result.load;
      if (load) {
        // int64 statistics are JSON strings.
        if (state.body.configuration?.copy)
          statistics.copy = { copiedRows: String(load.outputRows) };
        else
          statistics.load = {
            inputFiles: String(load.inputFiles),
            inputFileBytes: String(load.inputFileBytes),
            outputRows: String(load.outputRows),
            outputBytes: String(load.outputRows * 64),
            badRecords: String(load.badRecords),
          };
      }
    }
    return {
      kind: 'bigquery#job',
      etag: `etag-${jobId}`,
      id: `${projectId}:${location}.${jobId}`,
      selfLink: `${url}/bigquery/v2/projects/${projectId}/jobs/${jobId}?location=${location}`,
      user_email: 'ingest@test-project.iam.gserviceaccount.com',
      configuration: {
        ...state.body.configuration,
        jobType: state.body.configuration?.copy
          ? 'COPY'
          : state.body.configuration?.query
            ? 'QUERY'
            : 'LOAD',
      },
      jobReference: { projectId, jobId, location },
      statistics,
      status,
    };
  }

  function run(state: JobState): NonNullable<JobState['result']> {
    const script = state.script;
    if (script?.errorResult)
      return { errorResult: script.errorResult, errors: script.errors ?? [script.errorResult] };
    if (state.statements) return runQueryJob(state, state.statements);
    const copy = state.body.configuration?.copy;
    if (copy) return simulateCopy(copy, state.projectId);
    const load = state.body.configuration?.load ?? {};
    return simulateLoad(load, state.projectId);
  }

  function simulateLoad(
    load: Record<string, unknown>,
    jobProject: string,
  ): NonNullable<JobState['result']> {
    const ref = load.destinationTable as { projectId?: string; datasetId: string; tableId: string };
    const projectId = ref.projectId ?? jobProject;
    const [tableId = '', partition = ''] = ref.tableId.split('$');
    const dsKey = datasetKey(projectId, ref.datasetId);
    if (!datasets.has(dsKey)) {
      if (!autoCreateDatasets)
        return failed('notFound', `Not found: Dataset ${projectId}:${ref.datasetId}`);
      datasets.set(dsKey, new Map());
    }
    const tables = datasets.get(dsKey) as Map<string, TableState>;
    const existing = tables.get(tableId);
    if (!existing && load.createDisposition === 'CREATE_NEVER') {
      return failed('notFound', `Not found: Table ${projectId}:${ref.datasetId}.${tableId}`);
    }
    const write =
      typeof load.writeDisposition === 'string' ? load.writeDisposition : 'WRITE_APPEND';
    const updates = (load.schemaUpdateOptions as string[] | undefined) ?? [];
    const replacesSchema = write === 'WRITE_TRUNCATE' && partition === '';
    // REST reference, JobConfigurationLoad.schemaUpdateOptions.
    if (updates.length > 0 && (replacesSchema || write === 'WRITE_EMPTY')) {
      return failed(
        'invalid',
        'Schema update options should only be specified with WRITE_APPEND or WRITE_TRUNCATE_DATA disposition, or with WRITE_TRUNCATE disposition on a table partition.',
      );
    }
    if (write === 'WRITE_EMPTY' && existing && sumRows(existing) > 0) {
      return failed('duplicate', `Already Exists: Table ${projectId}:${ref.datasetId}.${tableId}`);
    }
    const declared = (load.schema as { fields?: Field[] } | undefined)?.fields;
    const keeps = existing?.schema && !replacesSchema ? existing.schema : undefined;
    let schema = declared ?? keeps;
    if (keeps && declared) {
      const name = `${projectId}:${ref.datasetId}.${tableId}`;
      const evolved = evolveSchema(keeps, declared, updates, name);
      if ('error' in evolved) return failed('invalid', evolved.error);
      schema = evolved.schema;
    }
    const csv = csvOptions(load);
    // REST reference: unspecified matches by name under autodetect, else by position.
    const byName =
      csv.skipLeadingRows > 0 &&
      (load.sourceColumnMatch === 'NAME' ||
        (load.sourceColumnMatch !== 'POSITION' && load.autodetect === true));
    const stats: LoadStatistics = {
      inputFiles: 0,
      inputFileBytes: 0,
      outputRows: 0,
      badRecords: 0,
    };
    const rowErrors: ErrorProto[] = [];
    const loaded: Row[] = [];
    // Nothing documents that NAME reads each file's own header row ("reads the header row as column
    // names", JobConfigurationLoad.sourceColumnMatch): this server reads the first file's, the worst
    // case, so that files whose headers differ are seen to load wrong when they share a job.
    let firstHeader: string[] | undefined;
    for (const uri of expandSourceUris(load.sourceUris as string[], gcs)) {
      const [, bucket = '', name = ''] = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri) ?? [];
      const content = gcs.contentOf(bucket, name);
      if (!content) return failed('notFound', `Not found: URI ${uri}`);
      stats.inputFiles++;
      stats.inputFileBytes += sizeOf(content);
      if (!Buffer.isBuffer(content)) {
        stats.outputRows += virtualRows(content, csv.skipLeadingRows);
        continue;
      }
      const parsed = parseCsv(decode(content, name, csv.encoding), csv);
      if ('error' in parsed)
        return failed('invalid', `Error while reading data, error message: ${parsed.error}`, uri);
      const records = parsed.records.slice(csv.skipLeadingRows);
      if (!schema && load.autodetect) schema = autodetect(parsed.records, csv.skipLeadingRows);
      if (!schema) {
        stats.outputRows += records.length;
        continue;
      }
      firstHeader ??= parsed.records[csv.skipLeadingRows - 1]?.values.map((v) => v.trim());
      const header = firstHeader;
      const columns = byName && header ? columnsByName(header, schema) : schema.map((f) => f.name);
      if (typeof columns === 'string')
        return failed('invalid', `Error while reading data, error message: ${columns}`, uri);
      for (const rec of records) {
        const row = readRow(rec, columns, schema, csv);
        if (typeof row === 'string') {
          stats.badRecords++;
          rowErrors.push({
            reason: 'invalid',
            location: uri,
            message: `Error while reading data, error message: ${row}`,
          });
        } else {
          stats.outputRows++;
          loaded.push(row);
        }
      }
    }
    if (stats.badRecords > csv.maxBadRecords) {
      const summary: ErrorProto = {
        reason: 'invalid',
        location: rowErrors[0]?.location,
        message:
          'Error while reading data, error message: CSV table encountered too many errors, giving up. ' +
          `Rows: ${stats.outputRows + stats.badRecords}; errors: ${stats.badRecords}. ` +
          'Please look into the errors[] collection for more details.',
      };
      return { errorResult: summary, errors: [summary, ...rowErrors.slice(0, 5)] };
    }
    const table: TableState = existing ?? { partitions: new Map(), rows: new Map() };
    if (schema) table.schema = schema;
    withNulls(table);
    // WRITE_TRUNCATE_DATA keeps the schema (evolved above) and replaces every row.
    if (replacesSchema || write === 'WRITE_TRUNCATE_DATA') {
      table.partitions.clear();
      table.rows.clear();
    }
    const appends = write === 'WRITE_APPEND' || write === 'WRITE_EMPTY';
    const before = appends ? (table.partitions.get(partition) ?? 0) : 0;
    table.partitions.set(partition, before + stats.outputRows);
    table.rows.set(partition, [...(appends ? (table.rows.get(partition) ?? []) : []), ...loaded]);
    tables.set(tableId, table);
    const result: NonNullable<JobState['result']> = { load: stats };
    // Rows skipped under maxBadRecords are reported in status.errors of a successful job.
    if (rowErrors.length > 0) result.errors = rowErrors;
    return result;
  }

  /** Runs a query job's statements; a script's each become a child job. */
  function runQueryJob(state: JobState, statements: Statement[]): NonNullable<JobState['result']> {
    const mutates = statements.some((s) => ['DELETE', 'TRUNCATE', 'INSERT'].includes(s.type));
    let abort: string | undefined;
    if (mutates && aborts > 0) {
      aborts--;
      abort = `Transaction is aborted due to concurrent update against table ${lineageTarget(statements)}. Transaction ID: test-${state.jobId}`;
    }
    const ran = runScript(statements, {
      table: (ref) => tableState(ref.projectId, ref.datasetId, ref.tableId),
      replace: (ref, rows) => {
        const table = tableState(ref.projectId, ref.datasetId, ref.tableId);
        if (!table) return;
        table.rows = rows;
        table.partitions = new Map([...rows].map(([p, list]) => [p, list.length]));
      },
      now: new Date().toISOString(),
      abort,
    });
    if (statements.length > 1) {
      ran.statements.forEach((statement, i) => {
        const jobId = `script_job_${state.jobId}_${i}`;
        const child: JobState = {
          body: {
            configuration: { query: { query: '' }, labels: state.body.configuration?.labels },
          },
          projectId: state.projectId,
          jobId,
          location: state.location,
          created: state.created,
          doneAt: state.doneAt,
          child: { parentJobId: state.jobId, run: statement },
          result: statement.error ? failed(statement.error.reason, statement.error.message) : {},
        };
        jobs.set(jobKey(state.projectId, jobId), child);
      });
    }
    const result: NonNullable<JobState['result']> = { query: ran };
    return ran.error ? { ...result, ...failed(ran.error.reason, ran.error.message) } : result;
  }

  /**
   * A copy job from one table into a table or `table$partition` (WRITE_TRUNCATE replaces that partition):
   * the source's schema must be the destination's, as a copy cannot change a schema.
   */
  function simulateCopy(
    copy: CopyConfiguration,
    jobProject: string,
  ): NonNullable<JobState['result']> {
    const [from] = copy.sourceTables ?? [];
    const to = copy.destinationTable as TableRef;
    const source = from && tableState(from.projectId ?? jobProject, from.datasetId, from.tableId);
    if (!from || !source)
      return failed('notFound', `Not found: Table ${from?.datasetId}.${from?.tableId}`);
    const [tableId = '', partition = ''] = to.tableId.split('$');
    const projectId = to.projectId ?? jobProject;
    let target = tableState(projectId, to.datasetId, tableId);
    if (!target) {
      if (copy.createDisposition === 'CREATE_NEVER')
        return failed('notFound', `Not found: Table ${projectId}:${to.datasetId}.${tableId}`);
      createDataset(projectId, to.datasetId);
      target = { partitions: new Map(), rows: new Map(), schema: source.schema };
      datasets.get(datasetKey(projectId, to.datasetId))?.set(tableId, target);
    }
    const names = (fields?: Field[]) => (fields ?? []).map((f) => `${f.name}:${canonical(f.type)}`);
    // WRITE_TRUNCATE of a whole table "uses the schema and table constraints from the source table"
    // (JobConfigurationTableCopy.writeDisposition); into a partition the schemas must agree.
    if (copy.writeDisposition === 'WRITE_TRUNCATE' && partition === '')
      target.schema = source.schema;
    if (names(target.schema).join() !== names(source.schema).join())
      return failed(
        'invalid',
        `Provided Schema does not match Table ${projectId}:${to.datasetId}.${tableId}`,
      );
    const rows = [...source.rows.values()].flat();
    const appends = copy.writeDisposition === 'WRITE_APPEND';
    if (!appends && partition === '') {
      target.partitions.clear();
      target.rows.clear();
    }
    const before = appends ? (target.rows.get(partition) ?? []) : [];
    target.rows.set(partition, [...before, ...rows]);
    target.partitions.set(partition, before.length + rows.length);
    const stats = { inputFiles: 0, inputFileBytes: 0, outputRows: rows.length, badRecords: 0 };
    return { load: stats };
  }

  function tableState(projectId: string, datasetId: string, tableId: string) {
    return datasets.get(datasetKey(projectId, datasetId))?.get(tableId);
  }

  /** tables.insert, tables.patch (adding NULLABLE columns, relaxing REQUIRED ones) and tables.delete. */
  function changeTable(
    r: RecordedRequest,
    [projectId, datasetId, tableId]: string[],
    res: http.ServerResponse,
  ): void {
    const body = (r.body ?? {}) as {
      schema?: { fields?: Field[] };
      tableReference?: TableRef;
      expirationTime?: string;
    };
    const id = r.method === 'POST' ? (body.tableReference?.tableId ?? '') : (tableId ?? '');
    const where = `${projectId}:${datasetId}.${id}`;
    const tables = datasets.get(datasetKey(projectId ?? '', datasetId ?? ''));
    const existing = tables?.get(id);
    if (r.method === 'DELETE') {
      if (!existing)
        return sendBqError(res, 404, 'notFound', `Not found: Table ${where}`, 'NOT_FOUND');
      tables?.delete(id);
      res.writeHead(204).end();
      return;
    }
    if (r.method === 'POST') {
      if (existing)
        return sendBqError(
          res,
          409,
          'duplicate',
          `Already Exists: Table ${where}`,
          'ALREADY_EXISTS',
        );
      createDataset(projectId ?? '', datasetId ?? '');
      const table: TableState = { partitions: new Map(), rows: new Map() };
      if (body.schema?.fields) table.schema = body.schema.fields;
      if (body.expirationTime !== undefined) table.expirationTime = body.expirationTime;
      datasets.get(datasetKey(projectId ?? '', datasetId ?? ''))?.set(id, table);
      return getTable(projectId ?? '', datasetId ?? '', id, res);
    }
    if (!existing)
      return sendBqError(res, 404, 'notFound', `Not found: Table ${where}`, 'NOT_FOUND');
    const fields = body.schema?.fields;
    if (fields) {
      const evolved = evolveSchema(
        existing.schema ?? [],
        fields,
        ['ALLOW_FIELD_ADDITION', 'ALLOW_FIELD_RELAXATION'],
        where,
      );
      if ('error' in evolved)
        return sendBqError(res, 400, 'invalid', evolved.error, 'INVALID_ARGUMENT');
      existing.schema = evolved.schema;
      withNulls(existing);
    }
    return getTable(projectId ?? '', datasetId ?? '', id, res);
  }

  // ---- jobs.query / getQueryResults: only the history query on INFORMATION_SCHEMA.JOBS_BY_PROJECT,
  // answered from this server's own jobs. Separate from the load-job simulation above. ----

  const queryAnswers = new Map<string, Record<string, unknown>>();

  function runQuery(projectId: string, r: RecordedRequest, res: http.ServerResponse): void {
    const body = r.body as QueryBody;
    if (!/INFORMATION_SCHEMA/.test(body.query ?? '')) return runStatement(projectId, body, res);
    const problem = historyQueryProblem(body);
    if (problem) return sendBqError(res, 400, 'invalidQuery', problem, 'INVALID_ARGUMENT');
    const region = /`region-([a-z0-9-]+)`/.exec(body.query ?? '')?.[1] ?? '';
    const since = Date.parse(sinceParameter(body) ?? '');
    const rows = [...jobs.values()]
      .filter((state) => state.projectId === projectId && state.created >= since)
      .filter((state) => state.location.toLowerCase() === region)
      .filter((state) => state.body.configuration?.labels?.component === 'gcs-bq-ingest')
      // job_type IN ('LOAD', 'QUERY') AND parent_job_id IS NULL
      .filter((state) => !state.child && !state.body.configuration?.copy)
      .sort((a, b) => b.created - a.created)
      .map((state) => jobsViewRow(state.created, resource(state)));
    const jobId = `query_${queryAnswers.size + 1}`;
    const jobReference = { projectId, jobId, location: body.location ?? 'US' };
    const answer = {
      kind: 'bigquery#queryResponse',
      jobReference,
      jobComplete: true,
      schema: {
        fields: JOBS_VIEW_FIELDS.map(([name, type]) => ({ name, type, mode: 'NULLABLE' })),
      },
      rows: rows.map((row) => ({ f: row.map((v) => ({ v })) })),
      totalRows: String(rows.length),
    };
    queryAnswers.set(jobKey(projectId, jobId), answer);
    if (!options.slowQueries) return sendJson(res, 200, answer);
    sendJson(res, 200, { kind: answer.kind, jobReference, jobComplete: false });
  }

  function getQueryResults(projectId: string, jobId: string, res: http.ServerResponse): void {
    const state = jobs.get(jobKey(projectId, jobId));
    const selected = state?.child?.run.result ?? state?.result?.query?.statements.at(-1)?.result;
    if (state && selected && !state.result?.errorResult)
      return sendJson(res, 200, selectAnswer(state, selected, 'bigquery#getQueryResultsResponse'));
    const answer = queryAnswers.get(jobKey(projectId, jobId));
    if (!answer)
      return sendBqError(res, 404, 'notFound', `Not found: Job ${projectId}:${jobId}`, 'NOT_FOUND');
    sendJson(res, 200, { ...answer, kind: 'bigquery#getQueryResultsResponse' });
  }

  /** jobs.query of one SELECT of bigquery-sql.ts (the newest generations), run as a job of its own. */
  function runStatement(projectId: string, body: QueryBody, res: http.ServerResponse): void {
    const statements = parseScript(body.query ?? '');
    if ('error' in statements)
      return sendBqError(res, 400, 'invalidQuery', statements.error, 'INVALID_ARGUMENT');
    if (statements.length !== 1 || statements[0]?.type !== 'NEWEST' || body.useLegacySql === true)
      return sendBqError(
        res,
        400,
        'invalidQuery',
        'test server: jobs.query runs only the newest-generation SELECT',
      );
    const jobId = `query_${jobs.size + 1}`;
    const now = Date.now();
    const state: JobState = {
      body: { configuration: { query: { query: body.query, useLegacySql: false } } },
      projectId,
      jobId,
      location: body.location ?? 'US',
      created: now,
      doneAt: now,
      statements,
    };
    jobs.set(jobKey(projectId, jobId), state);
    resource(state);
    const ran = state.result?.query;
    if (ran?.error) return sendBqError(res, 400, ran.error.reason, ran.error.message);
    const selected = ran?.statements[0]?.result ?? { fields: [], rows: [] };
    sendJson(res, 200, selectAnswer(state, selected, 'bigquery#queryResponse'));
  }

  function selectAnswer(
    state: JobState,
    selected: NonNullable<StatementRun['result']>,
    kind: string,
  ): Record<string, unknown> {
    return {
      kind,
      jobReference: { projectId: state.projectId, jobId: state.jobId, location: state.location },
      jobComplete: true,
      schema: { fields: selected.fields.map(([name, type]) => ({ name, type, mode: 'NULLABLE' })) },
      rows: selected.rows.map((row) => ({ f: row.map((v) => ({ v })) })),
      totalRows: String(selected.rows.length),
    };
  }

  function createDataset(projectId: string, datasetId: string): void {
    if (!datasets.has(datasetKey(projectId, datasetId)))
      datasets.set(datasetKey(projectId, datasetId), new Map());
  }

  function listDatasets(projectId: string, res: http.ServerResponse): void {
    const list = [...datasets.keys()]
      .filter((k) => k.startsWith(`${projectId}:`))
      .map((k) => {
        const datasetId = k.slice(projectId.length + 1);
        return {
          kind: 'bigquery#dataset',
          id: k,
          datasetReference: { projectId, datasetId },
          location: 'US',
        };
      });
    sendJson(res, 200, { kind: 'bigquery#datasetList', etag: 'etag', datasets: list });
  }

  function listTables(projectId: string, datasetId: string, res: http.ServerResponse): void {
    const tables = datasets.get(datasetKey(projectId, datasetId));
    if (!tables)
      return sendBqError(
        res,
        404,
        'notFound',
        `Not found: Dataset ${projectId}:${datasetId}`,
        'NOT_FOUND',
      );
    const list = [...tables.keys()].map((tableId) => ({
      kind: 'bigquery#table',
      id: `${projectId}:${datasetId}.${tableId}`,
      tableReference: { projectId, datasetId, tableId },
      type: 'TABLE',
    }));
    sendJson(res, 200, {
      kind: 'bigquery#tableList',
      etag: 'etag',
      tables: list,
      totalItems: list.length,
    });
  }

  function getTable(
    projectId: string,
    datasetId: string,
    tableId: string,
    res: http.ServerResponse,
  ): void {
    const table = datasets.get(datasetKey(projectId, datasetId))?.get(tableId);
    if (!table) {
      return sendBqError(
        res,
        404,
        'notFound',
        `Not found: Table ${projectId}:${datasetId}.${tableId}`,
        'NOT_FOUND',
      );
    }
    sendJson(res, 200, {
      kind: 'bigquery#table',
      id: `${projectId}:${datasetId}.${tableId}`,
      tableReference: { projectId, datasetId, tableId },
      type: 'TABLE',
      schema: { fields: table.schema ?? [] },
      numRows: String(sumRows(table)),
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    get url() {
      return url;
    },
    requests,
    inserts: () => requests.filter(isInsert).map((r) => r.body as JobBody),
    job(projectId, jobId) {
      const state = jobs.get(jobKey(projectId, jobId));
      return state && resource(state);
    },
    script: (jobId, script) => void scripts.set(jobId, script),
    abortNextTransaction: (times = 1) => void (aborts += times),
    finish(projectId, jobId) {
      const state = jobs.get(jobKey(projectId, jobId));
      if (state) state.doneAt = Math.min(state.doneAt, Date.now());
    },
    createDataset,
    createTable(projectId, datasetId, tableId, schema) {
      createDataset(projectId, datasetId);
      const table: TableState = { partitions: new Map(), rows: new Map() };
      if (schema) table.schema = schema;
      datasets.get(datasetKey(projectId, datasetId))?.set(tableId, table);
    },
    table: (projectId, datasetId, tableId) =>
      datasets.get(datasetKey(projectId, datasetId))?.get(tableId),
    jobsFor: (projectId, datasetId, tableId) =>
      tableJobs.get(`${projectId}:${datasetId}.${tableId}`)?.length ?? 0,
    rows(projectId, datasetId, tableId) {
      const table = datasets.get(datasetKey(projectId, datasetId))?.get(tableId);
      return table && sumRows(table);
    },
    count: (match) => (match ? requests.filter(match).length : requests.length),
    fail: (fault) => void faults.push({ times: 1, ...fault }),
    clearFaults: () => void faults.splice(0),
    resetCounters: () => void requests.splice(0),
    close: () => closeServer(server),
  };
}

/** The table a lineage script writes, as its error messages name it. */
function lineageTarget(statements: Statement[]): string {
  const writing = statements.find(
    (s) => s.type === 'DELETE' || s.type === 'TRUNCATE' || s.type === 'INSERT',
  );
  const table = writing && 'table' in writing ? writing.table : undefined;
  return table ? `${table.projectId}:${table.datasetId}.${table.tableId}` : 'unknown';
}

function failed(
  reason: string,
  message: string,
  location?: string,
): { errorResult: ErrorProto; errors: ErrorProto[] } {
  const error: ErrorProto =
    location === undefined ? { reason, message } : { reason, message, location };
  return { errorResult: error, errors: [error] };
}

/** A column added to a table reads NULL in the rows it had before. */
function withNulls(table: TableState): void {
  for (const rows of table.rows.values())
    for (const row of rows) for (const field of table.schema ?? []) row[field.name] ??= null;
}

function sumRows(table: TableState): number {
  let sum = 0;
  for (const n of table.partitions.values()) sum += n;
  return sum;
}

/** BigQuery's error body: `{error: {code, message, errors: [{message, domain, reason}], status}}`. */
function sendBqError(
  res: http.ServerResponse,
  status: number,
  reason: string,
  message: string,
  code?: string,
): void {
  const statusText =
    code ??
    (status === 503
      ? 'UNAVAILABLE'
      : status >= 500
        ? 'INTERNAL'
        : status === 403
          ? 'PERMISSION_DENIED'
          : undefined);
  const error: Record<string, unknown> = {
    code: status,
    message,
    errors: [{ message, domain: 'global', reason }],
  };
  if (statusText) error.status = statusText;
  sendJson(res, status, { error });
}

// ---- CSV, as much of it as the tests need ----

/**
 * The objects a load job's source URIs name, as BigQuery reads them: consecutive slashes after `gs://`
 * become one (https://cloud.google.com/bigquery/docs/external-data-cloud-storage), and `*` is a wildcard
 * with no escape (https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-csv), here matching
 * any characters, "/" included. A URI that matches nothing stays as it is (and is not found).
 */
export function expandSourceUris(uris: string[], gcs: Pick<GcsServer, 'names'>): string[] {
  return uris.flatMap((uri) => {
    const [, bucket = '', rawName = ''] = /^gs:\/\/([^/]+)\/(.*)$/s.exec(uri) ?? [];
    const name = rawName.replace(/\/{2,}/g, '/').replace(/^\//, '');
    if (!name.includes('*')) return [`gs://${bucket}/${name}`];
    const glob = name.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const pattern = new RegExp(`^${glob.join('.*')}$`, 's');
    const matches = gcs.names(bucket).filter((n) => pattern.test(n));
    return matches.length > 0 ? matches.map((n) => `gs://${bucket}/${n}`) : [uri];
  });
}

interface CsvOptions {
  delimiter: string;
  quote: string;
  skipLeadingRows: number;
  allowQuotedNewlines: boolean;
  allowJaggedRows: boolean;
  maxBadRecords: number;
  nullMarker: string;
  encoding: string;
}

interface CsvRecord {
  values: string[];
  /** Byte offset where the record starts, as BigQuery's messages count. */
  offset: number;
}

function csvOptions(load: Record<string, unknown>): CsvOptions {
  // Defaults from the REST reference.
  return {
    delimiter: typeof load.fieldDelimiter === 'string' ? load.fieldDelimiter : ',',
    quote: typeof load.quote === 'string' ? load.quote : '"',
    skipLeadingRows: typeof load.skipLeadingRows === 'number' ? load.skipLeadingRows : 0,
    allowQuotedNewlines: load.allowQuotedNewlines === true,
    allowJaggedRows: load.allowJaggedRows === true,
    maxBadRecords: typeof load.maxBadRecords === 'number' ? load.maxBadRecords : 0,
    nullMarker: typeof load.nullMarker === 'string' ? load.nullMarker : '',
    encoding: typeof load.encoding === 'string' ? load.encoding : 'UTF-8',
  };
}

function decode(content: Buffer, name: string, encoding: string): string {
  const gzip = name.endsWith('.gz') || (content[0] === 0x1f && content[1] === 0x8b);
  // Nothing documents that BigQuery fails a load whose gzip stream ends early (see the sources in
  // src/warehouses/bigquery/job-results.ts), so this server takes the worst case: it loads what
  // decompresses.
  const bytes = gzip
    ? zlib.gunzipSync(content, { finishFlush: zlib.constants.Z_SYNC_FLUSH })
    : content;
  return bytes.toString(encoding === 'ISO-8859-1' ? 'latin1' : 'utf8');
}

export function parseCsv(
  text: string,
  csv: Pick<CsvOptions, 'delimiter' | 'quote' | 'allowQuotedNewlines'>,
): { records: CsvRecord[] } | { error: string } {
  const records: CsvRecord[] = [];
  let values: string[] = [];
  let field = '';
  let inQuotes = false;
  let start = 0;
  let i = 0;
  const endRecord = (next: number) => {
    values.push(field);
    if (!(values.length === 1 && values[0] === '')) records.push({ values, offset: start });
    values = [];
    field = '';
    start = next;
  };
  for (; i < text.length; i++) {
    const c = text[i] as string;
    if (inQuotes) {
      if (c === csv.quote) {
        if (text[i + 1] === csv.quote) {
          field += c;
          i++;
        } else {
          inQuotes = false;
        }
      } else if (c === '\n' && !csv.allowQuotedNewlines) {
        return {
          error: `Error detected while parsing row starting at position: ${start}. Error: Missing close double quote (") character.`,
        };
      } else {
        field += c;
      }
    } else if (csv.quote !== '' && c === csv.quote && field === '') {
      inQuotes = true;
    } else if (c === csv.delimiter) {
      values.push(field);
      field = '';
    } else if (c === '\n') {
      endRecord(i + 1);
    } else if (c !== '\r') {
      field += c;
    }
  }
  if (inQuotes) {
    return {
      error: `Error detected while parsing row starting at position: ${start}. Error: Missing close double quote (") character.`,
    };
  }
  if (field !== '' || values.length > 0) endRecord(i);
  return { records };
}

function autodetect(records: CsvRecord[], skip: number): TableState['schema'] {
  const header = skip > 0 ? records[skip - 1] : undefined;
  const width = header?.values.length ?? records[0]?.values.length ?? 0;
  return Array.from({ length: width }, (_, i) => ({
    name: header?.values[i] || `string_field_${i}`,
    type: 'STRING',
  }));
}

// What the loader reads as each type: "Details of loading CSV data" in
// https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-csv; NUMERIC holds 38 digits, 9
// after the point, BIGNUMERIC 38 after it (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types).
const DATE_FORM = String.raw`\d{4}-\d{1,2}-\d{1,2}`;
const VALUE_FORMS: Record<string, RegExp> = {
  INT64: /^[+-]?\d+$/,
  FLOAT64: /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i,
  NUMERIC: /^[+-]?(\d{1,29}(\.\d{0,9})?|\.\d{1,9})$/,
  BIGNUMERIC: /^[+-]?(\d{1,38}(\.\d{0,38})?|\.\d{1,38})$/,
  BOOL: /^(true|false|t|f|yes|no|y|n|1|0)$/i,
  DATE: new RegExp(`^${DATE_FORM}$`),
  DATETIME: new RegExp(String.raw`^${DATE_FORM}[ T]\d{1,2}:\d{2}:\d{2}(\.\d{1,6})?$`),
  TIME: /^\d{1,2}:\d{2}:\d{2}(\.\d{1,6})?$/,
  // A date and a time with an optional zone; with a schema also seconds since the Unix epoch.
  TIMESTAMP: new RegExp(
    String.raw`^(${DATE_FORM}|\d{4}/\d{1,2}/\d{1,2})[ T]\d{1,2}:\d{2}(:\d{2}(\.\d{1,6})?)?( ?(Z|UTC)| ?[+-]\d{1,2}(:?\d{2})?)?$` +
      String.raw`|^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`,
  ),
};

/** Whether BigQuery reads `value` as `type` (a type it does not check here reads anything). */
function readsAs(type: string, value: string): boolean {
  const form = VALUE_FORMS[canonical(type)];
  if (!form) return true;
  if (!form.test(value)) return false;
  if (canonical(type) === 'INT64')
    return BigInt(value) >= -(2n ** 63n) && BigInt(value) < 2n ** 63n;
  return realDate(value) && realTime(value);
}

/** A Y-M-D in the value, if any, is a day of the calendar. */
function realDate(value: string): boolean {
  const [, y, m, d] = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})/.exec(value) ?? [];
  if (y === undefined) return true;
  const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return date.getUTCMonth() === Number(m) - 1 && date.getUTCDate() === Number(d);
}

/** An H:M[:S] in the value, if any, is a time of day. */
function realTime(value: string): boolean {
  const [, h, m, s] = /(?:^|[ T])(\d{1,2}):(\d{2})(?::(\d{2}))?/.exec(value) ?? [];
  if (h === undefined) return true;
  return Number(h) < 24 && Number(m) < 60 && Number(s ?? 0) < 60;
}

/** For each CSV column in header order, the schema field it loads into; or why it cannot load. */
function columnsByName(header: string[], schema: Field[]): string[] | string {
  const fields = new Map(schema.map((f) => [f.name.toLowerCase(), f.name]));
  const columns: string[] = [];
  for (const name of header) {
    const field = fields.get(name.toLowerCase());
    // Assumed wording: nothing found documents BigQuery's message for this case.
    if (!field) return `No field in the schema matches CSV column "${name}".`;
    columns.push(field);
  }
  return columns;
}

/**
 * The schema a load leaves on a table whose schema it keeps: the declared one must list every
 * column of the table with its type; columns added or relaxed need the schema update option.
 * Messages as BigQuery words them (python-bigquery and bigquery issue threads); assumed otherwise.
 */
function evolveSchema(
  table: Field[],
  declared: Field[],
  updates: string[],
  name: string,
): { schema: Field[] } | { error: string } {
  const mismatch = (why: string) => ({
    error: `Provided Schema does not match Table ${name}. ${why}`,
  });
  const given = new Map(declared.map((f) => [f.name.toLowerCase(), f]));
  const schema: Field[] = [];
  for (const field of table) {
    const now = given.get(field.name.toLowerCase());
    if (!now) return mismatch(`Field ${field.name} is missing in new schema`);
    if (canonical(now.type) !== canonical(field.type))
      return mismatch(`Field ${field.name} has changed type from ${field.type} to ${now.type}`);
    const was = field.mode ?? 'NULLABLE';
    const mode = now.mode ?? 'NULLABLE';
    if (was !== mode && !(was === 'REQUIRED' && updates.includes('ALLOW_FIELD_RELAXATION')))
      return mismatch(`Field ${field.name} has changed mode from ${was} to ${mode}`);
    schema.push({ ...field, mode });
  }
  const known = new Set(table.map((f) => f.name.toLowerCase()));
  const added = declared.filter((f) => !known.has(f.name.toLowerCase()));
  if (added.length > 0 && !updates.includes('ALLOW_FIELD_ADDITION'))
    return mismatch(`Cannot add fields (field: ${added[0]?.name ?? ''})`);
  const required = added.find((f) => f.mode === 'REQUIRED');
  if (required)
    return mismatch(`Cannot add required fields to an existing schema. (field: ${required.name})`);
  return { schema: [...schema, ...added] };
}

function canonical(type: string): string {
  return (
    ({ INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' } as Record<string, string>)[type] ??
    type
  );
}

// Messages worded as BigQuery words them (see the examples cited in
// src/warehouses/bigquery/job-results.ts).
function readRow(
  rec: CsvRecord,
  columns: string[],
  schema: Field[],
  csv: CsvOptions,
): Row | string {
  if (rec.values.length > columns.length)
    return `Too many values in row starting at position: ${rec.offset}.`;
  if (rec.values.length < columns.length && !csv.allowJaggedRows) {
    return `CSV table references column position ${columns.length - 1}, but line starting at position:${rec.offset} contains only ${rec.values.length} columns.`;
  }
  const row: Row = {};
  for (const field of schema) row[field.name] = null;
  for (const [i, column] of columns.entries()) {
    const value = rec.values[i];
    row[column] = value === undefined || value === csv.nullMarker || value === '' ? null : value;
  }
  const types = new Map(schema.map((f) => [f.name, f.type]));
  for (const [position, column] of columns.entries()) {
    const value = row[column];
    const type = types.get(column) ?? 'STRING';
    if (value !== null && value !== undefined && !readsAs(type, value)) {
      return `Could not parse '${value}' as ${type} for field ${column} (position ${position}) starting at location ${rec.offset}  with message 'Unable to parse'`;
    }
  }
  const missing = schema.find((f) => f.mode === 'REQUIRED' && row[f.name] === null);
  if (missing)
    return `Required field ${missing.name} cannot be null; line starting at position:${rec.offset}`;
  return row;
}

function virtualRows(content: VirtualContent, skip: number): number {
  const body = Math.max(0, content.size - Buffer.byteLength(content.header));
  const row = Buffer.byteLength(content.row);
  const lines = 1 + Math.ceil(body / row);
  return Math.max(0, lines - skip);
}

// ---- The history query (test/servers' jobs.query) ----

interface QueryBody {
  query?: string;
  location?: string;
  useLegacySql?: boolean;
  queryParameters?: {
    name?: string;
    parameterType?: { type?: string };
    parameterValue?: { value?: string };
  }[];
}

/** The columns the history query selects, with their BigQuery types. */
const JOBS_VIEW_FIELDS = [
  ['job_id', 'STRING'],
  ['created_ms', 'INTEGER'],
  ['ended_ms', 'INTEGER'],
  ['state', 'STRING'],
  ['project_id', 'STRING'],
  ['dataset_id', 'STRING'],
  ['table_id', 'STRING'],
  ['error_reason', 'STRING'],
  ['error_message', 'STRING'],
  ['bucket', 'STRING'],
] as const;

function sinceParameter(body: QueryBody): string | undefined {
  const since = body.queryParameters?.find((p) => p.name === 'since');
  return since?.parameterType?.type === 'TIMESTAMP' ? since.parameterValue?.value : undefined;
}

/**
 * Why this is not the history query this server simulates: it must read the region's
 * JOBS_BY_PROJECT view, keep load and query jobs (no child jobs of a script) created since a
 * TIMESTAMP parameter, filter by the service's `component` label and select the columns
 * JOBS_VIEW_FIELDS names.
 */
export function historyQueryProblem(body: QueryBody): string | undefined {
  const query = body.query ?? '';
  const checks: [boolean, string][] = [
    [body.useLegacySql !== true, 'uses legacy SQL'],
    [
      /FROM `region-[a-z0-9-]+`\.INFORMATION_SCHEMA\.JOBS_BY_PROJECT\b/.test(query),
      'does not read `region-<location>`.INFORMATION_SCHEMA.JOBS_BY_PROJECT',
    ],
    [
      /\bjob_type IN \('LOAD', 'QUERY'\)/.test(query),
      "does not keep job_type IN ('LOAD', 'QUERY')",
    ],
    [
      /\bparent_job_id IS NULL\b/.test(query),
      'does not leave out child jobs (parent_job_id IS NULL)',
    ],
    [/\bcreation_time >= @since\b/.test(query), 'does not filter creation_time >= @since'],
    [sinceParameter(body) !== undefined, 'has no TIMESTAMP parameter @since'],
    [
      /UNNEST\(labels\) WHERE key = 'component' AND value = 'gcs-bq-ingest'/.test(query),
      "does not filter by the label component = 'gcs-bq-ingest'",
    ],
    ...JOBS_VIEW_FIELDS.map(([name]): [boolean, string] => [
      new RegExp(`\\b${name}\\b`).test(query),
      `does not select ${name}`,
    ]),
  ];
  const missing = checks.filter(([ok]) => !ok).map(([, what]) => what);
  return missing.length > 0 ? `test server: the query ${missing.join('; ')}` : undefined;
}

/** A job as the view's row of the selected columns (REST values: strings or null). */
function jobsViewRow(created: number, job: Record<string, unknown>): (string | null)[] {
  const reference = job.jobReference as { projectId: string; jobId: string };
  const status = job.status as { state: string; errorResult?: ErrorProto };
  const statistics = job.statistics as { endTime?: string };
  const configuration = job.configuration as JobBody['configuration'];
  const table = configuration?.load?.destinationTable as
    { projectId?: string; datasetId?: string; tableId?: string } | undefined;
  return [
    reference.jobId,
    String(created),
    statistics.endTime ?? null,
    status.state,
    table?.projectId ?? reference.projectId,
    table?.datasetId ?? null,
    table?.tableId ?? null,
    status.errorResult?.reason ?? null,
    status.errorResult?.message ?? null,
    configuration?.labels?.bucket ?? null,
  ];
}

/**
 * A client for the test server: its endpoint, a fixed project, and no credentials (the server needs
 * none, and google-auth-library would otherwise look for Application Default Credentials).
 */
export function bigQueryClient(server: { url: string }, options: BigQueryOptions = {}): BigQuery {
  const client = new BigQuery({ projectId: 'test-project', apiEndpoint: server.url, ...options });
  Object.assign(client.authClient, {
    authorizeRequest: async <T>(request: T): Promise<T> => request,
  });
  return client;
}
