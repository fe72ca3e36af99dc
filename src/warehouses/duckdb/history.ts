import type { DuckDBConnection } from '@duckdb/node-api';
import type { HistoryEntry } from '../../history/entry';

/**
 * The ledger's loads and rejections (`rejectedOnly`: its rejections) since `since`, newest first, at
 * most `limit`. Works on a read-only session of a file written by any version: a file without the
 * ledger has no history, and rejections recorded before they carried a destination show none.
 */
export async function readLedgerHistory(
  c: DuckDBConnection,
  since: Date,
  limit: number,
  rejectedOnly = false,
): Promise<HistoryEntry[]> {
  const columns = await ledgerColumns(c);
  const seconds = since.getTime() / 1000;
  const top = Math.max(0, Math.floor(limit));
  const entries: HistoryEntry[] = [];
  const loadColumns = columns.get('loads');
  if (loadColumns && !rejectedOnly) {
    // A lineage load's replaced rows, as the job's total (a file written before they were kept: none).
    const replaced = loadColumns.has('replaced_rows') ? 'list_sum(replaced_rows)' : 'NULL';
    const loads = await c.runAndReadAll(
      `SELECT epoch_ms(loaded_at), uris, destination, rows, job_id, ${replaced} FROM _ingest.loads
       WHERE loaded_at >= to_timestamp($1) ORDER BY loaded_at DESC LIMIT ${top}`,
      [seconds],
    );
    for (const [at, uris, destination, rows, jobId, replacedRows] of loads.getRowsJS()) {
      const entry: HistoryEntry = {
        time: new Date(Number(at)).toISOString(),
        objects: uris as string[],
        outcome: 'loaded',
        destination: String(destination),
        rows: Number(rows),
        jobId: String(jobId),
      };
      if (replacedRows !== null) entry.replacedRows = Number(replacedRows);
      entries.push(entry);
    }
  }
  const rejections = columns.get('rejections');
  if (rejections) {
    const destination = rejections.has('destination') ? 'destination' : 'NULL';
    const rejected = await c.runAndReadAll(
      `SELECT epoch_ms("at"), uris, ${destination}, job_id, reason FROM _ingest.rejections
       WHERE "at" >= to_timestamp($1) ORDER BY "at" DESC LIMIT ${top}`,
      [seconds],
    );
    for (const [at, uris, table, jobId, reason] of rejected.getRowsJS()) {
      const entry: HistoryEntry = {
        time: new Date(Number(at)).toISOString(),
        objects: uris as string[],
        outcome: 'rejected',
        reason: String(reason),
      };
      // Rejected before any job (a route that names no valid destination): neither is known.
      if (jobId !== null) entry.jobId = String(jobId);
      if (table !== null) entry.destination = String(table);
      entries.push(entry);
    }
  }
  return entries.sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, top);
}

/** The ledger's history tables and their columns. */
async function ledgerColumns(c: DuckDBConnection): Promise<Map<string, Set<string>>> {
  const reader = await c.runAndReadAll(
    `SELECT table_name, column_name FROM duckdb_columns()
     WHERE schema_name = '_ingest' AND table_name IN ('loads', 'rejections')`,
  );
  const tables = new Map<string, Set<string>>();
  for (const [table, column] of reader.getRowsJS()) {
    const set = tables.get(String(table)) ?? new Set<string>();
    set.add(String(column));
    tables.set(String(table), set);
  }
  return tables;
}
