import type { Storage } from '@google-cloud/storage';
import { TransientError, errorMessage } from '../core/errors';
import { httpStatusOf, isTransientGoogleError } from '../core/google-errors';
import { mapLimit } from '../core/map-limit';
import { withTimeout } from '../core/timeout';
import {
  NOTIFIED_METADATA_KEY,
  formatNotified,
  parseNotified,
  type NotificationRecord,
  type NotifiedObject,
} from './notified';
import { gsUri } from './store';

const PARALLEL = 32;
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * The record kept on each object in Cloud Storage: custom metadata `ingest-notified` naming the key
 * of the last message sent about that generation (`objects.get`, then `objects.patch` with
 * `ifGenerationMatch`, which raises `metadataUpdated`, never `finalized`). A generation gone or
 * replaced keeps no record: its own events no longer load it.
 */
export function createGcsNotified(
  storage: Storage,
  requestTimeoutMs = REQUEST_TIMEOUT_MS,
): NotificationRecord {
  const call = <T>(work: Promise<T>, uri: string): Promise<T> =>
    withTimeout(
      work,
      requestTimeoutMs,
      `Cloud Storage recording notifications on ${uri}: no answer within ${requestTimeoutMs} ms`,
    );
  const file = ({ object }: NotifiedObject) =>
    storage.bucket(object.bucket).file(object.name, { generation: object.generation });
  const uriOf = ({ object }: NotifiedObject) => `${gsUri(object)}#${object.generation}`;

  async function sentOne(item: NotifiedObject): Promise<boolean> {
    try {
      const [metadata] = await call(file(item).getMetadata(), uriOf(item));
      const value = metadata.metadata?.[NOTIFIED_METADATA_KEY];
      return parseNotified(value == null ? undefined : String(value), item.object) === item.key;
    } catch (error) {
      if (httpStatusOf(error) === 404) return false;
      throw recordError(error, uriOf(item));
    }
  }

  async function recordOne(item: NotifiedObject): Promise<void> {
    const value = formatNotified(item, new Date());
    const live = storage.bucket(item.object.bucket).file(item.object.name);
    try {
      await call(
        live.setMetadata(
          { metadata: { [NOTIFIED_METADATA_KEY]: value } },
          { ifGenerationMatch: item.object.generation },
        ),
        uriOf(item),
      );
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 404 || status === 412) return; // that generation is no longer the live one
      throw recordError(error, uriOf(item));
    }
  }

  return {
    sent: (items) => mapLimit(items, PARALLEL, sentOne),
    async record(messages) {
      const items = messages.flatMap((m) => (m.recordOn ? [m.recordOn] : []));
      await mapLimit(items, PARALLEL, recordOne);
    },
  };
}

function recordError(error: unknown, uri: string): Error {
  if (error instanceof TransientError) return error;
  const status = httpStatusOf(error);
  const message = `Cloud Storage recording notifications on ${uri}: ${status === undefined ? 'network error' : `HTTP ${status}`}: ${errorMessage(error)}`;
  return isTransientGoogleError(error)
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}
