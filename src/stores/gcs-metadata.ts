import type { FileMetadata } from '@google-cloud/storage';
import { httpStatusOf } from '../core/google-errors';
import { toStoreError, type GcsCalls } from './gcs-calls';
import { ObjectGoneError, gsUri, type StoredObject } from './store';

/** The object's live generation, or undefined when there is none. */
export async function statObject(
  { file, call }: GcsCalls,
  bucket: string,
  name: string,
): Promise<StoredObject | undefined> {
  try {
    const uri = `gs://${bucket}/${name}`;
    const [metadata] = await call(file(bucket, name).getMetadata(), 'reading the metadata of', uri);
    return toStoredObject(metadata, bucket, name);
  } catch (error) {
    if (httpStatusOf(error) === 404) return undefined;
    throw toStoreError(error, 'reading the metadata of', `gs://${bucket}/${name}`);
  }
}

/** Adds `metadata` to this generation's custom metadata; ObjectGoneError when it is no longer live. */
export async function annotateObject(
  { file, call }: GcsCalls,
  object: StoredObject,
  metadata: Record<string, string>,
): Promise<void> {
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
}

export function stringValues(metadata: FileMetadata['metadata']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata ?? {}))
    if (value !== null) out[key] = String(value);
  return out;
}

export function toStoredObject(metadata: FileMetadata, bucket: string, name: string): StoredObject {
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
