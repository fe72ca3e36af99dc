import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import type { LoadJob } from '../warehouse';
import type { Column } from './catalog';
import { readCsvOptions, rowProblem, type Reads } from './csv';

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
  { paths, compressions }: Reads,
  groups: { indexes: number[]; columns: Column[] }[],
  written: number,
): Promise<number[] | undefined> {
  const counts = new Map<string, number>();
  const lenient = job.csv.maxBadRecords > 0;
  for (const { indexes, columns } of groups) {
    // Under maxBadRecords, malformed rows are skipped by the reader and refused values by the filter.
    const kept = lenient ? ` WHERE ${rowProblem(columns)} IS NULL` : '';
    for (const compression of ['none', 'gzip'] as const) {
      const group = indexes
        .filter((i) => compressions[i] === compression)
        .map((i) => paths[i] as string);
      if (group.length === 0) continue;
      const options =
        readCsvOptions(job, columns, compression, lenient ? 'skip' : 'fail') +
        `, filename='${SOURCE_COLUMN}'`;
      const reader = await c.runAndReadAll(
        `SELECT ${SOURCE_COLUMN}, count(*) FROM read_csv($1, ${options})${kept} GROUP BY ALL`,
        [listValue(group)],
      );
      for (const [path, count] of reader.getRowsJS()) counts.set(String(path), Number(count));
    }
  }
  const rows = paths.map((path) => counts.get(path) ?? 0);
  return rows.reduce((sum, n) => sum + n, 0) === written ? rows : undefined;
}
