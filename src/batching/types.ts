import type { Waiting } from './batcher';
import type { BatchOptions, Route } from '../config';
import type { ObjectResult } from '../objects/outcomes';
import type { StoredObject } from '../stores/store';
import type { Destination } from '../warehouses/warehouse';
import type { SourceHead } from '../schema/columns';

/** One object of a batching route, as the use case hands it over. */
export interface BatchObject {
  object: StoredObject;
  route: Route & { batch: BatchOptions };
  destination: Destination;
  /** Its header and first rows, once the head check read them. */
  head?: SourceHead;
}

/** An object of a route that loads each object alone. */
export type LoneObject = Omit<BatchObject, 'route'> & { route: Route };

/** Loads the objects of batching routes: paced, coalesced, each generation claimed for its job. */
export interface Batches {
  /** The object's result; TransientError when its time budget runs out first (503, redelivered). */
  load(item: BatchObject, forcedBy: string | undefined, deadline: number): Promise<ObjectResult>;
  /**
   * For `batch: false`: the result of the job an earlier claim on the object names, if it loaded it;
   * else the claim version to swap when claiming it for its own job.
   */
  followClaim(item: LoneObject, deadline: number): Promise<ObjectResult | { version: string }>;
  /** For `batch: false`: claims the object for its one-object job; 'lost' when another claim won. */
  claimAlone(item: LoneObject, jobId: string, version: string): Promise<'won' | 'lost' | 'gone'>;
  /** Fails every object still waiting for a job (shutdown): none of them was claimed yet. */
  abort(reason: string): void;
}

export interface BatchLog {
  warn(fields: object, message: string): void;
}

export interface Member extends Waiting {
  item: BatchObject;
  table: string;
  /** The claim version the next swap expects. */
  version: string;
  deadline: number;
  /** A forced reload's job id prefix: it never joins another job, and goes again under its own id. */
  forced?: string;
  finish(outcome: ObjectResult | 'again' | Error): void;
}
