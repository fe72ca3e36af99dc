import { Storage, type CopyOptions, type FileMetadata } from '@google-cloud/storage';
import { httpStatusOf } from '../core/google-errors';
import { createGcsCalls, toStoreError, type GcsCalls } from './gcs-calls';
import { listObjects } from './gcs-list';
import { annotateObject, statObject, stringValues } from './gcs-metadata';
import { ObjectGoneError, gsUri, type ObjectStore, type StoredObject } from './store';

export interface GcsStoreOptions {
  /** A configured client; default `new Storage()`, which honours STORAGE_EMULATOR_HOST. */
  storage?: Storage;
  /** Longest wait for one call (its retries included) before it fails as transient; default 60 s. */
  requestTimeoutMs?: number;
}

const REQUEST_TIMEOUT_MS = 60_000;

/** The Cloud Storage ObjectStore: metadata, ranged reads, paged listing and server-side copies. */
export function createGcsStore(options: GcsStoreOptions = {}): ObjectStore {
  const calls = createGcsCalls(
    options.storage ?? new Storage(),
    options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
  );
  return {
    stat: (bucket, name) => statObject(calls, bucket, name),
    readHead: (object, maxBytes) => readHead(calls, object, maxBytes),
    list: (bucket, prefix) => listObjects(calls, bucket, prefix),
    annotate: (object, metadata) => annotateObject(calls, object, metadata),
    copyTo: (object, targetName, metadata) => copyObject(calls, object, targetName, metadata),
  };
}

async function readHead(
  { file, call }: GcsCalls,
  object: StoredObject,
  maxBytes: number,
): Promise<Buffer> {
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

async function copyObject(
  { storage, file, call }: GcsCalls,
  object: StoredObject,
  targetName: string,
  metadata: Record<string, string>,
): Promise<void> {
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
