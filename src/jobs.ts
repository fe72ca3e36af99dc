import type { Config, Route } from './config';
import { HEAD_BYTES, checkHead } from './header';
import type { ObjectResult } from './outcomes';
import { ObjectGoneError, gsUri, type ObjectStore, type StoredObject } from './stores/store';
import { tableId, type Destination, type LoadJob, type LoadResult } from './warehouses/warehouse';

/** The load job for `sources` into a route's destination, under `jobId`. */
export function buildJob(
  sources: StoredObject[],
  route: Route,
  destination: Destination,
  config: Config,
  jobId: string,
  deadline: number,
): LoadJob {
  return {
    jobId,
    sources,
    destination,
    write: route.write,
    schema: route.schema,
    csv: route.csv,
    createDisposition: route.createDisposition,
    timePartitioning: route.timePartitioning,
    clustering: route.clustering,
    location: config.location,
    labels: jobLabels(sources[0] as StoredObject, route),
    deadline,
  };
}

/** What a finished load says of each of its objects. */
export function loadOutcome(
  result: Exclude<LoadResult, { outcome: 'rejected' }>,
  destination: Destination,
): Omit<ObjectResult, 'uri' | 'generation'> {
  const where = { destination: tableId(destination), jobId: result.jobId };
  if (result.outcome === 'replaced') return { outcome: 'skipped', ...where, reason: result.reason };
  if (result.outcome === 'duplicate') return { outcome: 'duplicate', ...where, rows: result.rows };
  const bad = result.badRecords;
  if (!bad || bad.count === 0) return { outcome: 'loaded', ...where, rows: result.rows };
  const reason = `${bad.count} bad row${bad.count === 1 ? '' : 's'} skipped under maxBadRecords; first: ${bad.first}`;
  return { outcome: 'loaded', ...where, rows: result.rows, badRecords: bad.count, reason };
}

/** Why the object's head shows it cannot load, 'gone' when it no longer exists, else undefined. */
export async function headProblem(
  object: StoredObject,
  route: Route,
  store: ObjectStore,
): Promise<string | undefined> {
  let head: Buffer;
  try {
    head = await store.readHead(object, HEAD_BYTES);
  } catch (error) {
    if (error instanceof ObjectGoneError) return 'gone';
    throw error;
  }
  return checkHead({
    head,
    complete: head.length >= object.size,
    gzip: /\.gz$/i.test(object.name),
    csv: route.csv,
    schema: route.schema,
  });
}

/** Whether a rejection reason names this object's URI (not merely a longer name it starts). */
export function namesObject(reason: string, object: StoredObject): boolean {
  const uri = gsUri(object);
  for (let at = reason.indexOf(uri); at >= 0; at = reason.indexOf(uri, at + 1)) {
    const next = reason[at + uri.length];
    if (next === undefined || /[\s),;:'"]/.test(next)) return true;
  }
  return false;
}

// Label values: lower-case letters, digits, _ and -, at most 63 characters.
function labelValue(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_')
    .slice(0, 63);
}

function jobLabels(object: StoredObject, route: Route): Record<string, string> {
  return {
    component: 'gcs-bq-ingest',
    bucket: labelValue(object.bucket),
    route: `route-${route.index}`,
  };
}
