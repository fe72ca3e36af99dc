import * as path from 'node:path';
import { z } from 'zod/v3';
import { ConfigError, describeIssue, errorMessage, fieldPath, toConfigError } from './errors';
import { BIGQUERY_NAME, BUCKET_NAME, DOMAIN_PROJECT_ID, isPartitionDate } from './names';
import { compilePattern, type CompiledPattern } from './pattern';
import type * as YamlText from './yaml-text';

export const WRITE_MODES = ['append', 'truncate', 'replace', 'partition'] as const;
export type WriteMode = (typeof WRITE_MODES)[number];
export const BACKENDS = ['local', 'gcp'] as const;
export type Backend = (typeof BACKENDS)[number];
export const ENCODINGS = ['UTF-8', 'ISO-8859-1'] as const;
/** What a reason about text that is not UTF-8 suggests. */
export const LATIN1_HINT = 'set csv.encoding: ISO-8859-1 for Latin-1 files';
export const FIELD_TYPES = [
  'STRING',
  'INT64',
  'INTEGER',
  'FLOAT64',
  'FLOAT',
  'NUMERIC',
  'BIGNUMERIC',
  'BOOL',
  'BOOLEAN',
  'DATE',
  'DATETIME',
  'TIMESTAMP',
  'TIME',
  'BYTES',
  'JSON',
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const csvSchema = z
  .object({
    delimiter: z.string().length(1, 'must be a single character'),
    skipLeadingRows: z.number().int().min(0),
    quote: z.string().max(1, 'must be one character, or empty for no quoting'),
    encoding: z.enum(ENCODINGS),
    allowQuotedNewlines: z.boolean(),
    allowJaggedRows: z.boolean(),
    maxBadRecords: z.number().int().min(0),
    nullMarker: z.string(),
  })
  .strict();
export type CsvOptions = z.infer<typeof csvSchema>;

const fieldSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,299}$/, 'is not a valid BigQuery column name'),
    type: z.enum(FIELD_TYPES),
    mode: z.enum(['NULLABLE', 'REQUIRED']).optional(),
    description: z.string().optional(),
  })
  .passthrough();
export type SchemaField = z.infer<typeof fieldSchema>;
const bigQuerySchemaFile = z
  .array(fieldSchema)
  .min(1, 'must list at least one field')
  .refine((fields) => new Set(fields.map((f) => f.name.toLowerCase())).size === fields.length, {
    message: 'has duplicate column names',
  });

const timePartitioningSchema = z
  .object({
    type: z.enum(['DAY', 'HOUR', 'MONTH', 'YEAR']),
    field: z.string().optional(),
    expirationMs: z.number().int().positive().optional(),
  })
  .strict();

const BATCH_RULE =
  'must be false (one load job per object) or a mapping of jobsPerDay, burst, maxFiles';
const batchSchema = z.union(
  [
    z.literal(false),
    z
      .object({
        jobsPerDay: z.number().positive(),
        burst: z.number().int().min(1),
        maxFiles: z
          .number()
          .int()
          .min(1)
          .max(10_000, "must be at most 10000, BigQuery's source URIs per load job"),
      })
      .partial()
      .strict(),
  ],
  {
    errorMap: (issue, ctx) =>
      issue.code === 'invalid_union'
        ? { message: `is ${JSON.stringify(ctx.data)}: ${BATCH_RULE}` }
        : { message: ctx.defaultError },
  },
);

const loadOptionsShape = {
  dataset: z.string().min(1),
  table: z.string().min(1),
  write: z.enum(WRITE_MODES),
  schema: z.string().min(1),
  partition: z.string().min(1),
  createDisposition: z.enum(['CREATE_IF_NEEDED', 'CREATE_NEVER']),
  timePartitioning: timePartitioningSchema,
  clustering: z.array(z.string()).min(1).max(4),
  columns: z.enum(['byName', 'byPosition']),
  newColumns: z.enum(['add', 'reject']),
  relaxColumns: z.boolean(),
};
const defaultsSchema = z
  .object({
    dataset: loadOptionsShape.dataset,
    write: loadOptionsShape.write,
    schema: loadOptionsShape.schema,
    csv: csvSchema.partial(),
    createDisposition: loadOptionsShape.createDisposition,
    batch: batchSchema,
    columns: loadOptionsShape.columns,
    newColumns: loadOptionsShape.newColumns,
    relaxColumns: loadOptionsShape.relaxColumns,
  })
  .partial()
  .strict();
const routeSchema = z
  .object({
    match: z.string().min(1),
    dataset: loadOptionsShape.dataset.optional(),
    table: loadOptionsShape.table.optional(),
    write: loadOptionsShape.write.optional(),
    schema: loadOptionsShape.schema.optional(),
    partition: loadOptionsShape.partition.optional(),
    createDisposition: loadOptionsShape.createDisposition.optional(),
    timePartitioning: loadOptionsShape.timePartitioning.optional(),
    clustering: loadOptionsShape.clustering.optional(),
    csv: csvSchema.partial().optional(),
    batch: batchSchema.optional(),
    columns: loadOptionsShape.columns.optional(),
    newColumns: loadOptionsShape.newColumns.optional(),
    relaxColumns: loadOptionsShape.relaxColumns.optional(),
  })
  .strict();
const fileSchema = z
  .object({
    project: z.string().regex(DOMAIN_PROJECT_ID, 'is not a valid project id').optional(),
    location: z.string().min(1).optional(),
    buckets: z.array(z.string().regex(BUCKET_NAME, 'is not a valid bucket name')).optional(),
    defaults: defaultsSchema.optional(),
    reprocess: z
      .object({
        topic: z
          .string()
          .regex(/^projects\/[^/]+\/topics\/[^/]+$/, 'must look like projects/P/topics/T')
          .optional(),
        inlineLimit: z.number().int().min(1).max(10_000).optional(),
      })
      .strict()
      .optional(),
    quarantine: z
      .object({ prefix: z.string().regex(/^[^/].*\/$/, 'must end with "/"') })
      .strict()
      .optional(),
    routes: z.array(routeSchema).min(1).optional(),
  })
  .strict();

const PORT_RULE = 'must be a port number, an integer from 0 to 65535';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
const secondsSchema = z.coerce.number({
  errorMap: () => ({ message: 'must be a number of seconds' }),
});
const envSchema = z.object({
  INGEST_BACKEND: z.enum(BACKENDS).default('local'),
  LOCAL_DATA_DIR: z.string().min(1).default('./local-data'),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  INGEST_WAIT_SECONDS: z.coerce.number().positive().default(540),
  INGEST_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  INGEST_MAX_OBJECT_BYTES: z.coerce.number().int().positive().optional(),
  INGEST_CLAIM_GRACE_SECONDS: z.coerce.number().positive().optional(),
  INGEST_SHUTDOWN_GRACE_SECONDS: secondsSchema.min(0, 'must be 0 or more seconds').optional(),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, {
      errorMap: (_issue, ctx) => ({
        message: `is ${JSON.stringify(ctx.data)}: must be one of ${LOG_LEVELS.join(', ')}`,
      }),
    })
    .default('info'),
  PORT: z
    .string()
    .regex(/^[0-9]{1,5}$/, PORT_RULE)
    .transform(Number)
    .refine((port) => port <= 65_535, PORT_RULE)
    .optional(),
});

export const DEFAULT_CSV: CsvOptions = {
  delimiter: ',',
  skipLeadingRows: 1,
  quote: '"',
  encoding: 'UTF-8',
  allowQuotedNewlines: true,
  allowJaggedRows: false,
  maxBadRecords: 0,
  nullMarker: '',
};

/**
 * Pacing and coalescing of an `append` route's load jobs per destination table (see batcher.ts).
 * `jobsPerDay` absent: the warehouse's own budget (BigQuery 1000, DuckDB unpaced).
 */
export interface BatchOptions {
  jobsPerDay?: number;
  burst: number;
  maxFiles: number;
}

export const DEFAULT_BATCH = { burst: 10, maxFiles: 10_000 } as const;

/**
 * How a file's columns meet its table's: matched by header name or by position; a column the table
 * lacks added (NULLABLE) or the file rejected; a REQUIRED column the file lacks made NULLABLE or the
 * file rejected.
 */
export interface ColumnRules {
  match: 'byName' | 'byPosition';
  newColumns: 'add' | 'reject';
  relax: boolean;
}

/** A route's column rules when it names none, for a header row and `schema: auto`. */
export const DEFAULT_COLUMNS: ColumnRules = { match: 'byName', newColumns: 'add', relax: false };

export interface Route {
  index: number;
  match: string;
  pattern: CompiledPattern;
  dataset: string;
  /** Template with `{placeholder}`s; absent = the file name without its CSV ending. */
  table?: string;
  write: WriteMode;
  /** Template for the partition date (YYYYMMDD) of `partition` routes. */
  partition?: string;
  schema: 'auto' | SchemaField[];
  csv: CsvOptions;
  createDisposition: 'CREATE_IF_NEEDED' | 'CREATE_NEVER';
  timePartitioning?: z.infer<typeof timePartitioningSchema>;
  clustering?: string[];
  /** False: one load job per object. Only `append` routes batch. */
  batch: BatchOptions | false;
  columns: ColumnRules;
}

export interface Config {
  source: string;
  backend: Backend;
  localDataDir: string;
  project?: string;
  location: string;
  buckets?: string[];
  quarantinePrefix: string;
  reprocess: { topic?: string; inlineLimit: number };
  routes: Route[];
  waitSeconds: number;
  maxBodyBytes: number;
  maxObjectBytes?: number;
  /** How long a claim whose job is not found yet is left to its owner (default: the store's own). */
  claimGraceSeconds?: number;
  /** On SIGTERM, how long in-flight events may take to finish (default: shutdown.ts). */
  shutdownGraceSeconds?: number;
  logLevel: LogLevel;
}

export type Env = Record<string, string | undefined>;
export type ReadFile = (file: string) => string;

const BUILT_IN = 'built-in defaults';
const DEFAULT_PARTITION = '{yyyy}{mm}{dd}';
const DEFAULT_ROUTES: z.infer<typeof routeSchema>[] = [
  { match: '**/*.csv' },
  { match: '**/*.csv.gz' },
];

/** Reads INGEST_CONFIG (or ./ingest.yaml when present) and the environment into a checked Config. */
export function loadConfig(env: Env, readFile: ReadFile): Config {
  const settings = envSchema.safeParse(env);
  if (!settings.success) throw toConfigError('environment', settings.error, env);
  const explicit = env.INGEST_CONFIG || undefined;
  const file = explicit ?? 'ingest.yaml';
  let text: string | undefined;
  try {
    text = readFile(file);
  } catch (error) {
    if (explicit !== undefined || !isNotFound(error)) {
      throw new ConfigError(file, '(file)', `cannot be read: ${errorMessage(error)}`);
    }
  }
  const raw = text === undefined ? {} : (yamlText().parseYamlText(file, text) ?? {});
  const source = text === undefined ? BUILT_IN : file;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw toConfigError(source, parsed.error, raw);
  const doc = parsed.data;
  const baseDir = text === undefined ? '.' : path.dirname(file);
  const defaults = doc.defaults ?? {};
  const quarantinePrefix = doc.quarantine?.prefix ?? '_quarantine/';

  const routes = (doc.routes ?? DEFAULT_ROUTES).map((r, index): Route => {
    const field = (name: string) => `routes[${index}].${name}`;
    const write = r.write ?? defaults.write ?? 'append';
    const pattern = routePattern(source, field('match'), r.match, write, r.partition);
    const dataset = r.dataset ?? defaults.dataset ?? 'ingest';
    const partition = r.partition ?? (write === 'partition' ? DEFAULT_PARTITION : undefined);
    const templates: [TemplateKind, string, string | undefined][] = [
      ['dataset', r.dataset === undefined ? 'defaults.dataset' : field('dataset'), dataset],
      ['table', field('table'), r.table],
      ['partition', field('partition'), partition],
    ];
    for (const [kind, where, template] of templates) {
      if (template === undefined) continue;
      for (const used of placeholders(template)) {
        if (!pattern.names.includes(used)) {
          const problem = `uses {${used}}, which match "${r.match}" does not capture`;
          throw new ConfigError(source, where, problem);
        }
      }
      const problem = templateProblem(kind, template);
      if (problem) throw new ConfigError(source, where, problem);
    }
    const schemaPath = r.schema ?? defaults.schema ?? 'auto';
    const schemaField = r.schema ? field('schema') : 'defaults.schema';
    const csv = { ...DEFAULT_CSV, ...defaults.csv, ...r.csv };
    const match =
      r.columns ?? defaults.columns ?? (csv.skipLeadingRows > 0 ? 'byName' : 'byPosition');
    if (match === 'byName' && csv.skipLeadingRows === 0) {
      const where = r.columns ? field('columns') : 'defaults.columns';
      throw new ConfigError(
        source,
        where,
        'byName needs a header row, and csv.skipLeadingRows is 0: use byPosition, or skip the header row',
      );
    }
    return {
      index,
      match: r.match,
      pattern,
      dataset,
      table: r.table,
      write,
      partition,
      schema:
        schemaPath === 'auto'
          ? 'auto'
          : readSchema(source, schemaField, baseDir, schemaPath, readFile),
      csv,
      createDisposition: r.createDisposition ?? defaults.createDisposition ?? 'CREATE_IF_NEEDED',
      timePartitioning: r.timePartitioning,
      clustering: r.clustering,
      batch: batchOptions(write, defaults.batch, r.batch),
      columns: {
        match,
        newColumns:
          r.newColumns ?? defaults.newColumns ?? (schemaPath === 'auto' ? 'add' : 'reject'),
        relax: r.relaxColumns ?? defaults.relaxColumns ?? false,
      },
    };
  });

  return {
    source,
    backend: settings.data.INGEST_BACKEND,
    localDataDir: settings.data.LOCAL_DATA_DIR,
    project: doc.project ?? settings.data.GOOGLE_CLOUD_PROJECT,
    location: doc.location ?? 'US',
    buckets: doc.buckets,
    quarantinePrefix,
    reprocess: { topic: doc.reprocess?.topic, inlineLimit: doc.reprocess?.inlineLimit ?? 100 },
    routes,
    waitSeconds: settings.data.INGEST_WAIT_SECONDS,
    maxBodyBytes: settings.data.INGEST_MAX_BODY_BYTES,
    maxObjectBytes: settings.data.INGEST_MAX_OBJECT_BYTES,
    claimGraceSeconds: settings.data.INGEST_CLAIM_GRACE_SECONDS,
    shutdownGraceSeconds: settings.data.INGEST_SHUTDOWN_GRACE_SECONDS,
    logLevel: settings.data.LOG_LEVEL,
  };
}

function batchOptions(
  write: WriteMode,
  defaults: z.infer<typeof batchSchema> | undefined,
  route: z.infer<typeof batchSchema> | undefined,
): BatchOptions | false {
  const chosen = route ?? defaults;
  if (write !== 'append' || chosen === false) return false;
  // A route's own batch settings refine the defaults' field by field.
  const base = defaults === false ? {} : (defaults ?? {});
  return { ...DEFAULT_BATCH, ...base, ...(route === false ? {} : route) };
}

function readSchema(
  source: string,
  field: string,
  baseDir: string,
  schemaPath: string,
  readFile: ReadFile,
): SchemaField[] {
  const file = path.resolve(baseDir, schemaPath);
  let json: unknown;
  try {
    json = JSON.parse(readFile(file));
  } catch (error) {
    throw new ConfigError(
      source,
      field,
      `schema file ${schemaPath} cannot be used: ${errorMessage(error)}`,
    );
  }
  // BigQuery's own schema files are a bare field array; `bq show --schema` and table resources wrap it.
  const fields = Array.isArray(json) ? json : (json as { fields?: unknown } | null)?.fields;
  if (fields === undefined) {
    const problem = `schema file ${schemaPath}: must be a list of fields or {"fields": [...]}`;
    throw new ConfigError(source, field, problem);
  }
  const parsed = bigQuerySchemaFile.safeParse(fields);
  if (!parsed.success) {
    const { path: at, problem } = describeIssue(parsed.error, fields);
    const where = at.length > 0 ? fieldPath(at) : '';
    throw new ConfigError(source, field, `schema file ${schemaPath}${where}: ${problem}`);
  }
  return parsed.data;
}

/**
 * A route's match, compiled and checked: it must be able to match a CSV object, and a partition
 * route left to the default partition template must capture the date that template fills.
 */
function routePattern(
  source: string,
  field: string,
  match: string,
  write: WriteMode,
  partition: string | undefined,
): CompiledPattern {
  let pattern: CompiledPattern;
  try {
    pattern = compilePattern(match);
  } catch (error) {
    throw new ConfigError(source, field, errorMessage(error));
  }
  if (!canMatchCsv(match)) {
    const problem = `"${match}" can never match a CSV object: only names ending in .csv or .csv.gz are loaded`;
    throw new ConfigError(source, field, problem);
  }
  const missing = placeholders(DEFAULT_PARTITION).filter((part) => !pattern.names.includes(part));
  if (write === 'partition' && partition === undefined && missing.length > 0) {
    const problem = `"${match}" does not capture ${missing.map((part) => `{${part}}`).join(', ')}: a partition route takes each file's date from {yyyy}, {mm} and {dd} in its match (e.g. "sales/{yyyy}/{mm}/{dd}/*.csv"), or from a partition template of its own`;
    throw new ConfigError(source, field, problem);
  }
  return pattern;
}

/** Whether a route's match can match some name ending in .csv or .csv.gz (in any case). */
function canMatchCsv(match: string): boolean {
  const last = match.split('/').at(-1) ?? '';
  if (last === '**') return true;
  const parts = last.toLowerCase().split(/\*|\{[^}]*\}/);
  const tail = parts.at(-1) ?? '';
  const open = parts.length > 1; // a wildcard or placeholder before the fixed tail
  return ['.csv', '.csv.gz'].some(
    (ending) => tail.endsWith(ending) || (open && ending.endsWith(tail)),
  );
}

export function placeholders(template: string): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] ?? '');
}

type TemplateKind = 'dataset' | 'table' | 'partition';

/**
 * Why a template can never fill to a valid name, or undefined. Every placeholder captures at least
 * one character, so the shortest fill puts one character in each.
 */
function templateProblem(kind: TemplateKind, template: string): string | undefined {
  const fixed = template.split(/\{[^}]*\}/).join('');
  const count = placeholders(template).length;
  if (kind === 'partition') {
    const what = `"${template}" can never be a partition date (YYYYMMDD)`;
    const bad = /[^0-9]/.exec(fixed);
    if (bad) return `${what}: "${bad[0]}" is not allowed (digits only)`;
    if (fixed.length + count > 8) return `${what}: it has at least ${fixed.length + count} digits`;
    if (count === 0 && !isPartitionDate(template)) return `${what}: it is not a calendar date`;
    return undefined;
  }
  const what = `"${template}" can never be a valid BigQuery ${kind} name`;
  const bad = /[^A-Za-z0-9_]/.exec(fixed);
  if (bad) return `${what}: "${bad[0]}" is not allowed (letters, digits and underscores only)`;
  if (!BIGQUERY_NAME.test(template.replace(/\{[^}]*\}/g, 'x')))
    return `${what}: it has more than 1024 characters`;
  return undefined;
}

/** The YAML parser takes tens of milliseconds to load: a start without a config file does without it. */
function yamlText(): typeof YamlText {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./yaml-text') as typeof YamlText;
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}
