/**
 * One line of load history: a load job (or a rejection recorded without one) with the objects it
 * read. Built from the local ledger or from BigQuery's job history; filtered here, printed by the CLI.
 */

/**
 * What became of a job. Skipped and duplicate objects leave no record in the ledger or in BigQuery's
 * job history, so they are not history.
 */
export const HISTORY_OUTCOMES = ['loaded', 'rejected', 'failed', 'running'] as const;
export type HistoryOutcome = (typeof HISTORY_OUTCOMES)[number];

export interface HistoryEntry {
  /** ISO 8601, UTC. */
  time: string;
  /** gs:// URIs; empty where the source does not say. */
  objects: string[];
  outcome: HistoryOutcome;
  destination?: string;
  rows?: number;
  /** On a lineage route: the rows of the objects' earlier loads that the job replaced. */
  replacedRows?: number;
  jobId?: string;
  reason?: string;
}

export interface HistoryFilter {
  since: Date;
  /** `table`, `dataset.table` or `project.dataset.table`. */
  table?: string;
  outcome?: HistoryOutcome;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30m`, `24h`, `7d` (also `s`) -> milliseconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (UNITS[match[2] as string] as number);
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}

export function isHistoryOutcome(value: string): value is HistoryOutcome {
  return (HISTORY_OUTCOMES as readonly string[]).includes(value);
}

/**
 * Whether `destination` (`[project.]dataset.table[$partition]`) is the table `filter` names; a filter
 * with fewer parts matches the trailing ones.
 */
export function matchesTable(destination: string | undefined, filter: string): boolean {
  if (destination === undefined) return false;
  const parts = destination.split('$')[0]!.split('.');
  const wanted = filter.split('.');
  return wanted.length <= parts.length && wanted.every((p, i) => p === parts.at(i - wanted.length));
}

/** The entries the filter keeps, newest first. */
export function filterHistory(entries: HistoryEntry[], filter: HistoryFilter): HistoryEntry[] {
  const since = filter.since.getTime();
  return entries
    .filter((e) => Date.parse(e.time) >= since)
    .filter((e) => filter.table === undefined || matchesTable(e.destination, filter.table))
    .filter((e) => filter.outcome === undefined || e.outcome === filter.outcome)
    .sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
}
