import type { FileMetadata, Storage } from '@google-cloud/storage';
import {
  CLAIM_METADATA_KEY,
  formatClaim,
  parseClaim,
  type ClaimStore,
  type ClaimSwap,
  type SwapResult,
} from './claims';
import { TransientError, errorMessage } from '../core/errors';
import { httpStatusOf, isTransientGoogleError } from '../core/google-errors';
import { mapLimit } from '../core/map-limit';
import { withTimeout } from '../core/timeout';
import { gsUri, type StoredObject } from './store';

// Longer than an insert call may take (the warehouse gives up on one after 60 s) plus clock skew.
const GRACE_MS = 120_000;
// A job's members are claimed before it is inserted: this bounds how long that takes for 10,000.
const PARALLEL_SWAPS = 64;
// Longest wait for one call, its retries included (the client tries for up to 60 s each time).
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * Claims kept in each object's custom metadata. A swap is `objects.patch` with `ifGenerationMatch`
 * (the generation being loaded) and `ifMetagenerationMatch` (the metadata version read): Cloud Storage
 * applies at most one of two racing swaps. Metadata updates raise `metadataUpdated`, never
 * `finalized`, so a claim triggers nothing.
 */
export function createGcsClaims(
  storage: Storage,
  graceMs = GRACE_MS,
  requestTimeoutMs = REQUEST_TIMEOUT_MS,
): ClaimStore {
  const call = <T>(work: Promise<T>, uri: string): Promise<T> =>
    withTimeout(
      work,
      requestTimeoutMs,
      `Cloud Storage claiming ${uri}: no answer within ${requestTimeoutMs} ms`,
    );
  async function swapOne({ object, claim, version }: ClaimSwap): Promise<SwapResult> {
    const value = formatClaim(claim, object);
    const file = storage.bucket(object.bucket).file(object.name);
    const uri = `${gsUri(object)}#${object.generation}`;
    try {
      const [updated] = await call(
        file.setMetadata(
          { metadata: { [CLAIM_METADATA_KEY]: value } },
          { ifGenerationMatch: object.generation, ifMetagenerationMatch: version },
        ),
        uri,
      );
      return { kind: 'won', state: { claim, version: String(updated.metageneration) } };
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 404) return { kind: 'gone' };
      if (status !== 412) throw claimError(error, uri);
      // The client retries a conditional update whose answer was lost; the retry then finds our
      // own change and fails its precondition. Read which claim stands.
      const [current] = await call(file.getMetadata(), uri).catch((e: unknown) => {
        if (httpStatusOf(e) === 404) return [undefined];
        throw claimError(e, uri);
      });
      if (!current || String(current.generation) !== object.generation) return { kind: 'gone' };
      if (metadataValue(current) !== value) return { kind: 'lost' };
      return { kind: 'won', state: { claim, version: String(current.metageneration) } };
    }
  }

  return {
    graceMs,
    async read(object, destination) {
      let snapshot: Pick<StoredObject, 'metadata' | 'metageneration'> = object;
      if (object.metageneration === undefined) {
        const file = storage
          .bucket(object.bucket)
          .file(object.name, { generation: object.generation });
        const [metadata] = await call(file.getMetadata(), gsUri(object)).catch((error: unknown) => {
          throw claimError(error, gsUri(object));
        });
        snapshot = { metadata: { [CLAIM_METADATA_KEY]: metadataValue(metadata) ?? '' } };
        snapshot.metageneration = String(metadata.metageneration);
      }
      const claim = parseClaim(snapshot.metadata?.[CLAIM_METADATA_KEY], destination, object);
      return { ...(claim ? { claim } : {}), version: snapshot.metageneration ?? '1' };
    },
    swap: (swaps) => mapLimit(swaps, PARALLEL_SWAPS, swapOne),
  };
}

function metadataValue(metadata: FileMetadata): string | undefined {
  const value = metadata.metadata?.[CLAIM_METADATA_KEY];
  return value === null || value === undefined ? undefined : String(value);
}

function claimError(error: unknown, uri: string): Error {
  if (error instanceof TransientError) return error;
  const status = httpStatusOf(error);
  const message = `Cloud Storage claiming ${uri}: ${status === undefined ? 'network error' : `HTTP ${status}`}: ${errorMessage(error)}`;
  return isTransientGoogleError(error)
    ? new TransientError(message, { cause: error })
    : new Error(message, { cause: error });
}
