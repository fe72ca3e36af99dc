import { BigQuery } from '@google-cloud/bigquery';
import { Storage } from '@google-cloud/storage';
import { setMaxListeners } from 'node:events';
import { withTimeout } from '../../core/timeout';
import type { LoadJob } from '../warehouse';
import { DEFAULT_STAGING_PREFIX } from './load-config';

/** Where a job runs and how long it may be awaited. */
export type Where = Pick<LoadJob, 'location' | 'deadline'>;

export interface BigQueryWarehouseOptions {
  /** A configured client; default `new BigQuery({projectId: project, location})`. */
  bigquery?: BigQuery;
  /** The project jobs run in, and the destination project when a route names none. */
  project?: string;
  /** The client's default location; each load job names its own. */
  location?: string;
  /** Longest time between jobs.get calls while a job runs (the first comes after 150 ms); default 1 s. */
  pollIntervalMs?: number;
  /** First pause before a transiently failed job is retried under a new id; doubles, at most 32 s. */
  retryDelayMs?: number;
  /** Attempts per job id (`J`, `J_2`, … `J_<n>`); default 5. */
  maxAttempts?: number;
  /** Longest wait for one API call (never past the job's deadline, but at least 1 s); default 60 s. */
  requestTimeoutMs?: number;
  /** Reads `.gz` sources to check them before a load; default `new Storage()` (honours STORAGE_EMULATOR_HOST). */
  storage?: Storage;
  /** Where a source BigQuery would misread is copied for its job (source-uris.ts); the quarantine prefix. */
  stagingPrefix?: string;
}

/*
 * The client's own `timeout` does nothing in @google-cloud/bigquery 8: its teeny-request 10 hands it to
 * node-fetch 3, which dropped that option. So every call is raced against a timer here; a call that
 * lands after we gave up is harmless, since a redelivery re-inserts the same job id and gets a 409.
 */
const REQUEST_TIMEOUT_MS = 60_000;
const MIN_REQUEST_TIMEOUT_MS = 1000;

/** What every part of one BigQuery Warehouse shares: its clients, settings, and the stop signal. */
export interface BigQueryContext {
  client: BigQuery;
  /** The client substitutes its project for this token when it sends a request. */
  defaultProject: string;
  stagingPrefix: string;
  pollIntervalMs: number;
  retryDelayMs: number;
  maxAttempts: number;
  stopping: AbortController;
  storageClient: () => Storage;
  /** The call raced against the request timeout (never past `deadline`, at least 1 s) and the stop. */
  call: <T>(work: Promise<T>, what: string, deadline?: number) => Promise<T>;
  /** Waits `ms`, or rejects once stopped. */
  pause: (ms: number) => Promise<void>;
  /** Runs `work` after every earlier work under the same key has ended (this instance only). */
  serialize: <T>(key: string, work: () => Promise<T>) => Promise<T>;
}

export function createContext(options: BigQueryWarehouseOptions): BigQueryContext {
  const client = options.bigquery ?? createClient(options);
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  let storage = options.storage;
  // abort() stops every wait at once; a job already inserted runs on in BigQuery, and the redelivery
  // finds it under the same id.
  const stopping = new AbortController();
  // Every wait in flight listens to it: as many as there are concurrent loads.
  setMaxListeners(0, stopping.signal);
  const queues = new Map<string, Promise<unknown>>();
  return {
    client,
    defaultProject: options.project ?? client.projectId,
    stagingPrefix: options.stagingPrefix ?? DEFAULT_STAGING_PREFIX,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    retryDelayMs: options.retryDelayMs ?? 1000,
    maxAttempts: options.maxAttempts ?? 5,
    stopping,
    storageClient: () =>
      (storage ??= new Storage(options.project ? { projectId: options.project } : {})),
    call: <T>(work: Promise<T>, what: string, deadline = Infinity): Promise<T> => {
      const ms = Math.min(
        requestTimeoutMs,
        Math.max(deadline - Date.now(), MIN_REQUEST_TIMEOUT_MS),
      );
      const timeout = `${what}: no answer from BigQuery within ${ms} ms`;
      return unlessStopped(withTimeout(work, ms, timeout), stopping.signal);
    },
    pause: (ms: number) => unlessStopped(sleep(ms), stopping.signal),
    serialize: <T>(key: string, work: () => Promise<T>): Promise<T> => {
      const before = queues.get(key) ?? Promise.resolve();
      const mine = before.catch(() => undefined).then(work);
      const tail = mine.catch(() => undefined);
      queues.set(key, tail);
      void tail.then(() => queues.get(key) === tail && queues.delete(key));
      return mine;
    },
  };
}

function createClient(options: BigQueryWarehouseOptions): BigQuery {
  return new BigQuery({
    ...(options.project ? { projectId: options.project } : {}),
    ...(options.location ? { location: options.location } : {}),
  });
}

/** The work's result, or the abort reason as soon as `signal` aborts. */
function unlessStopped<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(signal.reason as Error);
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
