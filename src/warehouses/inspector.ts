import type { HistoryEntry } from '../history/entry';

/** A table with its row count and columns, as the status page shows it. */
export interface TableDetail {
  /** `dataset.table` */
  table: string;
  rows: number;
  /** `type` is DuckDB's; `bigQueryType` the BigQuery type it stands for. */
  columns: { name: string; type: string; bigQueryType: string }[];
}

/** The first rows of a table, every value as text (null for NULL). */
export interface TablePreview {
  table: string;
  columns: string[];
  rows: (string | null)[][];
}

/**
 * Read-only views of a warehouse for people: what the status page and `history` show. The local
 * DuckDB warehouse offers it, running each read in its own queue between loads.
 */
export interface WarehouseInspector {
  tables(): Promise<TableDetail[]>;
  /** Undefined when there is no such table. */
  preview(table: string, limit: number): Promise<TablePreview | undefined>;
  /** Ledger entries (`rejectedOnly`: its rejections) since `since`, newest first, at most `limit`. */
  history(since: Date, limit: number, rejectedOnly?: boolean): Promise<HistoryEntry[]>;
}
