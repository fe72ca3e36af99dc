import { lstatSync, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { RequestError } from '../core/errors';
import { UnsupportedNameError } from './store';

export interface ObjectPath {
  bucket: string;
  name: string;
  bucketDir: string;
  segments: string[];
  file: string;
}

export function bucketDir(base: string, bucket: string): string {
  if (bucket === '' || bucket === '.' || bucket === '..' || /[/\\\0]/.test(bucket)) {
    throw new Error(`local store: bucket "${bucket}" is not a folder name inside ${base}`);
  }
  return path.join(base, 'buckets', bucket);
}

/**
 * The file of an object. A name with a ".." segment escapes its bucket folder: a RequestError (400).
 * Another name whose file would not be exactly its own inside the bucket folder (an empty or "."
 * segment, a NUL, the platform's other separator) throws UnsupportedNameError: a folder cannot hold
 * such an object, and its path is never used.
 */
export function resolveObject(base: string, bucket: string, name: string): ObjectPath {
  const dir = bucketDir(base, bucket);
  const segments = name.split('/');
  const file = path.join(dir, ...segments);
  // A trailing "/" is a folder placeholder's: a folder, so no object.
  const unfit = segments.some(
    (s, i) =>
      (s === '' && i < segments.length - 1) ||
      s === '.' ||
      s === '..' ||
      s.includes('\0') ||
      s.includes(path.sep),
  );
  if (segments.includes('..') || !file.startsWith(dir + path.sep)) {
    throw new RequestError(
      `object name "${name}" escapes its bucket: a ".." path segment would leave the local folder of bucket ${bucket}`,
    );
  }
  if (unfit) {
    throw new UnsupportedNameError(
      `object name "${name}" cannot be a file inside the local folder of bucket ${bucket} (an empty, "." or ".." path segment, or a NUL); Cloud Storage can hold it, the local backend cannot`,
    );
  }
  return { bucket, name, bucketDir: dir, segments, file };
}

// Stats and the small metadata file are read synchronously: on a local disk they take microseconds,
// far less than a round trip through the thread pool, and a redelivered event is mostly these.
export function lstatOrUndefined(file: string): BigIntStats | undefined {
  try {
    return lstatSync(file, { bigint: true, throwIfNoEntry: false });
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** lstat of the object, or undefined when it or any folder on its way is missing or a symlink. */
export function lstatInside(target: ObjectPath): BigIntStats | undefined {
  let current = target.bucketDir;
  let stats = lstatOrUndefined(current);
  for (const segment of target.segments) {
    if (!stats?.isDirectory()) return undefined;
    current = path.join(current, segment);
    stats = lstatOrUndefined(current);
  }
  return stats?.isSymbolicLink() ? undefined : stats;
}

export function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}
