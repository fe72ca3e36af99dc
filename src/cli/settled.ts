import { gsUri } from '../stores/store';
import { readDuckDbFile } from '../warehouses/duckdb';
import { readSettled, type SettledObject } from '../warehouses/duckdb/ledger';

const LOCK_WAIT_MS = 2000;

/** The key of one object generation. */
export function settledKey(object: { bucket: string; name: string; generation: string }): string {
  return keyOf(gsUri(object), object.generation);
}

export function toSettledKeys(objects: readonly SettledObject[]): Set<string> {
  return new Set(objects.map((o) => keyOf(o.uri, o.generation)));
}

function keyOf(uri: string, generation: string): string {
  return `${uri}#${generation}`;
}

/**
 * The object generations the local ledger has settled (loaded or rejected), read before the receiver
 * opens the file. A missing file has settled nothing.
 */
export async function readSettledKeys(warehouseFile: string): Promise<Set<string>> {
  const settled = await readDuckDbFile(warehouseFile, readSettled, [], {
    lockWaitMs: LOCK_WAIT_MS,
  });
  return toSettledKeys(settled);
}
