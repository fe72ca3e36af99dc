/** One generation of an object in a bucket. */
export interface StoredObject {
  bucket: string;
  name: string;
  generation: string;
  size: number;
  contentType?: string;
  /** Custom metadata (e.g. what a quarantine copy records), as stat and list return it. */
  metadata?: Record<string, string>;
  /** Cloud Storage's count of metadata changes to this generation, where the store keeps one. */
  metageneration?: string;
}

/** The object, or that generation of it, no longer exists. */
export class ObjectGoneError extends Error {
  override readonly name = 'ObjectGoneError';
}

/**
 * A name Cloud Storage allows that this store cannot hold (the local folder: an empty, "." or ".."
 * segment, a NUL); no such object can exist in it.
 */
export class UnsupportedNameError extends Error {
  override readonly name = 'UnsupportedNameError';
}

/** The bucket a listing names does not exist. */
export class BucketNotFoundError extends Error {
  override readonly name = 'BucketNotFoundError';
}

/**
 * Where CSV objects live: Cloud Storage in production, a folder locally. Names reaching a store are
 * names Cloud Storage allows (`checkName`); a store must still refuse to act outside its bucket.
 */
export interface ObjectStore {
  /** The object's current generation, or undefined when there is no such object. */
  stat(bucket: string, name: string): Promise<StoredObject | undefined>;
  /** At most `maxBytes` from the start of exactly this generation; ObjectGoneError when it is gone. */
  readHead(object: StoredObject, maxBytes: number): Promise<Buffer>;
  /**
   * Every object whose name starts with `prefix`, in name order, a page at a time;
   * BucketNotFoundError when there is no such bucket.
   */
  list(bucket: string, prefix: string): AsyncIterable<StoredObject>;
  /**
   * Adds `metadata` to this generation's custom metadata (ObjectGoneError when it is no longer the
   * live one). Stores whose warehouse cannot leave work behind a dead process need not offer it.
   */
  annotate?(object: StoredObject, metadata: Record<string, string>): Promise<void>;
  /** Copies this generation to `targetName` in the same bucket, with `metadata` attached. */
  copyTo(object: StoredObject, targetName: string, metadata: Record<string, string>): Promise<void>;
}

export function gsUri(object: { bucket: string; name: string }): string {
  return `gs://${object.bucket}/${object.name}`;
}
