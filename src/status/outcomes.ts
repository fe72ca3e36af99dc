import type { HistoryEntry } from '../history/entry';
import type { IngestResult } from '../objects/outcomes';

/** One object's outcome as the status page lists it. */
export interface OutcomeRow {
  /** ISO 8601 */
  at: string;
  uri: string;
  generation?: string;
  outcome: string;
  destination?: string;
  /** Rows of the whole job, which loaded `jobObjects` objects together when more than one. */
  rows?: number;
  jobObjects?: number;
  /** The object's own rows, where the warehouse counted them in a job of several. */
  objectRows?: number;
  /** On a lineage route: the rows of the object's earlier load that this load replaced. */
  replacedRows?: number;
  jobId?: string;
  reason?: string;
  /** What the load changed in the table's schema (`added column extra STRING`). */
  schemaChanges?: string[];
  /** A notification of this outcome went out (`notify` in ingest.yaml). */
  notified?: true;
}

/**
 * The latest outcomes of this receiver, newest first, skipped and duplicate ones included, and below
 * them what the ledger recorded before it started. `version` changes with every change.
 */
export function createOutcomeLog(limit = 100) {
  let rows: OutcomeRow[] = [];
  let version = 0;
  const keyOf = (r: OutcomeRow) => JSON.stringify([r.uri, r.outcome, r.jobId ?? '']);
  return {
    record(result: IngestResult, at = new Date()): void {
      const recorded = result.objects.map((o): OutcomeRow => ({
        at: at.toISOString(),
        uri: o.uri,
        generation: o.generation,
        outcome: o.outcome,
        destination: o.destination,
        rows: o.rows,
        jobObjects: o.jobObjects,
        objectRows: o.objectRows,
        replacedRows: o.replacedRows,
        jobId: o.jobId,
        reason: o.reason,
        schemaChanges: o.schemaChanges,
        notified: o.notified,
      }));
      if (recorded.length === 0) return;
      rows = [...recorded, ...rows].slice(0, limit);
      version += 1;
    },
    /** Ledger entries (newest first) of objects not listed yet, one row per object, below the live rows. */
    seed(entries: HistoryEntry[]): void {
      const known = new Set(rows.map(keyOf));
      const older = entries.flatMap((e) =>
        e.objects.map((uri): OutcomeRow => ({
          at: e.time,
          uri,
          outcome: e.outcome,
          destination: e.destination,
          rows: e.rows,
          jobObjects: e.objects.length > 1 ? e.objects.length : undefined,
          jobId: e.jobId,
          reason: e.reason,
        })),
      );
      const fresh = older.filter((r) => !known.has(keyOf(r)));
      if (fresh.length === 0) return;
      rows = [...rows, ...fresh]
        .sort((a, b) => Date.parse(b.at) - Date.parse(a.at))
        .slice(0, limit);
      version += 1;
    },
    list: (): readonly OutcomeRow[] => rows,
    version: () => version,
  };
}

export type OutcomeLog = ReturnType<typeof createOutcomeLog>;
