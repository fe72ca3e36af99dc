import type { DuckDBConnection } from '@duckdb/node-api';
import type { ClaimStore, SwapResult } from '../../stores/claims';
import { batched } from './batched';
import type { Known } from './known';
import { readClaims, swapClaims } from './ledger';

type Run = <T>(work: (c: DuckDBConnection) => Promise<T>) => Promise<T>;

/**
 * Claims in the ledger (`_ingest.claims`), swapped inside transactions of the one process that holds
 * the file. The claim of an object a job of this process loaded is answered from memory.
 */
export function ledgerClaims(run: Run, known: Known, graceMs: number): ClaimStore {
  // Lookups that wait while a load holds the file are answered together when it is done.
  const readClaim = batched(run, readClaims);
  return {
    graceMs,
    recordsEveryLoad: true,
    async read(object, destination) {
      known.check();
      const loaded = known.loadedClaim(object, destination);
      if (loaded) return { claim: { ...loaded, destination }, version: loaded.jobId };
      const claim = await readClaim({ object, destination });
      if (claim) known.rememberClaim(object, destination, claim);
      return claim ? { claim: { ...claim, destination }, version: claim.jobId } : { version: '' };
    },
    swap: (swaps) =>
      run(async (c) => {
        await c.run('BEGIN TRANSACTION');
        try {
          const won = await swapClaims(
            c,
            swaps.map((s) => ({ object: s.object, claim: s.claim, expected: s.version })),
          );
          await c.run('COMMIT');
          return swaps.map(({ claim }, i): SwapResult =>
            won[i] ? { kind: 'won', state: { claim, version: claim.jobId } } : { kind: 'lost' },
          );
        } catch (error) {
          await c.run('ROLLBACK').catch(() => undefined);
          throw error;
        }
      }),
  };
}
