import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { HistoryEntry } from '../history/entry';
import { localObjectPath } from '../stores/local';
import { gsUri, type ObjectStore } from '../stores/store';
import type { OutcomeRow } from './outcomes';

/** A rejected object and where its quarantined copy is, when there is one. */
export interface RejectedRow {
  at: string;
  uri: string;
  reason?: string;
  /** The copy's file, relative to the working folder when inside it. */
  quarantined?: string;
}

/** A file under a bucket folder's quarantine prefix: the copy of which object, when, and why. */
export interface QuarantineCopy {
  /** The rejected object's URI (`ingest-source`). */
  uri: string;
  at: string;
  reason?: string;
  file: string;
}

/**
 * Every rejected object the page knows of, newest first, at most `limit`, one row per object: the
 * receiver's latest outcomes, the ledger's rejections, and the quarantined copies (which also hold
 * rejections the ledger never recorded), each with its copy where there is one.
 */
export function mergeRejected(
  latest: readonly OutcomeRow[],
  ledger: HistoryEntry[],
  copies: QuarantineCopy[],
  limit: number,
): RejectedRow[] {
  const copyOf = new Map(copies.map((c) => [c.uri, c.file]));
  const rows = [
    ...latest.filter((r) => r.outcome === 'rejected'),
    ...ledger
      .filter((e) => e.outcome === 'rejected')
      .flatMap((e) => e.objects.map((uri) => ({ at: e.time, uri, reason: e.reason }))),
    ...copies,
  ].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  const byUri = new Map<string, RejectedRow>();
  for (const { at, uri, reason } of rows) {
    if (byUri.has(uri)) continue;
    const row: RejectedRow = { at, uri, reason };
    const file = copyOf.get(uri);
    if (file !== undefined) row.quarantined = file;
    byUri.set(uri, row);
  }
  return [...byUri.values()].slice(0, limit);
}

/**
 * The copies under the quarantine prefix of every bucket folder in `dataDir`, their files shown
 * relative to `cwd` when inside it. A copy's time is its generation, the time it was written.
 */
export async function readQuarantine(
  store: ObjectStore,
  dataDir: string,
  quarantinePrefix: string,
  cwd: string,
): Promise<QuarantineCopy[]> {
  const entries = await fs
    .readdir(path.join(dataDir, 'buckets'), { withFileTypes: true })
    .catch(() => []);
  const copies: QuarantineCopy[] = [];
  for (const bucket of entries.filter((e) => e.isDirectory()).map((e) => e.name)) {
    for await (const copy of store.list(bucket, quarantinePrefix)) {
      const source = { bucket, name: copy.name.slice(quarantinePrefix.length) };
      const file = localObjectPath(dataDir, bucket, copy.name);
      const relative = path.relative(cwd, file);
      copies.push({
        uri: copy.metadata?.['ingest-source'] ?? gsUri(source),
        at: new Date(Number(BigInt(copy.generation) / 1000n)).toISOString(),
        reason: copy.metadata?.['ingest-reason'],
        file: relative.startsWith('..') ? file : relative,
      });
    }
  }
  return copies;
}
