import { createHash } from 'node:crypto';
import type { Config, Route, WriteMode } from '../config';
import { BIGQUERY_NAME, isPartitionDate } from '../core/names';
import { matchPattern } from '../config/pattern';
import { partitionedTableId, type Destination } from '../warehouses/warehouse';

export type Routing =
  | { kind: 'route'; route: Route; destination: Destination }
  | { kind: 'skip'; reason: string }
  | { kind: 'reject'; reason: string; route: Route };

const CSV_ENDING = /\.csv(\.gz)?$/i;

/** Which route, dataset and table an object goes to, or why it goes nowhere. Pure. */
export function routeObject(object: { bucket: string; name: string }, config: Config): Routing {
  if (config.buckets && !config.buckets.includes(object.bucket)) {
    return { kind: 'skip', reason: `bucket ${object.bucket} is not in the allowlist` };
  }
  if (object.name.startsWith(config.quarantinePrefix)) {
    return { kind: 'skip', reason: `under the quarantine prefix ${config.quarantinePrefix}` };
  }
  if (object.name.endsWith('/')) return { kind: 'skip', reason: 'a folder placeholder' };
  if (!CSV_ENDING.test(object.name)) return { kind: 'skip', reason: 'not a CSV (.csv or .csv.gz)' };
  for (const route of config.routes) {
    const captured = matchPattern(route.pattern, object.name);
    if (captured) return toDestination(object.name, route, captured, config);
  }
  return { kind: 'skip', reason: 'no route matches' };
}

function toDestination(
  name: string,
  route: Route,
  captured: Record<string, string>,
  config: Config,
): Routing {
  const dataset = fill(route.dataset, captured);
  const table = route.table === undefined ? tableFromFileName(name) : fill(route.table, captured);
  for (const [what, value] of [
    ['dataset', dataset],
    ['table', table],
  ] as const) {
    if (!BIGQUERY_NAME.test(value)) {
      const reason = `${what} "${value}" from route "${route.match}" is not a valid BigQuery ${what} name (letters, digits and underscores only, at most 1024)`;
      return { kind: 'reject', reason, route };
    }
  }
  const destination: Destination = { dataset, table };
  if (config.project) destination.project = config.project;
  if (route.write === 'partition') {
    const partition = fill(route.partition ?? '', captured);
    if (!isPartitionDate(partition)) {
      const reason = `partition "${partition}" from route "${route.match}" is not a date (YYYYMMDD)`;
      return { kind: 'reject', reason, route };
    }
    destination.partition = partition;
  }
  return { kind: 'route', route, destination };
}

/** `in/US-States.csv.gz` -> `us_states` */
export function tableFromFileName(name: string): string {
  const file = name.slice(name.lastIndexOf('/') + 1).replace(CSV_ENDING, '');
  return file.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

function fill(template: string, captured: Record<string, string>): string {
  return template.replace(/\{([^}]*)\}/g, (_, key: string) => captured[key] ?? '');
}

export interface JobSource {
  bucket: string;
  name: string;
  generation: string;
}

/** What makes a partition rebuild's job its own (see partition.ts). */
export interface RebuildKey {
  /** The objects whose event asked for the rebuild. */
  rebuiltFor: JobSource[];
  /** The job this one follows within the same request, when the partition changed after it. */
  after?: string;
}

/**
 * `ingest_` + hex(sha256(sources, destination, write mode)): the same object generation loaded into
 * the same place always gets the same job id, so redeliveries collide instead of loading twice.
 * A forced reprocess adds its Pub/Sub message id: a new request loads again, its redelivery does not.
 * A partition rebuild adds what asked for it, so that each event writes the partition once itself.
 */
export function jobIdFor(
  sources: JobSource[],
  destination: Destination,
  write: WriteMode,
  forcedBy?: string,
  rebuild?: RebuildKey,
): string {
  const key = JSON.stringify({
    sources: ordered(sources),
    destination: partitionedTableId(destination),
    write,
    ...(rebuild ? { rebuiltFor: ordered(rebuild.rebuiltFor), after: rebuild.after ?? null } : {}),
  });
  const id = `ingest_${createHash('sha256').update(key).digest('hex')}`;
  return forcedBy === undefined
    ? id
    : `${id}_r${forcedBy.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 128)}`;
}

function ordered(sources: JobSource[]): string[][] {
  return sources
    .map((s) => [s.bucket, s.name, s.generation])
    .sort((a, b) => (a.join('\0') < b.join('\0') ? -1 : 1));
}
