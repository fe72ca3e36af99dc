import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import type { BadRecords, LoadJob } from '../warehouse';
import { REJECTS_SCAN, REJECTS_TABLE, type Locate } from './csv';
import { uriForPath } from './errors';

/** Clears what the last read with `maxBadRecords` left behind. */
export const DROP_REJECTS = [REJECTS_TABLE, REJECTS_SCAN]
  .map((table) => `DROP TABLE IF EXISTS temp.${table};`)
  .join(' ');

/** The rows the CSV reader skipped (malformed rows), and the first of them. */
export async function badRows(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
): Promise<BadRecords> {
  const reader = await c.runAndReadAll(
    `SELECT (SELECT count(*) FROM (SELECT DISTINCT scan_id, file_id, line FROM temp.${REJECTS_TABLE})) AS bad,
            e.line, e.error_message, s.file_path
     FROM temp.${REJECTS_TABLE} e JOIN temp.${REJECTS_SCAN} s USING (scan_id, file_id)
     ORDER BY s.file_path, e.line LIMIT 1`,
  );
  const [count, line, message, file] = reader.getRowsJS()[0] ?? [0, 0, '', ''];
  const uri = uriForPath(job, paths, String(file));
  return { count: Number(count), first: `${String(message)} (line ${String(line)} of ${uri})` };
}

/** The rows of the group whose values cannot load, and where the first of them is. */
export async function refusedRows(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  locate: Locate,
): Promise<BadRecords> {
  const reader = await c.runAndReadAll(locate.count, [listValue(locate.group)]);
  const count = Number(reader.getRowsJS()[0]?.[0] ?? 0);
  return { count, first: count > 0 ? ((await firstRefused(c, job, paths, locate)) ?? '') : '' };
}

/**
 * Why the first row of these sources that cannot load is refused, and which row of which source it
 * is: `... (row 2 of gs://b/x.csv)`, by reading them again one at a time, in order. Rows the reader
 * skipped as malformed are not counted.
 */
export async function firstRefused(
  c: DuckDBConnection,
  job: LoadJob,
  paths: string[],
  locate: Locate,
): Promise<string | undefined> {
  for (const path of locate.group) {
    const found = await c.runAndReadAll(
      `SELECT n, problem FROM (${locate.sql}) WHERE problem IS NOT NULL ORDER BY n LIMIT 1`,
      [listValue([path])],
    );
    const [row, problem] = found.getRowsJS()[0] ?? [];
    if (row !== undefined) {
      return `${String(problem)} (row ${String(row)} of ${uriForPath(job, paths, path)})`;
    }
  }
  return undefined;
}

/** Bad rows of several reads as one count, with the first reason found. */
export function combine(parts: BadRecords[]): BadRecords {
  const count = parts.reduce((sum, part) => sum + part.count, 0);
  return { count, first: parts.find((part) => part.count > 0)?.first ?? '' };
}
