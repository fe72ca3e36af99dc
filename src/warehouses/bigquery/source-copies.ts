import type { Storage } from '@google-cloud/storage';
import { TransientError, errorMessage } from '../../core/errors';
import { httpStatusOf, isTransientGoogleError } from '../../core/google-errors';
import { gsUri, type StoredObject } from '../../stores/store';
import { copiesAmong, loadName } from './source-uris';

type Call = <T>(work: Promise<T>, what: string) => Promise<T>;

/**
 * Copies each source whose URI BigQuery would misread to the name its job reads (source-uris.ts):
 * exactly its generation, and only when no copy is there yet, so that a job of a concurrent delivery
 * reading an earlier copy never sees it replaced. The copy keeps the source's metadata (content type
 * and encoding included).
 */
export async function stageSources(
  storage: Storage,
  sources: StoredObject[],
  prefix: string,
  call: Call,
): Promise<void> {
  for (const source of sources) {
    const target = loadName(source, prefix);
    if (target === source.name) continue;
    const bucket = storage.bucket(source.bucket);
    const from = bucket.file(source.name, { generation: source.generation });
    const what = `copying ${gsUri(source)}#${source.generation} to gs://${source.bucket}/${target}`;
    try {
      await call(
        from.copy(bucket.file(target), { preconditionOpts: { ifGenerationMatch: 0 } }),
        what,
      );
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 412) continue; // copied by an earlier delivery: the same generation's bytes
      if (status === 404) {
        throw new TransientError(`${what}: that generation no longer exists; redelivery skips it`, {
          cause: error,
        });
      }
      throw storageError(error, what);
    }
  }
}

/** Removes the copies among a finished job's source URIs (a copy already gone is fine). */
export async function removeCopies(
  storage: Storage,
  uris: string[],
  prefix: string,
  call: Call,
): Promise<void> {
  for (const { bucket, name } of copiesAmong(uris, prefix)) {
    const what = `removing the load copy gs://${bucket}/${name}`;
    try {
      await call(storage.bucket(bucket).file(name).delete({ ignoreNotFound: true }), what);
    } catch (error) {
      throw storageError(error, what);
    }
  }
}

function storageError(error: unknown, what: string): Error {
  if (error instanceof TransientError) return error;
  const status = httpStatusOf(error);
  const message = `${what}: ${status === undefined ? 'network error' : `HTTP ${status}`}: ${errorMessage(error)}`;
  return isTransientGoogleError(error)
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}
