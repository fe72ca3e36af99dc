import { TransientError } from '../../core/errors';
import { httpStatusOf } from '../../core/google-errors';
import type { GroupsPlan } from '../../schema/columns';
import { tableId, type LoadJob } from '../warehouse';
import type { BigQueryContext } from './context';
import type { Planned } from './plan';
import { stagingCalls } from './staged-calls';
import type { ColumnCache } from './table-columns';

/**
 * The destination made ready for a lineage job's rows: created with the plan's columns (the lineage
 * columns among them), the route's partitioning and clustering (`_source_uri` unless the route names
 * its own) when it does not exist; given the columns it lacks, NULLABLE, and its relaxed ones by
 * tables.patch ("Modifying table schemas": adding columns, relaxing a column's mode,
 * https://cloud.google.com/bigquery/docs/managing-table-schemas) when it does.
 */
export async function prepareTable(
  ctx: BigQueryContext,
  columns: ColumnCache,
  job: LoadJob,
  { plan, before }: Planned,
): Promise<void> {
  const { table, added, relaxed } = plan as GroupsPlan;
  const calls = stagingCalls(ctx, job);
  if (before && before.length > 0 && added.length === 0 && relaxed.length === 0) return;
  columns.forget(job.destination);
  const destination = { ...job.destination, partition: undefined };
  if (before) return calls.patchSchema(destination, table);
  try {
    await calls.createTable(destination, table, job);
  } catch (error) {
    if (httpStatusOf((error as Error).cause) !== 409) throw error;
    // Created meanwhile by another job: what it lacks of this plan is added, if the types agree.
    const now = (await columns.tableColumns(job.destination, true)) ?? [];
    const key = (name: string) => name.toLowerCase();
    const found = new Map(now.map((c) => [key(c.name), c]));
    const clash = table.find((c) => {
      const there = found.get(key(c.name));
      return there && canonicalType(there.type) !== canonicalType(c.type);
    });
    if (clash) {
      throw new TransientError(
        `${tableId(job.destination)} was created by another writer meanwhile, with column ${clash.name} of another type; redelivery plans again from its columns`,
        { cause: error },
      );
    }
    const missing = table.filter((c) => !found.has(key(c.name)));
    columns.forget(job.destination);
    if (missing.length > 0)
      await calls.patchSchema(destination, [
        ...now,
        ...missing.map((c) => ({ ...c, mode: 'NULLABLE' as const })),
      ]);
  }
}

const ALIASES: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };
const canonicalType = (type: string) => ALIASES[type] ?? type;
