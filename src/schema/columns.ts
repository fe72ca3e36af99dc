import type { ColumnRules, SchemaField, WriteMode } from '../config';
import { badName } from './column-names';
import { detectType } from './detect-type';

/** A source's column names (`string_field_N` without a header row) and the data rows of its head. */
export interface SourceHead {
  header: string[];
  rows: string[][];
}

/** A table column as BigQuery describes it. */
export interface TableColumn {
  name: string;
  /** A BigQuery type name (STRING, INT64, …). */
  type: string;
  mode: 'NULLABLE' | 'REQUIRED';
  description?: string;
}

/** The columns a `lineage: true` route adds to its table: which object wrote each row, and when. */
export const LINEAGE_COLUMNS: readonly TableColumn[] = [
  { name: '_source_uri', type: 'STRING', mode: 'NULLABLE' },
  { name: '_source_generation', type: 'INT64', mode: 'NULLABLE' },
  { name: '_loaded_at', type: 'TIMESTAMP', mode: 'NULLABLE' },
];

export function isLineageColumn(name: string): boolean {
  return LINEAGE_COLUMNS.some((column) => column.name === name.toLowerCase());
}

/** How a file's columns load into a table, and what the table becomes. */
export interface ColumnPlan {
  /** For each column of the file, in file order, the table column it loads into. */
  into: string[];
  /** The table's columns after the load. */
  table: TableColumn[];
  added: TableColumn[];
  /** Columns made NULLABLE because the file lacks them. */
  relaxed: string[];
}

export interface PlanInput {
  /** The file's column names (`string_field_N` when it has no header row). */
  header: string[];
  /** The table's columns now, or the declared schema for a table still to be created. */
  table: TableColumn[];
  rules: ColumnRules;
  /** The type a new column gets, from the file's values in column `index`. */
  detect(index: number): string;
  /** `dataset.table`, for reasons. */
  tableId: string;
  /** A declared schema's columns may be added whatever `newColumns` says. */
  declared?: TableColumn[];
}

/** What a load job's sources and route decide about its columns. */
export interface LoadShape {
  write: WriteMode;
  schema: 'auto' | SchemaField[];
  columns: ColumnRules;
  /** The table also gets LINEAGE_COLUMNS, which no file may name. */
  lineage?: boolean;
}

/**
 * How a job's files load into the table as it is now (undefined: none yet): a plan; `fromFile` when the
 * file's own columns make the table (a new table, or `replace`, without a declared schema); or why
 * the files cannot load.
 */
export function planLoad(
  head: SourceHead,
  job: LoadShape,
  table: TableColumn[] | undefined,
  tableId: string,
): ColumnPlan | 'fromFile' | { rejected: string } {
  if (!job.lineage) return planDataColumns(head, job, table, tableId);
  const reserved = head.header.find(isLineageColumn);
  if (reserved !== undefined) {
    return {
      rejected: `column name "${reserved}" is a lineage column, which this route writes itself (lineage: true)`,
    };
  }
  const data = table?.filter((column) => !isLineageColumn(column.name));
  const plan = planDataColumns(head, job, data, tableId);
  if (plan === 'fromFile' || 'rejected' in plan) return plan;
  return withLineage(plan, job.write === 'replace' || !table?.length ? [] : table);
}

/** A data columns' plan with the lineage columns kept where the table has them and added where not. */
function withLineage(plan: ColumnPlan, before: TableColumn[]): ColumnPlan {
  const key = (column: TableColumn) => column.name.toLowerCase();
  const planned = new Map(plan.table.map((column) => [key(column), column]));
  const had = new Set(before.map(key));
  const missing = LINEAGE_COLUMNS.filter((column) => !had.has(column.name));
  const table = [
    ...before.map((column) => planned.get(key(column)) ?? column),
    ...plan.table.filter((column) => !had.has(key(column))),
    ...missing,
  ];
  return { ...plan, table, added: before.length ? [...plan.added, ...missing] : plan.added };
}

function planDataColumns(
  head: SourceHead,
  job: LoadShape,
  table: TableColumn[] | undefined,
  tableId: string,
): ColumnPlan | 'fromFile' | { rejected: string } {
  const declared = job.schema === 'auto' ? undefined : declaredColumns(job.schema);
  // A table without columns (created empty) takes them from the file, as a new one does.
  const base = job.write === 'replace' || !table?.length ? declared : table;
  if (!base) {
    const problem = badName(head.header);
    return problem ? { rejected: problem } : 'fromFile';
  }
  const declaredType = new Map(declared?.map((c) => [c.name.toLowerCase(), c.type]));
  return planColumns({
    header: head.header,
    table: base,
    rules: job.columns,
    tableId,
    declared,
    detect: (i) =>
      declaredType.get(head.header[i]?.toLowerCase() ?? '') ??
      detectType(head.rows.map((row) => row[i] ?? '')),
  });
}

/** A job's sources that share one header (names compared without regard to case), in source order. */
export interface SourceGroup {
  /** The sources' indexes in the job. */
  indexes: number[];
  head: SourceHead;
}

export function groupByHeader(heads: SourceHead[]): SourceGroup[] {
  const groups = new Map<string, SourceGroup>();
  heads.forEach((head, index) => {
    const shape = head.header.map((name) => name.toLowerCase()).join('\0');
    const group = groups.get(shape);
    if (group) group.indexes.push(index);
    else groups.set(shape, { indexes: [index], head });
  });
  return [...groups.values()];
}

/** A job's plan when its sources have several headers: each group's columns, the table after all. */
export interface GroupsPlan extends ColumnPlan {
  /** Per group of sources that share a header, the table column each of its file columns loads into. */
  groups: { indexes: number[]; into: string[] }[];
}

/**
 * How the groups of a job's sources load, one after the other, into the table as it is now: each
 * group is planned against the table as the groups before it leave it, so a column one file adds is
 * there for the next, whatever order the files came in. `fromFile` when a single group makes the table
 * (the warehouse then reads the types itself); with several, the first group's types come from its
 * head. A group that cannot load is named by its sources' indexes.
 */
export function planGroups(
  groups: SourceGroup[],
  job: LoadShape,
  table: TableColumn[] | undefined,
  tableId: string,
): GroupsPlan | 'fromFile' | { rejected: string; indexes: number[] } {
  let current = table;
  const planned: GroupsPlan['groups'] = [];
  const added: TableColumn[] = [];
  const relaxed: string[] = [];
  for (const [i, group] of groups.entries()) {
    // After the first group the table exists: later groups evolve it by the route's rules.
    const shape = i === 0 ? job : { ...job, write: 'append' as const };
    let plan = planLoad(group.head, shape, current, tableId);
    if (plan === 'fromFile') {
      if (groups.length === 1) return 'fromFile';
      const columns = group.head.header.map((name, c) => ({
        name,
        type: detectType(group.head.rows.map((row) => row[c] ?? '')),
        mode: 'NULLABLE' as const,
      }));
      plan = { into: group.head.header, table: columns, added: columns, relaxed: [] };
    }
    if ('rejected' in plan) return { rejected: plan.rejected, indexes: group.indexes };
    planned.push({ indexes: group.indexes, into: plan.into });
    added.push(...plan.added);
    relaxed.push(...plan.relaxed.filter((name) => !added.some((c) => c.name === name)));
    current = plan.table;
  }
  return { into: planned[0]?.into ?? [], groups: planned, table: current ?? [], added, relaxed };
}

/**
 * Matches a file's columns to its table's under the route's rules: the plan, or why the file cannot
 * load (naming the column). Names compare as BigQuery compares them, without regard to case.
 */
export function planColumns(input: PlanInput): ColumnPlan | { rejected: string } {
  const { header, table, rules, tableId } = input;
  const problem = badName(header);
  if (problem) return { rejected: problem };
  const fresh = (i: number): TableColumn => ({
    name: header[i] as string,
    type: input.detect(i),
    mode: 'NULLABLE',
  });
  let into: string[];
  let added: TableColumn[];
  let missing: TableColumn[];
  if (rules.match === 'byPosition') {
    if (header.length < table.length) {
      return {
        rejected: `the file has ${header.length} columns and table ${tableId} has ${table.length} (${names(table)}); with columns: byPosition every column must be in the file`,
      };
    }
    added = header.slice(table.length).map((_, i) => fresh(table.length + i));
    into = [...table.map((c) => c.name), ...added.map((c) => c.name)];
    missing = [];
  } else {
    const byKey = new Map(table.map((c) => [c.name.toLowerCase(), c]));
    const present = new Set(header.map((h) => h.toLowerCase()));
    added = header.flatMap((h, i) => (byKey.has(h.toLowerCase()) ? [] : [fresh(i)]));
    into = header.map((h) => byKey.get(h.toLowerCase())?.name ?? h);
    missing = table.filter((c) => !present.has(c.name.toLowerCase()));
  }
  const allowed = new Set(input.declared?.map((c) => c.name.toLowerCase()));
  const unexpected = added.filter((c) => !allowed.has(c.name.toLowerCase()));
  if (unexpected.length > 0 && rules.newColumns === 'reject') {
    return {
      rejected: `column${plural(unexpected)} ${quoted(unexpected)} ${unexpected.length === 1 ? 'is' : 'are'} not in table ${tableId} (newColumns: reject)`,
    };
  }
  const required = missing.filter((c) => c.mode === 'REQUIRED');
  if (required.length > 0 && !rules.relax) {
    return {
      rejected: `column${plural(required)} ${quoted(required)} of table ${tableId} ${required.length === 1 ? 'is' : 'are'} REQUIRED and missing from the file (relaxColumns: true would make ${required.length === 1 ? 'it' : 'them'} NULLABLE)`,
    };
  }
  const relaxed = new Set(required.map((c) => c.name));
  const after = [
    ...table.map((c) => (relaxed.has(c.name) ? { ...c, mode: 'NULLABLE' as const } : c)),
    ...added,
  ];
  return { into, table: after, added, relaxed: [...relaxed] };
}

/** The declared schema's columns. */
function declaredColumns(schema: SchemaField[]): TableColumn[] {
  return schema.map((f) => ({
    name: f.name,
    type: f.type,
    mode: f.mode ?? 'NULLABLE',
    ...(f.description ? { description: f.description } : {}),
  }));
}

function names(columns: TableColumn[]): string {
  return columns.map((c) => c.name).join(', ');
}

function quoted(columns: TableColumn[]): string {
  return columns.map((c) => `"${c.name}"`).join(', ');
}

function plural(list: unknown[]): string {
  return list.length === 1 ? '' : 's';
}
