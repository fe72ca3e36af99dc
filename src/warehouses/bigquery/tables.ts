import type { BigQuery } from '@google-cloud/bigquery';
import type bigquery from '@google-cloud/bigquery/build/src/types';
import type { TableInfo } from '../warehouse';

type Call = <T>(work: Promise<T>, what: string) => Promise<T>;

export async function listTables(client: BigQuery, call: Call): Promise<TableInfo[]> {
  const out: TableInfo[] = [];
  const [datasets] = await call(client.getDatasets(), 'listing datasets');
  for (const dataset of datasets) {
    const [tables] = await call(dataset.getTables(), `listing tables of ${dataset.id}`);
    for (const table of tables) {
      // tables.list carries no row counts; tables.get does (numRows, an int64 string).
      const [metadata] = await call(table.getMetadata(), `reading table ${dataset.id}.${table.id}`);
      out.push({
        table: `${dataset.id}.${table.id}`,
        rows: Number((metadata as bigquery.ITable).numRows ?? 0),
      });
    }
  }
  return out.sort((a, b) => a.table.localeCompare(b.table));
}
