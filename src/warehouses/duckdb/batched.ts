import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * Turns a lookup of many keys into a lookup of one: calls made while the file is busy wait together
 * and are answered by one query when their turn comes, instead of one turn each.
 */
export function batched<K, R>(
  run: <T>(work: (c: DuckDBConnection) => Promise<T>) => Promise<T>,
  lookup: (c: DuckDBConnection, keys: K[]) => Promise<R[]>,
): (key: K) => Promise<R> {
  let waiting: { key: K; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  return (key) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ key, resolve, reject });
      if (waiting.length > 1) return;
      run(async (c) => {
        const calls = waiting;
        waiting = [];
        try {
          const results = await lookup(
            c,
            calls.map((call) => call.key),
          );
          calls.forEach((call, i) => call.resolve(results[i] as R));
        } catch (error) {
          calls.forEach((call) => call.reject(error));
        }
      }).catch((error: unknown) => {
        // The turn itself failed (the file could not be opened): every waiting call fails with it.
        const calls = waiting;
        waiting = [];
        calls.forEach((call) => call.reject(error));
      });
    });
}
