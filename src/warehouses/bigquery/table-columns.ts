import type bigquery from '@google-cloud/bigquery/build/src/types';
import type { TableColumn } from '../../schema/columns';
import { TransientError } from '../../core/errors';
import { httpStatusOf } from '../../core/google-errors';
import { tableId, type Destination } from '../warehouse';
import type { BigQueryContext } from './context';
import { toWarehouseError } from './errors';

// How long this instance trusts the columns it read of a table (a load that disagrees reads them sooner).
const COLUMN_CACHE_MS = 5 * 60_000;

/** The table's columns, cached per instance; `forget` drops a table whose columns a job changed. */
export interface ColumnCache {
  tableColumns(destination: Destination, fresh?: boolean): Promise<TableColumn[] | undefined>;
  forget(destination: Destination): void;
}

export function createColumnCache(ctx: BigQueryContext): ColumnCache {
  const columnCache = new Map<
    string,
    { at: number; columns: Promise<TableColumn[] | undefined> }
  >();
  const forget = (destination: Destination) => columnCache.delete(tableId(destination));

  function tableColumns(
    destination: Destination,
    fresh = false,
  ): Promise<TableColumn[] | undefined> {
    const key = tableId(destination);
    const cached = columnCache.get(key);
    if (!fresh && cached && Date.now() - cached.at < COLUMN_CACHE_MS) return cached.columns;
    const columns = readTableColumns(ctx, destination);
    columnCache.set(key, { at: Date.now(), columns });
    columns.catch(() => columnCache.delete(key));
    return columns;
  }
  return { tableColumns, forget };
}

async function readTableColumns(
  ctx: BigQueryContext,
  destination: Destination,
): Promise<TableColumn[] | undefined> {
  const project = destination.project ?? ctx.defaultProject;
  const table = ctx.client
    .dataset(destination.dataset, { projectId: project })
    .table(destination.table);
  const what = `reading table ${tableId(destination)}`;
  try {
    const [metadata] = await ctx.call(table.getMetadata(), what);
    const fields = (metadata as bigquery.ITable).schema?.fields ?? [];
    return fields.map((field) => ({
      name: field.name ?? '',
      type: field.type ?? 'STRING',
      mode: field.mode === 'REQUIRED' ? 'REQUIRED' : 'NULLABLE',
    }));
  } catch (error) {
    if (error instanceof TransientError) throw error;
    if (httpStatusOf(error) === 404) return undefined;
    throw toWarehouseError(error, what);
  }
}
