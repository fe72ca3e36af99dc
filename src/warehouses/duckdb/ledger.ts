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
    job_id VARCHAR NOT NULL, uris VARCHAR[] NOT NULL, reason VARCHAR NOT NULL, "at" TIMESTAMPTZ NOT NULL);`;

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
  await c.run('INSERT INTO _ingest.rejections VALUES ($1, $2, $3, now())', [
    job.jobId,
    listValue(job.sources.map(gsUri)),
    reason,
  ]);
}
