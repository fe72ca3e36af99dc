import type { TableColumn } from './columns';

/** What a load changed in a table's schema, worded for people: `added column extra STRING`. */
export function schemaChanges(before: TableColumn[], after: TableColumn[]): string[] {
  const old = new Map(before.map((c) => [c.name.toLowerCase(), c]));
  const now = new Set(after.map((c) => c.name.toLowerCase()));
  const changes: string[] = [];
  for (const column of after) {
    const was = old.get(column.name.toLowerCase());
    if (!was) changes.push(`added column ${column.name} ${column.type}`);
    else if (canonicalType(was.type) !== canonicalType(column.type))
      changes.push(`changed column ${column.name} from ${was.type} to ${column.type}`);
    else if (was.mode !== column.mode)
      changes.push(
        `${column.mode === 'NULLABLE' ? 'relaxed' : 'required'} column ${column.name} to ${column.mode}`,
      );
  }
  for (const column of before) {
    if (!now.has(column.name.toLowerCase())) changes.push(`dropped column ${column.name}`);
  }
  return changes;
}

const ALIASES: Record<string, string> = {
  INTEGER: 'INT64',
  FLOAT: 'FLOAT64',
  BOOLEAN: 'BOOL',
  RECORD: 'STRUCT',
};

/** BigQuery's legacy and standard names of one type compare equal. */
function canonicalType(type: string): string {
  return ALIASES[type] ?? type;
}

/*
 * Column names BigQuery accepts (docs "Specify a schema", column names and flexible column names):
 * at most 300 characters; letters, marks, numbers, connectors, dashes, spaces and & % = + : ' < > # |
 * in flexible names; none starting with a reserved prefix.
 */
