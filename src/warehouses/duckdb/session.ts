import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TransientError, errorMessage, firstLine } from '../../core/errors';
import { LEDGER_DDL } from './ledger';

export interface Session {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
}

export interface SerialDbOptions {
  /**
   * The file is closed once nothing has been queued for this long, or as soon as another process
   * waits for it meanwhile.
   */
  idleMs: number;
  /** How long to wait for another process to let go of the file. */
  lockWaitMs: number;
  /**
   * After holding the file this long without a break, it is closed between two pieces of work for
   * `gapMs` whenever another process waits for it (`gcs-bq-ingest tables`), so that it gets a turn
   * during sustained loads.
   */
  holdMs: number;
  gapMs: number;
  /** Called each time the file is opened: what was learned of it may have changed while it was closed. */
  onOpen?: () => void;
}

const INTERRUPT_REPEAT_MS = 20;
// How often an idle holder looks for a process waiting for the file.
const IDLE_CHECK_MS = 50;

/** What a piece of work learns of `abort`. */
export interface Stop {
  signal: AbortSignal;
  /**
   * Runs `commit` out of the interrupt's reach: an interrupted COMMIT may have made the transaction
   * durable already, and its load must then report what it wrote, not that it was stopped.
   */
  shielded<T>(commit: () => Promise<T>): Promise<T>;
}

export type Work<T> = (c: DuckDBConnection, stop: Stop) => Promise<T>;

/**
 * Runs work on the file one piece at a time, in order, opening it for the first piece and closing it
 * when idle. `abort` interrupts the piece in flight (it sees `signal` aborted) and fails the rest.
 */
export function createSerialDb(file: string, options: SerialDbOptions) {
  let session: Session | undefined;
  let openedAt = 0;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const stop = new AbortController();
  const { shield, committing } = shieldOf(stop.signal);

  const release = () => {
    if (!session) return;
    closeSession(session);
    session = undefined;
  };
  const connect = async (): Promise<DuckDBConnection> => {
    if (session && Date.now() - openedAt >= options.holdMs && (await someoneWaits(file))) {
      release();
      await new Promise((resolve) => setTimeout(resolve, options.gapMs));
    }
    if (!session) {
      session = await openSession(file, options.lockWaitMs, false, stop.signal);
      openedAt = Date.now();
      options.onOpen?.();
    }
    return session.connection;
  };
  const stopped = () => new TransientError(errorMessage(stop.signal.reason));
  const run = <T>(work: Work<T>): Promise<T> => {
    if (stop.signal.aborted) return Promise.reject(stopped());
    if (closed) return Promise.reject(new Error(`DuckDB warehouse ${file} is closed`));
    pending += 1;
    clearTimeout(idleTimer);
    const result = tail.then(async () => {
      if (stop.signal.aborted) throw stopped();
      const connection = await connect();
      return work(connection, shield);
    });
    tail = result.then(settled, settled);
    return result;
  };
  const settled = () => {
    pending -= 1;
    if (pending === 0) watchIdle(Date.now() + options.idleMs);
  };
  let idleSpell = 0;
  const watchIdle = (until: number, spell = ++idleSpell) => {
    idleTimer = setTimeout(
      () => {
        void (async () => {
          if (!session) return;
          const waited = Date.now() < until && (await someoneWaits(file));
          if (pending > 0 || spell !== idleSpell) return;
          if (waited || Date.now() >= until) release();
          else watchIdle(until, spell);
        })();
      },
      Math.max(0, Math.min(IDLE_CHECK_MS, until - Date.now())),
    ).unref();
  };
  const finish = async () => {
    await tail;
    clearTimeout(idleTimer);
    release();
  };
  const close = async () => {
    closed = true;
    await finish();
  };
  const abort = async (reason: string) => {
    if (!stop.signal.aborted) stop.abort(new TransientError(`DuckDB warehouse stopped: ${reason}`));
    await interrupting(() => {
      if (!committing()) session?.connection.interrupt();
    }, finish);
  };
  return { run, close, abort };
}

/** The Stop handed to work, and whether a COMMIT runs under its shield now. */
function shieldOf(signal: AbortSignal): { shield: Stop; committing: () => boolean } {
  let committing = false;
  const shield: Stop = {
    signal,
    async shielded(commit) {
      committing = true;
      try {
        return await commit();
      } finally {
        committing = false;
      }
    },
  };
  return { shield, committing: () => committing };
}

/**
 * Interrupts until `finish` resolves: an interrupt that comes before DuckDB starts executing a
 * statement is lost, so it is repeated until the work in flight has returned.
 */
async function interrupting(interrupt: () => void, finish: () => Promise<void>): Promise<void> {
  interrupt();
  const repeat = setInterval(interrupt, INTERRUPT_REPEAT_MS);
  try {
    await finish();
  } finally {
    clearInterval(repeat);
  }
}

/**
 * Opens the file, retrying while another process holds its lock (and telling it so); a writable
 * session also creates the ledger. Gives up with a FileBusyError when the lock is still held after
 * `lockWaitMs`.
 */
export async function openSession(
  file: string,
  lockWaitMs: number,
  readOnly: boolean,
  signal?: AbortSignal,
): Promise<Session> {
  if (!readOnly) await fs.mkdir(path.dirname(file), { recursive: true });
  const deadline = Date.now() + lockWaitMs;
  let waited = false;
  // Short polls: a holder under sustained load lets go only for a moment at a time.
  for (let delay = 10; ; delay = Math.min(delay * 2, 50)) {
    try {
      const session = await openOnce(file, readOnly);
      if (waited) await fs.rm(waitMarker(file), { force: true }).catch(() => undefined);
      return session;
    } catch (error) {
      signal?.throwIfAborted();
      const message = errorMessage(error);
      const locked = /Could not set lock|Conflicting lock/i.test(message);
      if (locked && Date.now() + delay < deadline) {
        waited = true;
        await sayWaiting(file);
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      if (locked) throw new FileBusyError(file, lockWaitMs, lockHolder(message), { cause: error });
      const problem = `DuckDB file ${file} cannot be opened: ${firstLine(message)}`;
      if (/^IO Error/.test(message)) throw new TransientError(problem, { cause: error });
      throw new Error(problem, { cause: error });
    }
  }
}

// A table's rows have no order, in BigQuery as here: DuckDB may then insert what parallel CSV readers
// produce as it comes, which made a 100 MB load about a quarter faster.
const WRITER = { preserve_insertion_order: 'false' };

async function openOnce(file: string, readOnly: boolean): Promise<Session> {
  let instance: DuckDBInstance | undefined;
  try {
    instance = await DuckDBInstance.create(file, readOnly ? { access_mode: 'READ_ONLY' } : WRITER);
    const connection = await instance.connect();
    if (!readOnly) await connection.run(LEDGER_DDL);
    return { instance, connection };
  } catch (error) {
    instance?.closeSync();
    throw error;
  }
}

// A process waiting for the file keeps `<file>.wait` fresh; the holder looks for it between two
// pieces of work, so that letting go costs nothing while nobody waits. A stale one is ignored.
const WAIT_FRESH_MS = 1000;

function waitMarker(file: string): string {
  return `${file}.wait`;
}

async function sayWaiting(file: string): Promise<void> {
  await fs.writeFile(waitMarker(file), '').catch(() => undefined); // only a hint
}

async function someoneWaits(file: string): Promise<boolean> {
  const stats = await fs.stat(waitMarker(file)).catch(() => undefined);
  return stats !== undefined && Date.now() - stats.mtimeMs < WAIT_FRESH_MS;
}

/** Another process held the file for longer than the wait. */
export class FileBusyError extends TransientError {
  constructor(
    readonly file: string,
    readonly waitedMs: number,
    /** What DuckDB says holds the lock: `/usr/bin/node (PID 1234)`, when it says. */
    readonly holder: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `DuckDB file ${file} is locked by ${holder ?? 'another process'}; gave up after ${waitedMs / 1000} s`,
      options,
    );
  }
}

function lockHolder(message: string): string | undefined {
  return /Conflicting lock is held in (.+? \(PID \d+\))/.exec(message)?.[1];
}

export function closeSession(session: Session): void {
  session.connection.closeSync();
  session.instance.closeSync();
}
