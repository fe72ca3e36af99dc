import { listValue, type DuckDBConnection } from '@duckdb/node-api';
import type { Claim } from '../../stores/claims';
import { gsUri, type StoredObject } from '../../stores/store';
import { partitionedTableId, tableId, type LoadJob, type RejectedSources } from '../warehouse';

/**
 * One row per loaded job id, which makes loads idempotent, and one per rejection. `claims` holds one
 * row per (uri, generation, destination), kept so by replacing rows inside transactions of the one
 * process that holds the file (a primary key would cost more than the load of a small file).
 */
export const LEDGER_DDL = `
  CREATE SCHEMA IF NOT EXISTS _ingest;
  CREATE TABLE IF NOT EXISTS _ingest.loads (
    job_id VARCHAR PRIMARY KEY, uris VARCHAR[] NOT NULL, generations VARCHAR[] NOT NULL,
    destination VARCHAR NOT NULL, write_mode VARCHAR NOT NULL, rows BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL, replaced_rows BIGINT[]);
  ALTER TABLE _ingest.loads ADD COLUMN IF NOT EXISTS replaced_rows BIGINT[];
  CREATE TABLE IF NOT EXISTS _ingest.rejections (
    job_id VARCHAR NOT NULL, uris VARCHAR[] NOT NULL, reason VARCHAR NOT NULL, "at" TIMESTAMPTZ NOT NULL,
    generations VARCHAR[]);
  ALTER TABLE _ingest.rejections ADD COLUMN IF NOT EXISTS generations VARCHAR[];
  ALTER TABLE _ingest.rejections ADD COLUMN IF NOT EXISTS destination VARCHAR;
  ALTER TABLE _ingest.rejections ALTER COLUMN job_id DROP NOT NULL;
  CREATE TABLE IF NOT EXISTS _ingest.claims (
    uri VARCHAR NOT NULL, generation VARCHAR NOT NULL, destination VARCHAR NOT NULL,
    job_id VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL);
  INSERT INTO _ingest.claims
    SELECT uri, generation, destination, arg_max(job_id, loaded_at), max(loaded_at) FROM (
      SELECT unnest(uris) AS uri, unnest(generations) AS generation, destination, job_id, loaded_at
      FROM _ingest.loads
      WHERE generations IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _ingest.claims))
    GROUP BY uri, generation, destination`;

/** The rows a job loaded, or undefined when it has not loaded. */
export async function ledgerRows(c: DuckDBConnection, jobId: string): Promise<number | undefined> {
  const reader = await c.runAndReadAll('SELECT rows FROM _ingest.loads WHERE job_id = $1', [jobId]);
  const row = reader.getRowsJS()[0];
  return row ? Number(row[0]) : undefined;
}

/**
 * The ledger row of a loaded job, with the rows a lineage `append` replaced per source. A job whose
 * sources were not claimed for it (one job per object) claims them now, so that every loaded
 * generation has a claim naming its job.
 */
export async function insertLoad(
  c: DuckDBConnection,
  job: LoadJob,
  rows: number,
  replacedRows?: number[],
): Promise<void> {
  const uris = listValue(job.sources.map(gsUri));
  const generations = listValue(job.sources.map((s) => s.generation));
  await c.run(
    `INSERT INTO _ingest.loads
       (job_id, uris, generations, destination, write_mode, rows, loaded_at, replaced_rows)
     VALUES ($1, $2, $3, $4, $5, $6, now(), $7)`,
    [
      job.jobId,
      uris,
      generations,
      partitionedTableId(job.destination),
      job.write,
      BigInt(rows),
      replacedRows ? listValue(replacedRows.map(BigInt)) : null,
    ],
  );
  if (job.claimed) return;
  await writeClaims(c, job.sources, partitionedTableId(job.destination), job.jobId, Date.now());
}

/** A rejection's row; one found before any job was built has no job id, and may have no destination. */
export async function insertRejection(
  c: DuckDBConnection,
  rejected: RejectedSources,
  reason: string,
): Promise<void> {
  await c.run(
    `INSERT INTO _ingest.rejections (job_id, uris, generations, reason, "at", destination)
     VALUES ($1, $2, $3, $4, now(), $5)`,
    [
      rejected.jobId ?? null,
      listValue(rejected.sources.map(gsUri)),
      listValue(rejected.sources.map((s) => s.generation)),
      reason,
      rejected.destination ? partitionedTableId(rejected.destination) : null,
    ],
  );
}

/** A claim's key: which generation of which object, for which destination. */
export interface ClaimKey {
  object: StoredObject;
  destination: string;
}

// The claims on generations given as two lists ($1 URIs, $2 generations; the result may hold other
// generations of those URIs). Semi-joins on the columns themselves: the claims grow with every file
// loaded, and a test per row against a list of computed keys costs ten times as much at 100,000.
const CLAIMED_GENERATIONS = 'uri IN (SELECT unnest($1)) AND generation IN (SELECT unnest($2))';

function generationLists(objects: StoredObject[]) {
  return [listValue(objects.map(gsUri)), listValue(objects.map((o) => o.generation))];
}

/** `uri#generation` of each object, for an exact test of the pairs the semi-joins let through. */
function generationKeys(objects: StoredObject[]) {
  return listValue(objects.map((o) => `${gsUri(o)}#${o.generation}`));
}

/** The claims on these generations (job id and epoch ms), in the order asked; undefined for none. */
export async function readClaims(
  c: DuckDBConnection,
  keys: ClaimKey[],
): Promise<({ jobId: string; at: number } | undefined)[]> {
  const keyOf = (uri: string, generation: string, destination: string) =>
    JSON.stringify([uri, generation, destination]);
  const wanted = keys.map(({ object, destination }) =>
    keyOf(gsUri(object), object.generation, destination),
  );
  const reader = await c.runAndReadAll(
    `SELECT uri, generation, destination, job_id, epoch_ms(claimed_at) FROM _ingest.claims
     WHERE ${CLAIMED_GENERATIONS}`,
    generationLists(keys.map((k) => k.object)),
  );
  const found = new Map<string, { jobId: string; at: number }>();
  for (const [uri, generation, destination, jobId, at] of reader.getRowsJS()) {
    found.set(keyOf(String(uri), String(generation), String(destination)), {
      jobId: String(jobId),
      at: Number(at),
    });
  }
  return wanted.map((key) => found.get(key));
}

/**
 * Sets each claim whose current one is still `expected` (its job id, or '' for none): true where it
 * was set. Runs inside the caller's transaction.
 */
export async function swapClaims(
  c: DuckDBConnection,
  swaps: { object: StoredObject; claim: Claim; expected: string }[],
): Promise<boolean[]> {
  const current = await readClaims(
    c,
    swaps.map((s) => ({ object: s.object, destination: s.claim.destination })),
  );
  const won = swaps.map((s, i) => (current[i]?.jobId ?? '') === s.expected);
  // The same generation twice in one call: only its first swap can hold.
  const seen = new Set<string>();
  swaps.forEach((s, i) => {
    const key = JSON.stringify([gsUri(s.object), s.object.generation, s.claim.destination]);
    if (seen.has(key)) won[i] = false;
    seen.add(key);
  });
  // A batch swaps every member to the same claim: one write per distinct claim.
  const byClaim = new Map<string, { claim: Claim; objects: StoredObject[] }>();
  swaps.forEach((s, i) => {
    if (!won[i]) return;
    const key = JSON.stringify(s.claim);
    const group = byClaim.get(key) ?? { claim: s.claim, objects: [] };
    group.objects.push(s.object);
    byClaim.set(key, group);
  });
  for (const { claim, objects } of byClaim.values())
    await writeClaims(c, objects, claim.destination, claim.jobId, claim.at);
  return won;
}

/** Replaces the claims on these generations for `destination` with `jobId`. */
async function writeClaims(
  c: DuckDBConnection,
  objects: StoredObject[],
  destination: string,
  jobId: string,
  at: number,
): Promise<void> {
  await c.run(
    `DELETE FROM _ingest.claims WHERE destination = $3 AND ${CLAIMED_GENERATIONS}
     AND list_contains($4, uri || '#' || generation)`,
    [...generationLists(objects), destination, generationKeys(objects)],
  );
  await c.run(
    `INSERT INTO _ingest.claims
     SELECT unnest($1), unnest($2), $3, $4, make_timestamp(CAST($5 AS BIGINT) * 1000)`,
    [...generationLists(objects), destination, jobId, BigInt(at)],
  );
}

/** How many of the job's sources are claimed for it: all of them, or the job may not commit. */
export async function claimedFor(c: DuckDBConnection, job: LoadJob): Promise<number> {
  const reader = await c.runAndReadAll(
    `SELECT count(*) FROM _ingest.claims WHERE ${CLAIMED_GENERATIONS}
     AND job_id = $3 AND destination = $4 AND list_contains($5, uri || '#' || generation)`,
    [
      ...generationLists(job.sources),
      job.jobId,
      tableId(job.destination),
      generationKeys(job.sources),
    ],
  );
  return Number(reader.getRowsJS()[0]?.[0] ?? 0);
}

/** What the ledger knows of a job: loaded (rows) or rejected (reasons by URI), with its URIs. */
export type JobRecord =
  | { outcome: 'loaded'; rows: number; uris: string[]; replacedRows?: number[] }
  | { outcome: 'rejected'; reasons: Map<string, string>; uris: string[] };

/** The ledger's record of each job id, in the order asked; undefined for a job it does not know. */
export async function jobRecords(
  c: DuckDBConnection,
  jobIds: string[],
): Promise<(JobRecord | undefined)[]> {
  const records = new Map<string, JobRecord>();
  const ids = listValue(jobIds);
  const loaded = await c.runAndReadAll(
    'SELECT job_id, rows, uris, replaced_rows FROM _ingest.loads WHERE list_contains($1, job_id)',
    [ids],
  );
  for (const [jobId, rows, uris, replaced] of loaded.getRowsJS()) {
    const record: JobRecord = { outcome: 'loaded', rows: Number(rows), uris: uris as string[] };
    if (Array.isArray(replaced)) record.replacedRows = replaced.map(Number);
    records.set(String(jobId), record);
  }
  const rejected = await c.runAndReadAll(
    'SELECT job_id, reason, uris FROM _ingest.rejections WHERE list_contains($1, job_id)',
    [ids],
  );
  for (const [jobId, reason, uris] of rejected.getRowsJS()) {
    const id = String(jobId);
    if (records.get(id)?.outcome === 'loaded') continue;
    const record: JobRecord = records.get(id) ?? {
      outcome: 'rejected',
      reasons: new Map<string, string>(),
      uris: [],
    };
    if (record.outcome !== 'rejected') continue;
    for (const uri of uris as string[]) {
      record.uris.push(uri);
      record.reasons.set(uri, String(reason));
    }
    records.set(id, record);
  }
  return jobIds.map((id) => records.get(id));
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
