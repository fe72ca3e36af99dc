import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import { METADATA_SUFFIX, isMetadataSidecar, toStored, withMetadata } from './local-metadata';
import { bucketDir, isGone, lstatOrUndefined } from './local-paths';
import { BucketNotFoundError, type StoredObject } from './store';

export async function* listObjects(
  base: string,
  bucket: string,
  prefix: string,
  onSymlink?: (file: string) => void,
): AsyncGenerator<StoredObject> {
  if (prefix.includes('\0')) throw new Error(`local store: prefix "${prefix}" contains a NUL byte`);
  const dir = bucketDir(base, bucket);
  if (!lstatOrUndefined(dir)?.isDirectory()) {
    throw new BucketNotFoundError(`bucket ${bucket} does not exist (no folder ${dir})`);
  }
  yield* walk({ bucket, prefix, onSymlink }, dir, '');
}

interface Walk {
  bucket: string;
  prefix: string;
  /** Told of each symbolic link passed over (links are never followed). */
  onSymlink?: (file: string) => void;
}

/**
 * Yields the files under `dir` in Cloud Storage name order: a folder sorts as its name plus "/", so
 * "a-b" < "a/x" < "a0" as byte-wise name comparison has it. One folder is read at a time.
 */
async function* walk(what: Walk, dir: string, relative: string): AsyncGenerator<StoredObject> {
  const { bucket, prefix } = what;
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isGone(error)) return;
    throw error;
  }
  const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
  for (const link of entries.filter((e) => e.isSymbolicLink()))
    what.onSymlink?.(path.join(dir, link.name));
  const keyed = entries
    // Dirent types come from lstat: symlinks, sockets and the like are neither files nor folders.
    .filter((e) => e.isDirectory() || (e.isFile() && !isMetadataSidecar(e.name, files)))
    .map((entry) => ({
      entry,
      key: Buffer.from(relative + entry.name + (entry.isDirectory() ? '/' : '')),
    }))
    .sort((a, b) => Buffer.compare(a.key, b.key));
  for (const { entry } of keyed) {
    const name = relative + entry.name;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const folder = `${name}/`;
      const wanted = folder.startsWith(prefix) || prefix.startsWith(folder);
      if (wanted && lstatOrUndefined(file)?.isDirectory()) yield* walk(what, file, folder);
    } else if (name.startsWith(prefix)) {
      const stats = lstatOrUndefined(file);
      if (!stats?.isFile()) continue;
      const object = toStored(bucket, name, stats);
      yield files.has(entry.name + METADATA_SUFFIX) ? withMetadata(object, file) : object;
    }
  }
}
