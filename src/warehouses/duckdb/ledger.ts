import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import { gsUri } from '../../stores/store';
import { partitionedTableId, type LoadJob } from '../warehouse';

/** One row per loaded job id, which makes loads idempotent, and one per rejection. */
export const LEDGER_DDL = `
  CREATE SCHEMA IF NOT EXISTS _ingest;
  CREATE TABLE IF NOT EXISTS _ingest.loads (
    job_id VARCHAR PRIMARY KEY, uris VARCHAR[] NOT NULL, generations VARCHAR[] NOT NULL,
    destination VARCHAR NOT NULL, write_mode VARCHAR NOT NULL, rows BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL);
  CREATE TABLE IF NOT EXISTS _ingest.rejections (
    job_id VARCHAR NOT NULL, uris VARCHAR[] NOT NULL, reason VARCHAR NOT NULL, "at" TIMESTAMPTZ NOT NULL,
    generations VARCHAR[]);
  ALTER TABLE _ingest.rejections ADD COLUMN IF NOT EXISTS generations VARCHAR[];`;

/** The rows a job loaded, or undefined when it has not loaded. */
export async function ledgerRows(c: DuckDBConnection, jobId: string): Promise<number | undefined> {
  const reader = await c.runAndReadAll('SELECT rows FROM _ingest.loads WHERE job_id = $1', [jobId]);
  const row = reader.getRowsJS()[0];
  return row ? Number(row[0]) : undefined;
}

export async function insertLoad(c: DuckDBConnection, job: LoadJob, rows: number): Promise<void> {
  await c.run('INSERT INTO _ingest.loads VALUES ($1, $2, $3, $4, $5, $6, now())', [
    job.jobId,
    listValue(job.sources.map(gsUri)),
    listValue(job.sources.map((s) => s.generation)),
    partitionedTableId(job.destination),
    job.write,
    BigInt(rows),
  ]);
}

export async function insertRejection(
  c: DuckDBConnection,
  job: LoadJob,
  reason: string,
): Promise<void> {
  await c.run(
    'INSERT INTO _ingest.rejections (job_id, uris, generations, reason, "at") VALUES ($1, $2, $3, $4, now())',
    [
      job.jobId,
      listValue(job.sources.map(gsUri)),
      listValue(job.sources.map((s) => s.generation)),
      reason,
    ],
  );
}

/** An object generation the ledger has settled: loaded, or rejected for its content. */
export interface SettledObject {
  uri: string;
  generation: string;
}

/**
 * Every object generation in `_ingest.loads` and `_ingest.rejections`. Works on a read-only session
 * of a file written by any version: a file without the ledger has settled nothing, and rejections
 * recorded before they carried generations cannot be matched to one.
 */
export async function readSettled(c: DuckDBConnection): Promise<SettledObject[]> {
  const columns = await c.runAndReadAll(
    `SELECT table_name FROM duckdb_columns()
     WHERE schema_name = '_ingest' AND column_name = 'generations' AND table_name IN ('loads', 'rejections')`,
  );
  const present = new Set(columns.getRowsJS().map((row) => String(row[0])));
  const settled: SettledObject[] = [];
  for (const table of ['loads', 'rejections'].filter((t) => present.has(t))) {
    const reader = await c.runAndReadAll(
      `SELECT uris, generations FROM _ingest.${table} WHERE generations IS NOT NULL`,
    );
    for (const [uris, generations] of reader.getRowsJS() as [string[], string[]][]) {
      uris.forEach((uri, i) => {
        const generation = generations[i];
        if (generation !== undefined) settled.push({ uri, generation });
      });
    }
  }
  return settled;
}
