import { promises as fs } from 'node:fs';
import { gsUri } from '../stores/store';
import { readSettled, type SettledObject } from '../warehouses/duckdb/ledger';
import { closeSession, openSession } from '../warehouses/duckdb/session';

const LOCK_WAIT_MS = 2000;

/** The key of one object generation. */
export function settledKey(object: { bucket: string; name: string; generation: string }): string {
  return `${gsUri(object)}#${object.generation}`;
}

export function toSettledKeys(objects: readonly SettledObject[]): Set<string> {
  return new Set(objects.map((o) => `${o.uri}#${o.generation}`));
}

/**
 * The object generations the local ledger has settled (loaded or rejected), read before the receiver
 * opens the file. A missing file has settled nothing.
 */
export async function readSettledKeys(warehouseFile: string): Promise<Set<string>> {
  try {
    await fs.access(warehouseFile);
  } catch {
    return new Set();
  }
  const session = await openSession(warehouseFile, LOCK_WAIT_MS, true);
  try {
    return toSettledKeys(await readSettled(session.connection));
  } finally {
    closeSession(session);
  }
}
