import {
  LINEAGE_COLUMNS,
  groupByHeader,
  planGroups,
  type GroupsPlan,
  type SourceGroup,
  type TableColumn,
} from '../../schema/columns';
import { schemaChanges } from '../../schema/schema-changes';
import { detectType } from '../../schema/detect-type';
import { gsUri } from '../../stores/store';
import { tableId, type ClaimedLoadResult, type LoadJob } from '../warehouse';
import type { BigQueryContext } from './context';
import { readHead } from './head';
import { unloadable } from './job-copies';
import type { ColumnCache } from './table-columns';

/** A job's column plan and the table's columns it was made from. */
export interface Planned {
  plan: GroupsPlan | 'fromFile';
  before: TableColumn[] | undefined;
}

/** How the job's files meet the table: its plan and the columns it was made from, or why not. */
export async function planJob(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
): Promise<Planned | { rejected: string }> {
  const badName = unloadable(ctx, job);
  if (badName) return { rejected: badName };
  let heads = job.heads;
  if (!heads) {
    const first = job.head ?? (await readHead(ctx, job));
    if ('problem' in first) return { rejected: first.problem };
    heads = [first];
    // A coalesced job's members were grouped by header already.
    for (let i = 1; i < job.sources.length; i++) {
      const head = job.claimed ? first : await readHead(ctx, job, i);
      if ('problem' in head) return { rejected: head.problem };
      heads.push(head);
    }
  }
  const groups = groupByHeader(heads);
  const id = tableId(job.destination);
  const planWith = (table: TableColumn[] | undefined) => {
    const plan = planGroups(groups, job, table, id);
    if (plan === 'fromFile') return job.lineage ? fromHead(groups[0] as SourceGroup) : plan;
    if (!('rejected' in plan) || groups.length === 1) return plan;
    return {
      rejected: `${plan.rejected} (${plan.indexes.map((i) => gsUri(job.sources[i]!)).join(', ')})`,
    };
  };
  const before = await columns.tableColumns(job.destination);
  const plan = planWith(before);
  if (plan !== 'fromFile' && 'rejected' in plan) {
    // A stale cache never rejects a file: ask the table itself.
    const fresh = await columns.tableColumns(job.destination, true);
    const again = planWith(fresh);
    if (again !== 'fromFile' && 'rejected' in again) return again;
    return { plan: again, before: fresh };
  }
  return { plan, before };
}

/**
 * A new table's columns from the file's head, as for a job of several headers (planGroups): a lineage
 * job creates its staging tables and its table with them before any load, so it never loads `fromFile`
 * (BigQuery's autodetect).
 */
function fromHead(group: SourceGroup): GroupsPlan {
  const { header, rows } = group.head;
  const columns = header.map((name, c) => ({
    name,
    type: detectType(rows.map((row) => row[c] ?? '')),
    mode: 'NULLABLE' as const,
  }));
  const table = [...columns, ...LINEAGE_COLUMNS];
  return {
    into: header,
    table,
    added: table,
    relaxed: [],
    groups: [{ indexes: group.indexes, into: header }],
  };
}

/** A loaded result with what the job changed in the table's schema, read back when it changed any. */
export async function withChanges<R extends ClaimedLoadResult>(
  columns: ColumnCache,
  result: R,
  job: LoadJob,
  { plan, before }: Planned,
): Promise<R> {
  const changing =
    plan === 'fromFile' ||
    !before ||
    job.write === 'replace' ||
    plan.added.length > 0 ||
    plan.relaxed.length > 0;
  if (!changing) return result;
  columns.forget(job.destination);
  if (result.outcome !== 'loaded' || !before) return result;
  const after = await columns.tableColumns(job.destination).catch(() => undefined);
  const changes = after ? schemaChanges(before, after) : [];
  return changes.length > 0 ? { ...result, schemaChanges: changes } : result;
}
