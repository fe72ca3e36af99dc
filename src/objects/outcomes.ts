import type { ObjectRef } from './request';
import { gsUri } from '../stores/store';

export const OUTCOMES = ['loaded', 'duplicate', 'queued', 'skipped', 'rejected'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface ObjectResult {
  uri: string;
  generation?: string;
  outcome: Outcome;
  destination?: string;
  jobId?: string;
  /** Rows the job wrote: for a job of several objects, all of theirs (`jobObjects` says how many). */
  rows?: number;
  /** How many objects the job loaded together, when it coalesced several. */
  jobObjects?: number;
  /** This object's own rows in a job of several, where the warehouse counts them per source (locally). */
  objectRows?: number;
  /**
   * A forced reprocess on an `append` route: its rows were added to the table again, next to those
   * of any earlier load of this generation.
   */
  appendedAgain?: true;
  /** On a lineage route: the rows of the object's earlier load that this load replaced (0: none). */
  replacedRows?: number;
  /** Rows skipped under `maxBadRecords`; `reason` then says why the first was bad. */
  badRecords?: number;
  /** What the job changed in the table's schema (`added column extra STRING`), on one of its objects. */
  schemaChanges?: string[];
  reason?: string;
  /** A notification of this outcome went out with this request (`notify` in ingest.yaml). */
  notified?: true;
}

export interface IngestResult {
  outcome: Outcome | 'partial';
  objects: ObjectResult[];
}

/** The one outcome all objects share, else `partial`; a request that named nothing is `skipped`. */
export function overallOutcome(results: ObjectResult[]): Outcome | 'partial' {
  const outcomes = new Set(results.map((r) => r.outcome));
  if (outcomes.size === 0) return 'skipped';
  return outcomes.size === 1 ? (results[0] as ObjectResult).outcome : 'partial';
}

export function identify(ref: ObjectRef): Pick<ObjectResult, 'uri' | 'generation'> {
  return ref.generation === undefined
    ? { uri: gsUri(ref) }
    : { uri: gsUri(ref), generation: ref.generation };
}
