import { ConfigError, errorMessage } from '../core/errors';
import { compilePattern, type CompiledPattern } from './pattern';
import { DEFAULT_PARTITION, placeholders } from './templates';
import type { WriteMode } from './yaml-schema';

/**
 * A route's match, compiled and checked: it must be able to match a CSV object, and a partition
 * route left to the default partition template must capture the date that template fills.
 */
export function routePattern(
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
