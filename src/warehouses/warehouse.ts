import type { SourceHead, TableColumn } from '../schema/columns';
import type { ColumnRules, CsvOptions, SchemaField, WriteMode, Route } from '../config';
import type { StoredObject } from '../stores/store';

export interface Destination {
  /** Absent: the client's default project. */
  project?: string;
  dataset: string;
  table: string;
  /** YYYYMMDD for `partition` writes: the job writes `table$partition`. */
  partition?: string;
}

export interface LoadJob {
  jobId: string;
  sources: StoredObject[];
  destination: Destination;
  write: WriteMode;
  schema: 'auto' | SchemaField[];
  csv: CsvOptions;
  /** How the files' columns meet the table's. */
  columns: ColumnRules;
  /**
   * The first source's column names and first rows, as the head check read them (every source of a
   * job has the same header); absent, the warehouse reads them itself.
   */
  head?: SourceHead;
  /**
   * Every source's head, in source order, where sources may differ in header (a partition rebuild):
   * sources that share a header load together, each group by its own names. Absent, the warehouse
   * reads them itself.
   */
  heads?: SourceHead[];
  createDisposition: Route['createDisposition'];
  timePartitioning?: Route['timePartitioning'];
  clustering?: string[];
  location: string;
  labels: Record<string, string>;
  /** Epoch milliseconds after which a job still running is left to the redelivery (TransientError). */
  deadline: number;
  /**
   * A coalesced job: each source is claimed for this job id (claims.ts). It runs once under exactly
   * its id; a content failure is recorded per rejected source by the caller.
   */
  claimed?: boolean;
  /**
   * Loads on trial, to learn whether these sources can load: the table is left as it was (BigQuery:
   * a scratch table, deleted after), nothing is recorded, and `loaded` says they can.
   */
  trial?: boolean;
  /**
   * The rows get LINEAGE_COLUMNS (columns.ts); on `append`, a source's earlier rows are replaced by
   * this load in one atomic step, and a source whose table rows come from a newer generation stops
   * the job (`superseded`) with nothing written.
   */
  lineage?: boolean;
}

/**
 * What a rejection found before loading concerns: the job built for the sources (a LoadJob is one),
 * or the sources alone when none could be built (their route names no valid destination, an object
 * over the size limit).
 */
export interface RejectedSources {
  sources: StoredObject[];
  jobId?: string;
  destination?: Destination;
}

/** Rows a load skipped under `maxBadRecords`, and why the first of them was bad. */
export interface BadRecords {
  count: number;
  first: string;
}

export type LoadResult =
  | {
      outcome: 'loaded';
      jobId: string;
      rows: number;
      badRecords?: BadRecords;
      /** What the load changed in the table's schema (schemaChanges in columns.ts). */
      schemaChanges?: string[];
      /** Bytes the job read from its sources, where the warehouse reports it. */
      inputBytes?: number;
      /** The rows of each source, in the order of `job.sources`, where the warehouse counts them. */
      sourceRows?: number[];
      /** On a lineage `append`: the rows each source had in the table before and no longer has. */
      replacedRows?: number[];
    }
  /** This job id had already completed: nothing was written now. */
  | { outcome: 'duplicate'; jobId: string; rows?: number }
  /** The data cannot load; nothing of it was written. */
  | { outcome: 'rejected'; jobId: string; reason: string }
  /** A source changed while it was read (overwritten in place): nothing was written. */
  | { outcome: 'replaced'; jobId: string; reason: string }
  /**
   * On a lineage `append`: the table holds rows of a newer generation of these sources (URI →
   * that generation), so nothing was written; the job's other sources may load without them.
   */
  | { outcome: 'superseded'; jobId: string; newer: Record<string, string> };

/** What a coalesced job came to: a transient failure is an outcome too, its members are claimed again. */
export type ClaimedLoadResult =
  | LoadResult
  /**
   * `quota`: which of BigQuery's limits refused the job. A daily quota (quotaExceeded) slows the
   * destination's pace; a short-term rate limit (rateLimitExceeded) holds its jobs a few seconds.
   */
  | { outcome: 'failed'; jobId: string; reason: string; quota: QuotaLimit | false };

/** A daily quota (load jobs per table per day), or a short-term rate limit (operations per 10 s). */
export type QuotaLimit = 'daily' | 'shortTerm';

/** A job a claim names, as the warehouse knows it now, with the URIs it read. */
export interface FollowedJob {
  result: ClaimedLoadResult;
  uris: string[];
  /** Why each source was rejected, where the warehouse records it per source (the local ledger). */
  reasons?: Record<string, string>;
}

export interface TableInfo {
  /** `dataset.table` */
  table: string;
  rows: number;
}

/**
 * Where rows go: BigQuery in production, DuckDB locally. `load` is idempotent per job id;
 * it throws TransientError for failures a redelivery may get past.
 */
export interface Warehouse {
  load(job: LoadJob): Promise<LoadResult>;
  /**
   * Waits until the job `job.jobId` (any of its attempts), which an earlier delivery may have
   * inserted before its process died, is no longer running; at once when there is none. Backends
   * whose loads cannot outlive their process leave it out.
   */
  settle?(job: LoadJob): Promise<void>;
  /**
   * The rows of a job this process already knows completed, answered without asking the warehouse,
   * or undefined. Lets a duplicate skip the reads a new load needs; optional for backends where the
   * warehouse itself answers duplicates cheaply.
   */
  completedRows?(jobId: string): number | undefined;
  /** Runs a coalesced job (`job.claimed`) once and awaits it; see ClaimedLoadResult. */
  loadClaimed(job: LoadJob): Promise<ClaimedLoadResult>;
  /**
   * What became of the job `jobId` that a claim names, awaiting it while it runs (TransientError at
   * `deadline`); undefined when no such job exists (never inserted, or locally never committed).
   */
  followJob(
    jobId: string,
    where: { location: string; deadline: number },
  ): Promise<FollowedJob | undefined>;
  /**
   * Why a source cannot join a coalesced job, checked before it is claimed (BigQuery: a `.gz` that is
   * not a whole gzip stream); undefined when it can.
   */
  precheck?(object: StoredObject, deadline: number): Promise<string | undefined>;
  /** Whether a load reads exactly the generations it names (reporting `replaced` otherwise). */
  readonly pinsGenerations?: boolean;
  /** Load jobs per table per day when a route's `batch` names none; Infinity for no pacing. */
  readonly jobsPerDay: number;
  /**
   * The table's columns, or undefined when it does not exist; cached per instance (`fresh` reads
   * them again), so a prediction from them must be confirmed fresh before it rejects anything.
   */
  tableColumns(destination: Destination, fresh?: boolean): Promise<TableColumn[] | undefined>;
  /** Records a rejection found before loading (e.g. by the header check), where the backend keeps such records. */
  recordRejection(rejected: RejectedSources, reason: string): Promise<void>;
  tables(): Promise<TableInfo[]>;
  /** Waits for the work queued so far, then lets go of what the warehouse holds. */
  close(): Promise<void>;
  /**
   * Stops work in flight and queued: each such `load` rejects with a TransientError having written
   * nothing (a load that already committed still reports its result). Resolves when nothing runs.
   */
  abort(reason: string): Promise<void>;
}

/** `project.dataset.table`, or `dataset.table` when the client's default project applies. */
export function tableId(destination: Destination): string {
  const table = `${destination.dataset}.${destination.table}`;
  return destination.project ? `${destination.project}.${table}` : table;
}

/** The table id with its partition decorator, `…table$YYYYMMDD`, when the write targets a partition. */
export function partitionedTableId(destination: Destination): string {
  return destination.partition
    ? `${tableId(destination)}$${destination.partition}`
    : tableId(destination);
}
