import { planLoad, type SourceHead } from '../schema/columns';
import type { Config, Route } from '../config';
import { HEAD_BYTES, checkHead } from '../schema/header';
import type { ObjectResult } from './outcomes';
import { ObjectGoneError, gsUri, type ObjectStore, type StoredObject } from '../stores/store';
import {
  tableId,
  type Destination,
  type LoadJob,
  type LoadResult,
  type Warehouse,
} from '../warehouses/warehouse';

/** The load job for `sources` into a route's destination, under `jobId`. */
export function buildJob(
  sources: StoredObject[],
  route: Route,
  destination: Destination,
  config: Config,
  jobId: string,
  deadline: number,
  head?: SourceHead,
): LoadJob {
  const job: LoadJob = {
    jobId,
    sources,
    destination,
    write: route.write,
    schema: route.schema,
    csv: route.csv,
    columns: route.columns,
    createDisposition: route.createDisposition,
    timePartitioning: route.timePartitioning,
    clustering: route.clustering ?? (route.lineage ? ['_source_uri'] : undefined),
    location: config.location,
    labels: jobLabels(sources[0] as StoredObject, route),
    deadline,
  };
  if (route.lineage) job.lineage = true;
  if (head) job.head = head;
  return job;
}

/** What a finished load says of each of its objects. */
export function loadOutcome(
  result: Exclude<LoadResult, { outcome: 'rejected' }>,
  destination: Destination,
): Omit<ObjectResult, 'uri' | 'generation'> {
  const where = { destination: tableId(destination), jobId: result.jobId };
  if (result.outcome === 'replaced') return { outcome: 'skipped', ...where, reason: result.reason };
  if (result.outcome === 'superseded') {
    return {
      outcome: 'skipped',
      ...where,
      reason: supersededReason(Object.values(result.newer)[0]),
    };
  }
  if (result.outcome === 'duplicate') return { outcome: 'duplicate', ...where, rows: result.rows };
  const bad = result.badRecords;
  const changes = result.schemaChanges?.length ? { schemaChanges: result.schemaChanges } : {};
  if (!bad || bad.count === 0)
    return { outcome: 'loaded', ...where, rows: result.rows, ...changes };
  const reason = `${bad.count} bad row${bad.count === 1 ? '' : 's'} skipped under maxBadRecords; first: ${bad.first}`;
  return {
    outcome: 'loaded',
    ...where,
    rows: result.rows,
    badRecords: bad.count,
    reason,
    ...changes,
  };
}

/** Why an older generation changes nothing on a lineage route. */
export function supersededReason(newer: string | undefined): string {
  return `the table already holds the rows of a newer generation (${newer}) of this object; an older one changes nothing`;
}

/** The rows a lineage load replaced of its source at `index`, where it reports them. */
export function replacedOf(result: LoadResult, index: number): Pick<ObjectResult, 'replacedRows'> {
  const replaced = result.outcome === 'loaded' ? result.replacedRows?.[index] : undefined;
  return replaced === undefined ? {} : { replacedRows: replaced };
}

/**
 * What a job of `count` objects says of the one at `index` among its sources: how many it loaded,
 * and that object's own rows where the warehouse counted them.
 */
export function memberRows(
  result: LoadResult,
  index: number,
  count: number,
): Pick<ObjectResult, 'jobObjects' | 'objectRows'> {
  if (count < 2) return {};
  const own = result.outcome === 'loaded' ? result.sourceRows?.[index] : undefined;
  return own === undefined ? { jobObjects: count } : { jobObjects: count, objectRows: own };
}

/**
 * What the object's head shows: why it cannot load (its header, or its columns against the table
 * as this instance knows it), 'gone' when it no longer exists, why it is skipped (a header-only file
 * has nothing to append; on a truncating route it loads 0 rows), else its header and first rows.
 */
export async function checkObjectHead(
  object: StoredObject,
  route: Route,
  destination: Destination,
  { store, warehouse }: { store: ObjectStore; warehouse: Warehouse },
): Promise<{ problem: string } | { skip: string } | 'gone' | SourceHead> {
  let bytes: Buffer;
  try {
    bytes = await store.readHead(object, HEAD_BYTES);
  } catch (error) {
    if (error instanceof ObjectGoneError) return 'gone';
    throw error;
  }
  const head = await checkHead({
    head: bytes,
    complete: bytes.length >= object.size,
    gzip: /\.gz$/i.test(object.name),
    csv: route.csv,
  });
  if ('problem' in head) return head;
  // On a lineage route a file emptied to its header still replaces its object's rows (with none).
  if (head.headerOnly && route.write === 'append' && !route.lineage)
    return { skip: 'no data rows after the header: nothing to append' };
  const problem = await columnsProblem(head, route, destination, warehouse);
  return problem === undefined ? head : { problem };
}

/**
 * Why the columns of a file cannot load into its table, predicted from the table's cached columns
 * and confirmed against fresh ones, so that a stale cache never rejects a file.
 */
async function columnsProblem(
  head: SourceHead,
  route: Route,
  destination: Destination,
  warehouse: Warehouse,
): Promise<string | undefined> {
  let plan: ReturnType<typeof planLoad> = 'fromFile';
  for (const fresh of [false, true]) {
    const table = await warehouse.tableColumns(destination, fresh);
    plan = planLoad(head, route, table, tableId(destination));
    if (plan === 'fromFile' || !('rejected' in plan)) return undefined;
  }
  return plan !== 'fromFile' && 'rejected' in plan ? plan.rejected : undefined;
}

/** Files of one shape can share a load job: their header names, case aside. */
export function headerShape(head: SourceHead): string {
  return head.header.map((name) => name.toLowerCase()).join('\0');
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
