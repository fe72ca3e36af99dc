import type { z } from 'zod/v3';
import type { CompiledPattern } from './pattern';
import type { Backend, LogLevel } from './env';
import type { SchemaField } from './schema-files';
import type { CsvOptions, NotifyOutcome, timePartitioningSchema, WriteMode } from './yaml-schema';

/** Where outcome notifications go, and which outcomes are told. */
export interface NotifyOptions {
  /** `projects/P/topics/T` */
  topic: string;
  outcomes: NotifyOutcome[];
}

/**
 * Pacing and coalescing of an `append` route's load jobs per destination table (see batcher.ts).
 * `jobsPerDay` absent: the warehouse's own budget (BigQuery 1000, DuckDB unpaced).
 */
export interface BatchOptions {
  jobsPerDay?: number;
  burst: number;
  maxFiles: number;
}

export const DEFAULT_BATCH = { burst: 10, maxFiles: 10_000 } as const;

/**
 * How a file's columns meet its table's: matched by header name or by position; a column the table
 * lacks added (NULLABLE) or the file rejected; a REQUIRED column the file lacks made NULLABLE or the
 * file rejected.
 */
export interface ColumnRules {
  match: 'byName' | 'byPosition';
  newColumns: 'add' | 'reject';
  relax: boolean;
}

/** A route's column rules when it names none, for a header row and `schema: auto`. */
export const DEFAULT_COLUMNS: ColumnRules = { match: 'byName', newColumns: 'add', relax: false };

export interface Route {
  index: number;
  match: string;
  pattern: CompiledPattern;
  dataset: string;
  /** Template with `{placeholder}`s; absent = the file name without its CSV ending. */
  table?: string;
  write: WriteMode;
  /** Template for the partition date (YYYYMMDD) of `partition` routes. */
  partition?: string;
  schema: 'auto' | SchemaField[];
  csv: CsvOptions;
  createDisposition: 'CREATE_IF_NEEDED' | 'CREATE_NEVER';
  timePartitioning?: z.infer<typeof timePartitioningSchema>;
  clustering?: string[];
  /** False: one load job per object. Only `append` routes batch. */
  batch: BatchOptions | false;
  columns: ColumnRules;
  /**
   * Every row carries its object (LINEAGE_COLUMNS), and loading an object again replaces its rows
   * instead of adding them.
   */
  lineage: boolean;
  /** Where this route's outcomes are told (its own `notify` over the top-level one); absent: nowhere. */
  notify?: NotifyOptions;
}

export interface Config {
  source: string;
  backend: Backend;
  localDataDir: string;
  project?: string;
  location: string;
  buckets?: string[];
  quarantinePrefix: string;
  reprocess: { topic?: string; inlineLimit: number };
  routes: Route[];
  /** The top-level `notify`: for objects no route takes (each route has its own, resolved). */
  notify?: NotifyOptions;
  /** PUBSUB_EMULATOR_HOST: locally, notifications are published only to an emulator. */
  pubsubEmulatorHost?: string;
  waitSeconds: number;
  maxBodyBytes: number;
  maxObjectBytes?: number;
  /** How long a claim whose job is not found yet is left to its owner (default: the store's own). */
  claimGraceSeconds?: number;
  /** On SIGTERM, how long in-flight events may take to finish (default: shutdown.ts). */
  shutdownGraceSeconds?: number;
  logLevel: LogLevel;
}
