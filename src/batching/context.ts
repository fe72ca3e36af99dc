import type { Batcher, Pace } from './batcher';
import { errorMessage } from '../core/errors';
import type { JobWatch } from './job-watch';
import type { ObjectServices } from '../objects/services';
import type { BatchLog, BatchObject, Member } from './types';

/** What every part of one batcher shares: its services, queue, and the jobs in flight or followed. */
export interface BatchContext {
  services: ObjectServices;
  log: BatchLog;
  batcher: Batcher<Member>;
  /** The jobs this instance is running, by id. */
  inFlight: Map<string, Promise<void>>;
  /** The jobs that claims made elsewhere (another instance, an earlier delivery) name. */
  jobs: JobWatch;
  /** Objects per destination between their arrival and the queue (their claim and head being read). */
  arriving: Map<string, number>;
  paceOf(item: BatchObject): Pace;
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorMessage(error));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
