import type { ClaimStore, SwapResult } from '../../stores/claims';
import { batched } from './batched';
import { claimKey, type FileKnowledge } from './file-knowledge';
import { readClaims, swapClaims } from './ledger';
import type { SerialDb } from './session';

/** Claims kept in the ledger, beside the loads that commit them. */
export function createLedgerClaims(
  db: SerialDb,
  known: FileKnowledge,
  graceMs: number,
): ClaimStore {
  // Lookups that wait while a load holds the file are answered together when it is done.
  const readClaim = batched(db.run, readClaims);
  return {
    graceMs,
    recordsEveryLoad: true,
    async read(object, destination) {
      known.checkFile();
      const loaded = known.loadedClaims.get(claimKey(object, destination));
      if (loaded) return { claim: { ...loaded, destination }, version: loaded.jobId };
      const claim = await readClaim({ object, destination });
      if (claim && known.completed.has(claim.jobId))
        known.loadedClaims.set(claimKey(object, destination), claim);
      return claim ? { claim: { ...claim, destination }, version: claim.jobId } : { version: '' };
    },
    swap: (swaps) =>
      db.run(async (c) => {
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
