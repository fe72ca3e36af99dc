import { createHash } from 'node:crypto';
import type { ObjectServices } from './services';
import { identify, type ObjectResult } from './outcomes';
import { ObjectGoneError, gsUri, type StoredObject } from '../stores/store';
import { tableId, type LoadJob } from '../warehouses/warehouse';

/** Copies the object to the quarantine prefix with why, and records the attempt. */
export async function reject(
  object: StoredObject,
  reason: string,
  job: LoadJob | undefined,
  { store, warehouse, config }: Pick<ObjectServices, 'store' | 'warehouse' | 'config'>,
  record = true,
): Promise<ObjectResult> {
  const target = quarantineName(object.name, config.quarantinePrefix);
  const metadata: Record<string, string> = {
    'ingest-reason': reason.slice(0, 1024),
    'ingest-source': gsUri(object),
    'ingest-generation': object.generation,
  };
  if (job) metadata['ingest-job-id'] = job.jobId;
  let note = '';
  try {
    if (!(await holdsGeneration(object, target, store)))
      await store.copyTo(object, target, metadata);
  } catch (error) {
    if (!(error instanceof ObjectGoneError)) throw error;
    note = ' (not quarantined: the object is gone)';
  }
  // Only the rejected object, also when its job had others: they are not settled by its rejection.
  const rejected = job
    ? { sources: [object], jobId: job.jobId, destination: job.destination }
    : { sources: [object] };
  if (record) await warehouse.recordRejection(rejected, reason);
  const result: ObjectResult = { ...identify(object), outcome: 'rejected', reason: reason + note };
  if (job) Object.assign(result, { destination: tableId(job.destination), jobId: job.jobId });
  return result;
}

// Cloud Storage's longest object name, in bytes of UTF-8.
const MAX_NAME_BYTES = 1024;

/**
 * Where an object's quarantined copy goes: `<prefix><name>`, or, when that would pass 1,024 bytes
 * (which Cloud Storage refuses), as much of `<prefix><name>` as fits with `~`, 16 hex digits of the
 * name's SHA-256 and its `.csv`/`.csv.gz` ending. The whole name is in the copy's `ingest-source`.
 */
export function quarantineName(name: string, prefix: string): string {
  const full = `${prefix}${name}`;
  if (Buffer.byteLength(full) <= MAX_NAME_BYTES) return full;
  const ending = /\.csv(\.gz)?$/i.exec(name)?.[0] ?? '';
  const tail = `~${createHash('sha256').update(name).digest('hex').slice(0, 16)}${ending}`;
  let kept = prefix;
  let room = MAX_NAME_BYTES - Buffer.byteLength(prefix) - tail.length;
  for (const char of name) {
    room -= Buffer.byteLength(char);
    if (room < 0) break;
    kept += char;
  }
  return kept + tail;
}

/** Whether `target` already is the quarantined copy of this generation of the object. */
async function holdsGeneration(
  object: StoredObject,
  target: string,
  store: ObjectServices['store'],
): Promise<boolean> {
  const copy = await store.stat(object.bucket, target);
  return (
    copy?.metadata?.['ingest-source'] === gsUri(object) &&
    copy.metadata['ingest-generation'] === object.generation
  );
}

/** A quarantined copy: which generation of which object it holds, and why. */
export interface Quarantined {
  generation: string;
  reason: string;
}

/** The quarantined copies under `prefix` (a prefix of object names), by the name of their object. */
export async function quarantinedUnder(
  bucket: string,
  prefix: string,
  { store, config }: Pick<ObjectServices, 'store' | 'config'>,
): Promise<Map<string, Quarantined>> {
  const found = new Map<string, Quarantined>();
  for await (const copy of store.list(bucket, config.quarantinePrefix + prefix)) {
    const generation = copy.metadata?.['ingest-generation'];
    if (generation === undefined) continue;
    const reason = copy.metadata?.['ingest-reason'] ?? 'rejected earlier';
    found.set(originalName(copy, bucket, config.quarantinePrefix), { generation, reason });
  }
  return found;
}

/** The object a quarantined copy holds: named in its `ingest-source` (a shortened copy's only record). */
function originalName(copy: StoredObject, bucket: string, prefix: string): string {
  const source = copy.metadata?.['ingest-source'];
  const own = `gs://${bucket}/`;
  return source?.startsWith(own) ? source.slice(own.length) : copy.name.slice(prefix.length);
}
