import type { Services } from './services';
import { identify, type ObjectResult } from './outcomes';
import { ObjectGoneError, gsUri, type StoredObject } from './stores/store';
import { tableId, type LoadJob } from './warehouses/warehouse';

/** Copies the object to the quarantine prefix with why, and records the attempt. */
export async function reject(
  object: StoredObject,
  reason: string,
  job: LoadJob | undefined,
  { store, warehouse, config }: Pick<Services, 'store' | 'warehouse' | 'config'>,
  record = true,
): Promise<ObjectResult> {
  const target = `${config.quarantinePrefix}${object.name}`;
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

/** Whether `target` already is the quarantined copy of this generation of the object. */
async function holdsGeneration(
  object: StoredObject,
  target: string,
  store: Services['store'],
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
  { store, config }: Pick<Services, 'store' | 'config'>,
): Promise<Map<string, Quarantined>> {
  const found = new Map<string, Quarantined>();
  for await (const copy of store.list(bucket, config.quarantinePrefix + prefix)) {
    const generation = copy.metadata?.['ingest-generation'];
    if (generation === undefined) continue;
    const reason = copy.metadata?.['ingest-reason'] ?? 'rejected earlier';
    found.set(copy.name.slice(config.quarantinePrefix.length), { generation, reason });
  }
  return found;
}
