import * as path from 'node:path';
import { copyObject } from './local-copy';
import { listObjects } from './local-list';
import { toStored, withMetadata } from './local-metadata';
import { lstatInside, resolveObject } from './local-paths';
import { readHead } from './local-read';
import type { ObjectStore, StoredObject } from './store';

export { generationOf, generationProblem } from './local-metadata';

/**
 * A folder standing in for Cloud Storage: objects live at `<root>/buckets/<bucket>/<name>`, and an
 * object's generation is its mtime in microseconds. Nothing outside `<root>/buckets/<bucket>/` is
 * ever read or written, and symbolic links are never followed.
 */
export function createLocalStore(
  root: string,
  options: { onSymlink?: (file: string) => void } = {},
): ObjectStore {
  if (root === '') throw new Error('local store: root folder must not be empty');
  const base = path.resolve(root);
  return {
    stat: (bucket, name) => statObject(base, bucket, name),
    readHead: (object, maxBytes) => readHead(base, object, maxBytes),
    list: (bucket, prefix) => listObjects(base, bucket, prefix, options.onSymlink),
    copyTo: (object, targetName, metadata) => copyObject(base, object, targetName, metadata),
  };
}

/** The file of an object, checked to stay inside its bucket folder (it may not exist). */
export function localObjectPath(root: string, bucket: string, name: string): string {
  return resolveObject(path.resolve(root), bucket, name).file;
}

async function statObject(
  base: string,
  bucket: string,
  name: string,
): Promise<StoredObject | undefined> {
  const target = resolveObject(base, bucket, name);
  const stats = lstatInside(target);
  return stats?.isFile() ? withMetadata(toStored(bucket, name, stats), target.file) : undefined;
}
