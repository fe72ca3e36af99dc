import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import type { LoadJob } from '../warehouse';
import type { Column } from './catalog';
import { compressionOf, readCsvOptions } from './csv';
import { quote } from './sql';

// A name no CSV column is likely to have: the read adds it next to the file's columns.
const SOURCE_COLUMN = '_ingest_source_file';

/**
 * The rows each source of a job of several wrote, in the order of `job.sources`, counted by a second
 * read of the same files with the same options (bad rows skipped as the load skipped them).
 * Undefined when the counts do not add up to the rows the load wrote.
 */
export async function rowsPerSource(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  groups: { indexes: number[]; columns: Column[] }[],
  written: number,
): Promise<number[] | undefined> {
  const counts = new Map<string, number>();
  const counting = { ...job, csv: { ...job.csv, maxBadRecords: 0 } };
  for (const { indexes, columns } of groups) {
    // Rows are skipped for a value that does not fit its column only where the columns are read.
    const counted =
      job.csv.maxBadRecords > 0
        ? `count(row(${columns.map((column) => quote(column.name)).join(', ')}))`
        : 'count(*)';
    for (const compression of ['none', 'gzip'] as const) {
      const group = indexes
        .filter((i) => compressionOf(job.sources[i]) === compression)
        .map((i) => paths[i] as string);
      if (group.length === 0) continue;
      const options =
        readCsvOptions(counting, columns, compression) +
        `, ignore_errors=${job.csv.maxBadRecords > 0}, filename='${SOURCE_COLUMN}'`;
      const reader = await c.runAndReadAll(
        `SELECT ${SOURCE_COLUMN}, ${counted} FROM read_csv($1, ${options}) GROUP BY ALL`,
        [listValue(group)],
      );
      for (const [path, count] of reader.getRowsJS()) counts.set(String(path), Number(count));
    }
  }
  const rows = paths.map((path) => counts.get(path) ?? 0);
  return rows.reduce((sum, n) => sum + n, 0) === written ? rows : undefined;
}
