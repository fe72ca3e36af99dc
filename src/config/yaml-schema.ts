import { z } from 'zod/v3';
import { fieldPath } from '../core/errors';
import { BUCKET_NAME, DOMAIN_PROJECT_ID } from '../core/names';

export const WRITE_MODES = ['append', 'truncate', 'replace', 'partition'] as const;
export type WriteMode = (typeof WRITE_MODES)[number];
export const ENCODINGS = ['UTF-8', 'ISO-8859-1'] as const;
/** What a reason about text that is not UTF-8 suggests. */
export const LATIN1_HINT = 'set csv.encoding: ISO-8859-1 for Latin-1 files';

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

export const timePartitioningSchema = z
  .object({
    type: z.enum(['DAY', 'HOUR', 'MONTH', 'YEAR']),
    field: z.string().optional(),
    expirationMs: z.number().int().positive().optional(),
  })
  .strict();

const BATCH_RULE =
  'must be false (one load job per object) or a mapping of jobsPerDay, burst, maxFiles';
export const batchSchema = z.union(
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

/** The outcomes a `notify` may name; `[loaded, rejected]` when it names none. */
export const NOTIFY_OUTCOMES = ['loaded', 'rejected', 'skipped', 'duplicate', 'queued'] as const;
export type NotifyOutcome = (typeof NOTIFY_OUTCOMES)[number];
export const DEFAULT_NOTIFY_OUTCOMES: readonly NotifyOutcome[] = ['loaded', 'rejected'];

// A topic's full name; its id starts with a letter and has 3 to 255 of Pub/Sub's characters.
const TOPIC_NAME = /^projects\/[^/]+\/topics\/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/;
const notifyShape = {
  topic: z.string().regex(TOPIC_NAME, 'must be a full topic name: projects/P/topics/T'),
  outcomes: z
    .array(
      z.enum(NOTIFY_OUTCOMES, {
        errorMap: (_issue, ctx) => ({
          message: `is ${JSON.stringify(ctx.data)}: must be one of ${NOTIFY_OUTCOMES.join(', ')}`,
        }),
      }),
    )
    .min(1, 'must name at least one outcome'),
};
/** Top level: where every object's outcome is told; a route's own `notify` overrides it. */
export const notifySchema = z
  .object({ topic: notifyShape.topic, outcomes: notifyShape.outcomes.optional() })
  .strict();
const NOTIFY_RULE = 'must be false (no messages for this route) or a mapping of topic and outcomes';
/** On a route: false, or fields that override the top-level `notify` one by one. */
export const routeNotifySchema = z.union(
  [z.literal(false), z.object(notifyShape).partial().strict()],
  {
    errorMap: (issue, ctx) => {
      if (issue.code !== 'invalid_union') return { message: ctx.defaultError };
      // A mapping with a wrong field: name that field rather than the union.
      const inner = issue.unionErrors[1]?.issues[0];
      if (typeof ctx.data !== 'object' || ctx.data === null || !inner)
        return { message: `is ${JSON.stringify(ctx.data)}: ${NOTIFY_RULE}` };
      const where = fieldPath(inner.path.slice(issue.path.length));
      return { message: `${where} ${inner.message}` };
    },
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
  lineage: z.boolean(),
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
    lineage: loadOptionsShape.lineage,
  })
  .partial()
  .strict();
export const routeSchema = z
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
    lineage: loadOptionsShape.lineage.optional(),
    notify: routeNotifySchema.optional(),
  })
  .strict();
export const fileSchema = z
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
    notify: notifySchema.optional(),
  })
  .strict();
