import type { Config } from '../config';
import type { OutgoingMessage } from './publisher';
import { routeObject } from './routing';
import type { StoredObject } from '../stores/store';
import { partitionedTableId } from '../warehouses/warehouse';

// BigQuery load job limits: https://cloud.google.com/bigquery/quotas#load_jobs
export const MAX_URIS_PER_JOB = 10_000;
export const MAX_BYTES_PER_JOB = 15 * 1024 ** 4;

export type FanOut =
  | { kind: 'message'; message: OutgoingMessage; objects: StoredObject[] }
  | { kind: 'rejected'; objects: StoredObject[]; reason: string };

/**
 * Turns a listing into reprocess messages: one per object for appending routes, one per destination
 * for truncating ones (separate truncating jobs would erase each other). Objects no route takes are
 * left out. Appending objects stream through; truncating ones are held until the listing ends.
 */
export async function* fanOutMessages(
  objects: AsyncIterable<StoredObject>,
  config: Config,
  options: { force: boolean; attributes?: Record<string, string> },
): AsyncGenerator<FanOut> {
  const message = (batch: StoredObject[]): FanOut => {
    const refs = batch.map((o) => ({ bucket: o.bucket, name: o.name, generation: o.generation }));
    const json = refs.length === 1 ? { ...refs[0] } : { objects: refs };
    if (options.force) Object.assign(json, { force: true });
    return {
      kind: 'message',
      message: { json, attributes: options.attributes ?? {} },
      objects: batch,
    };
  };
  const truncating = new Map<string, StoredObject[]>();
  for await (const object of objects) {
    const routing = routeObject(object, config);
    if (routing.kind === 'skip') continue;
    if (routing.kind === 'route' && routing.route.write !== 'append') {
      const key = partitionedTableId(routing.destination);
      truncating.set(key, [...(truncating.get(key) ?? []), object]);
    } else {
      yield message([object]);
    }
  }
  for (const batch of truncating.values()) {
    const reason = batchLimitProblem(batch);
    yield reason ? { kind: 'rejected', objects: batch, reason } : message(batch);
  }
}

export function batchLimitProblem(sources: StoredObject[]): string | undefined {
  if (sources.length > MAX_URIS_PER_JOB) {
    return `${sources.length} objects for one destination exceed BigQuery's ${MAX_URIS_PER_JOB} URIs per load job`;
  }
  const bytes = sources.reduce((sum, s) => sum + s.size, 0);
  if (bytes > MAX_BYTES_PER_JOB)
    return `${bytes} bytes for one destination exceed BigQuery's 15 TB per load job`;
  return undefined;
}
