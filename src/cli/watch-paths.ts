import * as path from 'node:path';
import { BUCKET_RULE, isBucketName } from '../core/names';

export type WatchPath =
  | { kind: 'watch' }
  | { kind: 'ignore' }
  | { kind: 'invalid-bucket'; bucket: string; warning: string };

/**
 * What the local Eventarc does with a path under the buckets folder: hidden files and folders and
 * the quarantine are never sent; a folder whose name is not a bucket name is warned about, not sent.
 */
export function classifyPath(buckets: string, file: string, quarantinePrefix: string): WatchPath {
  const relative = path.relative(buckets, file);
  if (relative === '') return { kind: 'watch' };
  const parts = relative.split(path.sep);
  const [bucket = '', ...rest] = parts;
  if (relative.startsWith('..') || parts.some((part) => part.startsWith('.'))) {
    return { kind: 'ignore' };
  }
  if (!isBucketName(bucket)) {
    const warning = `ignoring ${path.join(buckets, bucket)}: "${bucket}" is not a valid bucket name (${BUCKET_RULE}); its files are not sent`;
    return { kind: 'invalid-bucket', bucket, warning };
  }
  const name = rest.join('/');
  const quarantined = name.startsWith(quarantinePrefix) || `${name}/`.startsWith(quarantinePrefix);
  if (name !== '' && quarantined) return { kind: 'ignore' };
  return { kind: 'watch' };
}
