import * as path from 'node:path';
import { z } from 'zod/v3';
import { ConfigError, describeIssue, errorMessage, fieldPath } from '../core/errors';

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

export type ReadFile = (file: string) => string;

export function readSchema(
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
