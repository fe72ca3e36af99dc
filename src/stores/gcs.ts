import { Storage, type CopyOptions, type File, type FileMetadata } from '@google-cloud/storage';
import { TransientError, errorMessage } from '../core/errors';
import { httpStatusOf, isTransientGoogleError } from '../core/google-errors';
import { withTimeout } from '../core/timeout';
import {
  BucketNotFoundError,
  ObjectGoneError,
  gsUri,
  type ObjectStore,
  type StoredObject,
} from './store';

export interface GcsStoreOptions {
  /** A configured client; default `new Storage()`, which honours STORAGE_EMULATOR_HOST. */
  storage?: Storage;
  /** Longest wait for one call (its retries included) before it fails as transient; default 60 s. */
  requestTimeoutMs?: number;
}

const REQUEST_TIMEOUT_MS = 60_000;

// objects.list returns at most 1,000 items a page.
const PAGE_SIZE = 1000;
// A partial response: only what a StoredObject needs. It also spares the client building a File per
// item, which costs more CPU than the request (about 5 s per 100,000 objects).
const LIST_FIELDS =
  'items(bucket,name,generation,metageneration,size,contentType,metadata),nextPageToken';

/** The Cloud Storage ObjectStore: metadata, ranged reads, paged listing and server-side copies. */
export function createGcsStore(options: GcsStoreOptions = {}): ObjectStore {
  const storage = options.storage ?? new Storage();
  const file = (bucket: string, name: string, generation?: string): File =>
    storage.bucket(bucket).file(name, generation === undefined ? {} : { generation });
  const ms = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const call = <T>(work: Promise<T>, action: string, uri: string): Promise<T> =>
    withTimeout(work, ms, `Cloud Storage ${action} ${uri}: no answer within ${ms} ms`);

  return {
    async stat(bucket, name) {
      try {
        const uri = `gs://${bucket}/${name}`;
        const [metadata] = await call(
          file(bucket, name).getMetadata(),
          'reading the metadata of',
          uri,
        );
        return toStoredObject(metadata, bucket, name);
      } catch (error) {
        if (httpStatusOf(error) === 404) return undefined;
        throw toStoreError(error, 'reading the metadata of', `gs://${bucket}/${name}`);
      }
    },

    async readHead(object, maxBytes) {
      if (maxBytes <= 0 || object.size === 0) return Buffer.alloc(0);
      const uri = `${gsUri(object)}#${object.generation}`;
      // Stored bytes exactly (no gunzip of gzip-encoded objects: a cut-off gzip stream cannot be inflated).
      const stream = file(object.bucket, object.name, object.generation).createReadStream({
        start: 0,
        end: Math.min(maxBytes, object.size) - 1,
        decompress: false,
        validation: false,
      });
      const reading = readUpTo(stream, maxBytes);
      // Once the wait is over the stream is destroyed: the read then fails, and no one waits for it.
      reading.catch(() => undefined);
      try {
        return await call(reading, 'reading', uri);
      } catch (error) {
        const status = httpStatusOf(error);
        if (status === 404) throw new ObjectGoneError(`${uri} no longer exists`, { cause: error });
        if (status === 416) return Buffer.alloc(0);
        throw toStoreError(error, 'reading', uri);
      } finally {
        stream.destroy();
      }
    },

    async *list(bucket, prefix) {
      let pageToken: string | undefined;
      do {
        let items: unknown[];
        try {
          const query = {
            prefix,
            autoPaginate: false,
            maxResults: PAGE_SIZE,
            pageToken,
            fields: LIST_FIELDS,
          };
          const listing = storage.bucket(bucket).getFiles(query);
          const [page, next] = await call(listing, 'listing', `gs://${bucket}/${prefix}`);
          // With `fields` set, the client hands back the raw object resources, not File instances.
          items = page as unknown[];
          pageToken = next && 'pageToken' in next ? next.pageToken : undefined;
        } catch (error) {
          if (httpStatusOf(error) === 404) {
            throw new BucketNotFoundError(`bucket ${bucket} does not exist`, { cause: error });
          }
          throw toStoreError(error, 'listing', `gs://${bucket}/${prefix}`);
        }
        for (const item of items) yield toStoredObject(item as FileMetadata, bucket, '');
      } while (pageToken);
    },

    async annotate(object, metadata) {
      const uri = `${gsUri(object)}#${object.generation}`;
      try {
        // The precondition makes the update idempotent, so the client retries it itself.
        const update = file(object.bucket, object.name).setMetadata(
          { metadata },
          { ifGenerationMatch: object.generation },
        );
        await call(update, 'updating the metadata of', uri);
      } catch (error) {
        const status = httpStatusOf(error);
        if (status === 404 || status === 412)
          throw new ObjectGoneError(`${uri} is no longer the live generation`, { cause: error });
        throw toStoreError(error, 'updating the metadata of', uri);
      }
    },

    async copyTo(object, targetName, metadata) {
      const uri = `${gsUri(object)}#${object.generation}`;
      const source = file(object.bucket, object.name, object.generation);
      try {
        const action = `copying to gs://${object.bucket}/${targetName}`;
        const [current] = await call(source.getMetadata(), action, uri);
        const target = storage.bucket(object.bucket).file(targetName);
        await call(source.copy(target, copyOptions(current, metadata)), action, uri);
      } catch (error) {
        if (httpStatusOf(error) === 404)
          throw new ObjectGoneError(`${uri} no longer exists`, { cause: error });
        throw toStoreError(error, `copying to gs://${object.bucket}/${targetName}`, uri);
      }
    },
  };
}

/** At most `maxBytes` of the stream, even if the server ignored the range (GCS does for transcoded objects). */
async function readUpTo(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const bytes = chunk as Buffer;
    chunks.push(bytes.subarray(0, maxBytes - length));
    length += Math.min(bytes.length, maxBytes - length);
    if (length >= maxBytes) break;
  }
  return Buffer.concat(chunks, length);
}

/**
 * A rewrite with a request body takes its editable metadata from the body alone (objects.rewrite:
 * "if the request body is empty, editable metadata from the source object is applied"), so the
 * source's own fields are carried over explicitly, with ours added to its custom metadata.
 */
function copyOptions(source: FileMetadata, extra: Record<string, string>): CopyOptions {
  const options: CopyOptions = { metadata: { ...stringValues(source.metadata), ...extra } };
  if (source.contentType) options.contentType = source.contentType;
  if (source.contentEncoding) options.contentEncoding = source.contentEncoding;
  if (source.contentDisposition) options.contentDisposition = source.contentDisposition;
  if (source.cacheControl) options.cacheControl = source.cacheControl;
  return options;
}

function stringValues(metadata: FileMetadata['metadata']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata ?? {}))
    if (value !== null) out[key] = String(value);
  return out;
}

function toStoredObject(metadata: FileMetadata, bucket: string, name: string): StoredObject {
  const stored: StoredObject = {
    bucket: metadata.bucket ?? bucket,
    name: metadata.name ?? name,
    generation: String(metadata.generation ?? ''),
    // The JSON API sends int64 sizes as strings.
    size: Number(metadata.size ?? 0),
  };
  if (!stored.name || !/^[1-9][0-9]*$/.test(stored.generation)) {
    throw new Error(
      `Cloud Storage returned an object resource without name or generation in gs://${bucket}`,
    );
  }
  if (metadata.contentType) stored.contentType = metadata.contentType;
  if (metadata.metageneration !== undefined)
    stored.metageneration = String(metadata.metageneration);
  if (metadata.metadata) stored.metadata = stringValues(metadata.metadata);
  return stored;
}

/**
 * A transient Google client error, or a read of an object's body (readHead) that broke off after the
 * response began, which Node reports as a premature close or as `aborted`.
 */
function isTransient(error: unknown): boolean {
  if (isTransientGoogleError(error)) return true;
  if (httpStatusOf(error) !== undefined) return false;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (typeof message === 'string' && /premature close|aborted/i.test(message))
  );
}

function toStoreError(error: unknown, action: string, uri: string): Error {
  if (error instanceof TransientError) return error;
  const status = httpStatusOf(error);
  if (isTransient(error)) {
    const what = status === undefined ? 'network error' : `HTTP ${status}`;
    return new TransientError(`Cloud Storage ${action} ${uri}: ${what}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  const what = status === undefined ? 'failed' : `failed with HTTP ${status}`;
  return new Error(`Cloud Storage ${action} ${uri} ${what}: ${errorMessage(error)}`, {
    cause: error,
  });
}
