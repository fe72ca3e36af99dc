import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import { gsUri, type StoredObject } from '../../stores/store';
import { partitionedTableId, tableId, type LoadJob } from '../warehouse';

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
  ALTER TABLE _ingest.rejections ADD COLUMN IF NOT EXISTS generations VARCHAR[];
  CREATE TABLE IF NOT EXISTS _ingest.claims (
    uri VARCHAR NOT NULL, generation VARCHAR NOT NULL, destination VARCHAR NOT NULL,
    job_id VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (uri, generation, destination));`;

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

/** The claim on an object generation for a destination: job id and epoch ms, or undefined. */
export async function readClaim(
  c: DuckDBConnection,
  object: StoredObject,
  destination: string,
): Promise<{ jobId: string; at: number } | undefined> {
  const reader = await c.runAndReadAll(
    `SELECT job_id, epoch_ms(claimed_at) FROM _ingest.claims
     WHERE uri = $1 AND generation = $2 AND destination = $3`,
    [gsUri(object), object.generation, destination],
  );
  const row = reader.getRowsJS()[0];
  return row ? { jobId: String(row[0]), at: Number(row[1]) } : undefined;
}

/**
 * Sets the claim when the current one is still `expected` (its job id, or '' for none): true when
 * it was set. Runs inside the caller's transaction.
 */
export async function swapClaim(
  c: DuckDBConnection,
  object: StoredObject,
  claim: { jobId: string; at: number; destination: string },
  expected: string,
): Promise<boolean> {
  const current = await readClaim(c, object, claim.destination);
  if ((current?.jobId ?? '') !== expected) return false;
  await c.run(
    `INSERT OR REPLACE INTO _ingest.claims VALUES ($1, $2, $3, $4, make_timestamp(CAST($5 AS BIGINT) * 1000))`,
    [gsUri(object), object.generation, claim.destination, claim.jobId, BigInt(claim.at)],
  );
  return true;
}

/** How many of the job's sources are claimed for it: all of them, or the job may not commit. */
export async function claimedFor(c: DuckDBConnection, job: LoadJob): Promise<number> {
  const reader = await c.runAndReadAll(
    `SELECT count(*) FROM _ingest.claims WHERE job_id = $1 AND destination = $2
     AND list_contains($3, uri || '#' || generation)`,
    [
      job.jobId,
      tableId(job.destination),
      listValue(job.sources.map((s) => `${gsUri(s)}#${s.generation}`)),
    ],
  );
  return Number(reader.getRowsJS()[0]?.[0] ?? 0);
}

/** What the ledger knows of a job: loaded (rows) or rejected (reason), with its sources' URIs. */
export async function jobRecord(
  c: DuckDBConnection,
  jobId: string,
): Promise<
  | { outcome: 'loaded'; rows: number; uris: string[] }
  | { outcome: 'rejected'; reason: string; uris: string[] }
  | undefined
> {
  const loaded = await c.runAndReadAll('SELECT rows, uris FROM _ingest.loads WHERE job_id = $1', [
    jobId,
  ]);
  const row = loaded.getRowsJS()[0];
  if (row) return { outcome: 'loaded', rows: Number(row[0]), uris: row[1] as string[] };
  const rejected = await c.runAndReadAll(
    'SELECT reason, uris FROM _ingest.rejections WHERE job_id = $1 LIMIT 1',
    [jobId],
  );
  const rejection = rejected.getRowsJS()[0];
  if (!rejection) return undefined;
  return { outcome: 'rejected', reason: String(rejection[0]), uris: rejection[1] as string[] };
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
