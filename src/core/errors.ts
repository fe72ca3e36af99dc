import type { z } from 'zod/v3';

/** A request the service cannot act on: answered 400 (or 413) and never retried. */
export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A failure that may pass: answered 503 so that Eventarc or Pub/Sub redelivers. */
export class TransientError extends Error {
  override readonly name = 'TransientError';
  readonly retryable = true;
}

/** A configuration that cannot be used: stops the process at start. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly field: string,
    problem: string,
  ) {
    super(`${file}: ${field}: ${problem}`);
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

/** `routes[0].csv.delimiter`: where in a configuration document a problem is. */
export function fieldPath(parts: readonly PropertyKey[]): string {
  if (parts.length === 0) return '(root)';
  return parts
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`))
    .join('');
}

/** Where in a document the first schema problem is and what is wrong there, worded the same everywhere. */
export function describeIssue(
  error: z.ZodError,
  input: unknown,
): { path: PropertyKey[]; problem: string } {
  const issue = error.issues[0];
  if (!issue) return { path: [], problem: 'is invalid' };
  if (issue.code === 'unrecognized_keys')
    return { path: [...issue.path, issue.keys[0] ?? ''], problem: 'is not a known field' };
  const value = valueAt(input, issue.path);
  if (value === undefined) return { path: issue.path, problem: 'is missing' };
  const placeholder = unquotedPlaceholder(value);
  if (issue.code === 'invalid_type' && issue.expected === 'string' && placeholder) {
    const key = issue.path.at(-1);
    const hint = typeof key === 'string' ? `${key}: "${placeholder}"` : `"${placeholder}"`;
    const problem = `${placeholder} is read by YAML as a mapping: quote it: ${hint}`;
    return { path: issue.path, problem };
  }
  return { path: issue.path, problem: issue.message };
}

/** A schema problem in a configuration file (or the environment) as one line naming the field. */
export function toConfigError(file: string, error: z.ZodError, input: unknown): ConfigError {
  const { path, problem } = describeIssue(error, input);
  return new ConfigError(file, fieldPath(path), problem);
}

/** `{table}` written without quotes: YAML reads it as the mapping {table: null}. */
function unquotedPlaceholder(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  const [only] = entries;
  return entries.length === 1 && only && only[1] === null ? `{${only[0]}}` : undefined;
}

function valueAt(node: unknown, at: readonly PropertyKey[]): unknown {
  let current = node;
  for (const key of at) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
