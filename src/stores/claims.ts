import { ownMetadataValue, readOwnMetadata } from './own-metadata';
import type { StoredObject } from './store';

/**
 * Which load job takes an object generation into a destination table, and since when. A coalesced
 * job holds many objects and cannot take its id from one of them, so each member carries its claim.
 */
export interface Claim {
  jobId: string;
  /** Epoch milliseconds. */
  at: number;
  /** `project.dataset.table`, or `dataset.table` in the client's default project. */
  destination: string;
}

/** A claim as read, and the version a compare-and-swap must find to replace it. */
export interface ClaimState {
  /** The claim for the destination asked about; absent when there is none for it. */
  claim?: Claim;
  version: string;
}

export interface ClaimSwap {
  object: StoredObject;
  claim: Claim;
  /** The version the swap expects (from `read`, or from an earlier swap). */
  version: string;
}

/** What a swap came to: the new state, `lost` when the version had changed, `gone` with the generation. */
export type SwapResult = { kind: 'won'; state: ClaimState } | { kind: 'lost' } | { kind: 'gone' };

/**
 * Where claims live: on the object in Cloud Storage (custom metadata, swapped with
 * `ifMetagenerationMatch`), in the ledger of the local warehouse. At most one claim per object
 * generation and destination; it changes only by compare-and-swap.
 */
export interface ClaimStore {
  /**
   * How long a claim whose job cannot be found may still have its insert in flight: longer than the
   * longest insert call plus clock skew. Older, it is claimed again.
   */
  readonly graceMs: number;
  /**
   * Whether the warehouse itself leaves a claim on each source of every load it commits (the local
   * ledger). Where not, the use case claims each object before its load (`batch: false` too), so that
   * an object without a claim was never loaded.
   */
  readonly recordsEveryLoad?: boolean;
  /**
   * The claim on this generation for `destination`. Where claims live on the object, they are read
   * from `object` as `stat` returned it: stat again for a fresh one.
   */
  read(object: StoredObject, destination: string): Promise<ClaimState>;
  /** Compare-and-swap of each claim, in order. */
  swap(swaps: ClaimSwap[]): Promise<SwapResult[]>;
}

/** The custom metadata key a claim is kept under on a Cloud Storage object. */
export const CLAIM_METADATA_KEY = 'ingest-claim';

/**
 * The claim as stored in the metadata of `object`: one JSON value, readable in the console, naming the
 * object generation it was made on (a copy of the object arrives with it).
 */
export function formatClaim(claim: Claim, object: StoredObject): string {
  return ownMetadataValue(object, {
    job: claim.jobId,
    at: new Date(claim.at).toISOString(),
    table: claim.destination,
  });
}

/**
 * The claim a metadata value of `object` holds for `destination`; anything else (or nothing) is no
 * claim, and so is a claim made on another object or generation.
 */
export function parseClaim(
  value: string | undefined,
  destination: string,
  object: StoredObject,
): Claim | undefined {
  const fields = readOwnMetadata(object, value);
  const at = typeof fields?.at === 'string' ? Date.parse(fields.at) : NaN;
  if (typeof fields?.job !== 'string' || fields.table !== destination || Number.isNaN(at))
    return undefined;
  return { jobId: fields.job, at, destination };
}
