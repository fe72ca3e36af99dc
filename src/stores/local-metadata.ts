import { readFileSync, type BigIntStats } from 'node:fs';
import { isGone, lstatOrUndefined } from './local-paths';
import type { StoredObject } from './store';

export const METADATA_SUFFIX = '.metadata.json';

/**
 * Why a file cannot be an object, or undefined: Cloud Storage generations are positive, and a local
 * object's is its mtime, so a file dated 1970-01-01 00:00 UTC or earlier has none.
 */
export function generationProblem(object: StoredObject): string | undefined {
  if (/^[1-9][0-9]*$/.test(object.generation)) return undefined;
  const modified = new Date(Number(BigInt(object.generation) / 1000n)).toISOString();
  return `its modification time (${modified}) is not after 1970, and the local store takes an object's generation from it: give it the current time (touch it, or copy it again) to load it`;
}

/** A file's generation: its mtime in microseconds. */
export function generationOf(stats: BigIntStats): string {
  return (stats.mtimeNs / 1000n).toString();
}

export function toStored(bucket: string, name: string, stats: BigIntStats): StoredObject {
  return { bucket, name, generation: generationOf(stats), size: Number(stats.size) };
}

/** The object with the custom metadata copyTo left beside it, if any. */
export function withMetadata(object: StoredObject, file: string): StoredObject {
  const sidecar = `${file}${METADATA_SUFFIX}`;
  if (!lstatOrUndefined(sidecar)) return object;
  let text: string;
  try {
    text = readFileSync(sidecar, 'utf8');
  } catch (error) {
    if (isGone(error)) return object;
    throw error;
  }
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null) return object;
  const metadata = Object.fromEntries(
    Object.entries(parsed).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  return { ...object, metadata };
}

/** copyTo's `<name>.metadata.json` next to `<name>` stands for object metadata, not an object. */
export function isMetadataSidecar(name: string, files: Set<string>): boolean {
  return name.endsWith(METADATA_SUFFIX) && files.has(name.slice(0, -METADATA_SUFFIX.length));
}
