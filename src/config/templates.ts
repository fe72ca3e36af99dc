import { BIGQUERY_NAME, isPartitionDate } from '../core/names';

export const DEFAULT_PARTITION = '{yyyy}{mm}{dd}';

export function placeholders(template: string): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1] ?? '');
}

export type TemplateKind = 'dataset' | 'table' | 'partition';

/**
 * Why a template can never fill to a valid name, or undefined. Every placeholder captures at least
 * one character, so the shortest fill puts one character in each.
 */
export function templateProblem(kind: TemplateKind, template: string): string | undefined {
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
