import { listValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { LINEAGE_COLUMNS } from '../../schema/columns';
import { gsUri } from '../../stores/store';
import type { LoadJob } from '../warehouse';
import type { Column } from './catalog';
import { duckColumn } from './csv';
import { quote, type Target } from './sql';

// On a `lineage: true` route every row names the object it came from (`_source_uri`, the generation
// in `_source_generation`) and when its job's transaction ran (`_loaded_at`: DuckDB's now() is the
// transaction's start, the same for every statement of the job and for its ledger row).

/** The lineage columns as the DuckDB columns that stand for them, in table order. */
export const LINEAGE_DUCK_COLUMNS: readonly Column[] = LINEAGE_COLUMNS.map(duckColumn);

const [URI, GENERATION, LOADED_AT] = LINEAGE_DUCK_COLUMNS.map((column) => quote(column.name)) as [
  string,
  string,
  string,
];

// Names a CSV column is unlikely to have: the read of several files adds the file's path, and the
// join adds its source's URI and generation.
const FILE = '_ingest_source_file';
const JOINED = {
  path: '_ingest_lineage_path',
  uri: '_ingest_lineage_uri',
  generation: '_ingest_lineage_generation',
};

/** What an INSERT … SELECT FROM read_csv($1, …) of some sources adds to write their lineage. */
export interface LineageRead {
  /** Appended to the read's options. */
  options: string;
  /** Appended to its FROM clause, after the read. */
  join: string;
  /** The values of the lineage columns, in the order of LINEAGE_DUCK_COLUMNS. */
  values: string[];
  /** Parameters from $2 on. */
  params: DuckDBValue[];
}

/**
 * The lineage of the rows read from `group` (local paths, a subset of `paths`, which are the job's
 * sources' in source order): one source's URI and generation as parameters, several sources' by the
 * path the read gives each row, joined to a list of them (a hash join: a job may have thousands).
 */
export function lineageRead(job: LoadJob, paths: string[], group: string[]): LineageRead {
  const index = new Map(paths.map((file, i) => [file, i]));
  const sources = group.map((file) => {
    const source = job.sources[index.get(file) ?? -1];
    if (!source) throw new Error(`job ${job.jobId}: ${file} is none of its sources' paths`);
    return source;
  });
  const uris = sources.map(gsUri);
  const generations = sources.map((source) => source.generation);
  if (group.length === 1) {
    return {
      options: '',
      join: '',
      values: ['$2', 'CAST($3 AS BIGINT)', 'now()'],
      params: [uris[0] as string, generations[0] as string],
    };
  }
  const list = [
    `unnest($2) AS ${JOINED.path}`,
    `unnest($3) AS ${JOINED.uri}`,
    `CAST(unnest($4) AS BIGINT) AS ${JOINED.generation}`,
  ];
  return {
    options: `, filename='${FILE}'`,
    join: ` JOIN (SELECT ${list.join(', ')}) ON ${JOINED.path} = ${FILE}`,
    values: [JOINED.uri, JOINED.generation, 'now()'],
    params: [listValue(group), listValue(uris), listValue(generations)],
  };
}

/** A source's rows in the table come from a newer generation: the job writes nothing. */
export class Superseded extends Error {
  constructor(readonly newer: Record<string, string>) {
    super(
      `the table holds newer generations of ${Object.entries(newer)
        .map(([uri, generation]) => `${uri} (${generation})`)
        .join(', ')}`,
    );
  }
}

/**
 * Before an `append` writes a job's rows, inside its transaction: deletes the rows the table holds of
 * the job's sources, and returns how many each had (in source order; a URI twice counts once).
 * Throws Superseded, deleting nothing, when any source's rows come from a newer generation than the
 * job's; the same generation again (a forced reload) is replaced.
 */
export async function replaceSources(
  c: DuckDBConnection,
  target: Target,
  job: LoadJob,
): Promise<number[]> {
  const uris = job.sources.map(gsUri);
  const wanted = [listValue([...new Set(uris)])];
  const reader = await c.runAndReadAll(
    `SELECT ${URI}, count(*), max(${GENERATION}) FROM ${target.sql}
     WHERE ${URI} IN (SELECT unnest($1)) GROUP BY ${URI}`,
    wanted,
  );
  const held = new Map<string, { rows: number; newest: bigint | undefined }>();
  for (const [uri, rows, newest] of reader.getRowsJS()) {
    const generation = newest === null ? undefined : BigInt(newest as bigint);
    held.set(String(uri), { rows: Number(rows), newest: generation });
  }
  const newer: Record<string, string> = {};
  job.sources.forEach((source, i) => {
    const newest = held.get(uris[i] as string)?.newest;
    if (newest !== undefined && newest > BigInt(source.generation))
      newer[uris[i] as string] = newest.toString();
  });
  if (Object.keys(newer).length > 0) throw new Superseded(newer);
  const counted = new Set<string>();
  const replaced = uris.map((uri) => {
    if (counted.has(uri)) return 0;
    counted.add(uri);
    return held.get(uri)?.rows ?? 0;
  });
  const total = replaced.reduce((sum, n) => sum + n, 0);
  if (total === 0) return replaced;
  const deleted = await c.run(
    `DELETE FROM ${target.sql} WHERE ${URI} IN (SELECT unnest($1))`,
    wanted,
  );
  if (deleted.rowsChanged !== total)
    throw new Error(
      `job ${job.jobId}: deleted ${deleted.rowsChanged} rows of its sources, counted ${total}`,
    );
  return replaced;
}

/**
 * The rows each source of a lineage job wrote, in source order, counted in the table inside the
 * job's transaction: its rows of those URIs stamped with this transaction's time. Spares the second
 * read of the files that rowsPerSource makes. Undefined when the counts do not add up to `written`.
 */
export async function lineageRowsPerSource(
  c: DuckDBConnection,
  target: Target,
  job: LoadJob,
  written: number,
): Promise<number[] | undefined> {
  const uris = job.sources.map(gsUri);
  const reader = await c.runAndReadAll(
    `SELECT ${URI}, ${GENERATION}::VARCHAR, count(*) FROM ${target.sql}
     WHERE ${URI} IN (SELECT unnest($1)) AND ${LOADED_AT} = now() GROUP BY ALL`,
    [listValue([...new Set(uris)])],
  );
  const counts = new Map<string, number>();
  for (const [uri, generation, rows] of reader.getRowsJS())
    counts.set(`${String(uri)}#${String(generation)}`, Number(rows));
  const rows = job.sources.map((source, i) => counts.get(`${uris[i]}#${source.generation}`) ?? 0);
  return rows.reduce((sum, n) => sum + n, 0) === written ? rows : undefined;
}
