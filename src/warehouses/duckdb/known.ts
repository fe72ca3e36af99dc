import { statSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { TableColumn } from '../../schema/columns';
import { gsUri, type StoredObject } from '../../stores/store';
import {
  tableId,
  type ClaimedLoadResult,
  type Destination,
  type LoadJob,
  type LoadResult,
} from '../warehouse';
import { bigQueryColumns } from './catalog';
import { targetOf } from './sql';

const COMPLETED_CACHE_SIZE = 10_000;

/** A job this process saw completed: its rows, and what a lineage `append` replaced per source. */
export interface Completed {
  rows: number;
  replacedRows?: number[];
}

/** Which file is at `file` now: its device and inode, or 'none'. */
function fileIdentity(file: string): string {
  const stat = statSync(file, { throwIfNoEntry: false });
  return stat ? `${stat.dev}:${stat.ino}` : 'none';
}

type Run = <T>(work: (c: DuckDBConnection) => Promise<T>) => Promise<T>;

/**
 * What this process learned of the warehouse file: the jobs it saw completed, the claims of the
 * objects they loaded, and the tables' columns. Ledger rows are never removed from a file and job ids
 * are deterministic, so a job seen completed stays completed: what was learned holds until the file
 * itself is another one (deleted and created again), which `check` looks at before every use.
 */
export function createKnown(file: string, run: Run) {
  const completed = new Map<string, Completed>();
  // The claims of the objects those jobs loaded: a redelivery of one needs no turn on the file.
  const loadedClaims = new Map<string, { jobId: string; at: number }>();
  // Columns per table for head checks; a load may change them, so it drops its table's entry.
  const columns = new Map<string, Promise<TableColumn[] | undefined>>();
  let knownFile: string | undefined;
  const check = (): void => {
    const identity = fileIdentity(file);
    if (identity === knownFile) return;
    knownFile = identity;
    completed.clear();
    loadedClaims.clear();
    columns.clear();
  };
  const claimKey = (object: StoredObject, destination: string) =>
    `${gsUri(object)}#${object.generation}>${destination}`;
  const complete = (jobId: string, done: Completed): void => {
    completed.set(jobId, done);
    if (completed.size > COMPLETED_CACHE_SIZE)
      completed.delete(completed.keys().next().value as string);
  };
  return {
    check,
    completed: (jobId: string) => completed.get(jobId),
    complete,
    /** Keeps what a load's result says of its job and, for an `append`, of its sources' claims. */
    remember(result: LoadResult, job?: LoadJob): LoadResult {
      if (result.outcome !== 'loaded' && result.outcome !== 'duplicate') return result;
      const replaced = result.outcome === 'loaded' ? result.replacedRows : undefined;
      complete(result.jobId, {
        rows: result.rows ?? 0,
        ...(replaced && { replacedRows: replaced }),
      });
      if (job?.write === 'append') {
        const destination = tableId(job.destination);
        const claim = { jobId: result.jobId, at: Date.now() };
        for (const source of job.sources) loadedClaims.set(claimKey(source, destination), claim);
        while (loadedClaims.size > COMPLETED_CACHE_SIZE)
          loadedClaims.delete(loadedClaims.keys().next().value as string);
      }
      return result;
    },
    loadedClaim: (object: StoredObject, destination: string) =>
      loadedClaims.get(claimKey(object, destination)),
    rememberClaim(object: StoredObject, destination: string, claim: { jobId: string; at: number }) {
      if (completed.has(claim.jobId)) loadedClaims.set(claimKey(object, destination), claim);
    },
    /** The table's columns, read once per table until a load changes them (or `fresh`). */
    tableColumns(destination: Destination, fresh = false) {
      const key = tableId(destination);
      check();
      if (fresh || !columns.has(key)) {
        const read = run((c) => bigQueryColumns(c, targetOf({ destination })));
        columns.set(key, read);
        read.catch(() => columns.delete(key));
      }
      return columns.get(key) as Promise<TableColumn[] | undefined>;
    },
    /** A load changes a table's columns when it creates the table or reports schema changes. */
    loaded<T extends ClaimedLoadResult>(job: LoadJob, result: T): T {
      const key = tableId(job.destination);
      const cached = columns.get(key);
      if (result.outcome === 'loaded' && result.schemaChanges?.length) columns.delete(key);
      else
        void cached?.then((known) => {
          if (!known && columns.get(key) === cached) columns.delete(key);
        });
      return result;
    },
  };
}

export type Known = ReturnType<typeof createKnown>;
