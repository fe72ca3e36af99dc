import { RequestError } from '../core/errors';
import { FORCE_ID_ATTRIBUTE, type IngestRequest, type ObjectRef } from '../objects/request';
import { fanOutMessages, type FanOut } from '../objects/fanout';
import type { Services } from './services';
import { identify, type ObjectResult } from '../objects/outcomes';
import { routeObject } from '../objects/routing';
import type { StoredObject } from '../stores/store';

const PUBLISH_BATCH = 1000;

/** Lists a prefix: small ones are handled here, large ones handed on as Pub/Sub messages. */
export async function expandPrefix(
  { bucket, prefix }: { bucket: string; prefix: string },
  request: IngestRequest,
  { config, store, publisher }: Services,
): Promise<{ refs: ObjectRef[] } | { queued: ObjectResult[] }> {
  const limit = config.reprocess.inlineLimit;
  const listing = store.list(bucket, prefix)[Symbol.asyncIterator]();
  const first: StoredObject[] = [];
  while (first.length <= limit) {
    const next = await listing.next();
    if (next.done) break;
    if (routeObject(next.value, config).kind !== 'skip') first.push(next.value);
  }
  if (first.length <= limit) return { refs: first.map(toRef) };

  const topic = config.reprocess.topic;
  if (!topic) {
    throw new RequestError(
      `prefix: gs://${bucket}/${prefix} matches more than ${limit} objects (reprocess.inlineLimit) and reprocess.topic is not configured to fan them out`,
    );
  }
  async function* everything(): AsyncGenerator<StoredObject> {
    yield* first;
    for (let next = await listing.next(); !next.done; next = await listing.next()) yield next.value;
  }
  // The redelivery of a forced prefix request must not load again: its fanned-out messages carry its id.
  const attributes: Record<string, string> =
    request.force && request.forceId ? { [FORCE_ID_ATTRIBUTE]: request.forceId } : {};
  const queued: ObjectResult[] = [];
  let pending: Extract<FanOut, { kind: 'message' }>[] = [];
  const flush = async () => {
    await publisher.publish(
      topic,
      pending.map((p) => p.message),
    );
    for (const p of pending)
      queued.push(...p.objects.map((o) => ({ ...identify(o), outcome: 'queued' as const })));
    pending = [];
  };
  for await (const item of fanOutMessages(everything(), config, {
    force: request.force,
    attributes,
  })) {
    if (item.kind === 'rejected') {
      queued.push(
        ...item.objects.map((o) => ({
          ...identify(o),
          outcome: 'rejected' as const,
          reason: item.reason,
        })),
      );
      continue;
    }
    pending.push(item);
    if (pending.length >= PUBLISH_BATCH) await flush();
  }
  await flush();
  return { queued };
}

function toRef(object: StoredObject): ObjectRef {
  return {
    bucket: object.bucket,
    name: object.name,
    generation: object.generation,
    size: object.size,
  };
}
