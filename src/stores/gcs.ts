import { Storage, type CopyOptions, type File, type FileMetadata } from '@google-cloud/storage';
import { TransientError, errorMessage } from '../errors';
import { httpStatusOf, isTransientGoogleError } from '../google-errors';
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
}

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

  return {
    async stat(bucket, name) {
      try {
        const [metadata] = await file(bucket, name).getMetadata();
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
      const chunks: Buffer[] = [];
      let length = 0;
      try {
        // Stop at maxBytes even if the server ignored the range (GCS does for transcoded objects).
        for await (const chunk of stream) {
          const bytes = chunk as Buffer;
          chunks.push(bytes.subarray(0, maxBytes - length));
          length += Math.min(bytes.length, maxBytes - length);
          if (length >= maxBytes) break;
        }
      } catch (error) {
        const status = httpStatusOf(error);
        if (status === 404) throw new ObjectGoneError(`${uri} no longer exists`, { cause: error });
        if (status === 416) return Buffer.alloc(0);
        throw toStoreError(error, 'reading', uri);
      } finally {
        stream.destroy();
      }
      return Buffer.concat(chunks, length);
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
          const [page, next] = await storage.bucket(bucket).getFiles(query);
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
        await file(object.bucket, object.name).setMetadata(
          { metadata },
          { ifGenerationMatch: object.generation },
        );
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
        const [current] = await source.getMetadata();
        await source.copy(
          storage.bucket(object.bucket).file(targetName),
          copyOptions(current, metadata),
        );
      } catch (error) {
        if (httpStatusOf(error) === 404)
          throw new ObjectGoneError(`${uri} no longer exists`, { cause: error });
        throw toStoreError(error, `copying to gs://${object.bucket}/${targetName}`, uri);
      }
    },
  };
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
