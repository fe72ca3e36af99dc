import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TransientError, errorMessage, firstLine } from '../../errors';
import { LEDGER_DDL } from './ledger';

export interface Session {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
}

/**
 * Runs work on the file one piece at a time, in order. The file is opened for the first piece and
 * closed once nothing has been queued for `idleMs`; `onRelease` then forgets what was learned of it,
 * since another process may change the file while it is closed.
 */
export function createSerialDb(
  file: string,
  idleMs: number,
  lockWaitMs: number,
  onRelease: () => void = () => undefined,
) {
  let session: Session | undefined;
  let tail: Promise<void> = Promise.resolve();
  let pending = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const release = () => {
    if (pending > 0 || !session) return;
    closeSession(session);
    session = undefined;
    onRelease();
  };
  const run = <T>(work: (c: DuckDBConnection) => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error(`DuckDB warehouse ${file} is closed`));
    pending += 1;
    clearTimeout(idleTimer);
    const result = tail.then(async () => {
      session ??= await openSession(file, lockWaitMs, false);
      return work(session.connection);
    });
    tail = result.then(settled, settled);
    return result;
  };
  const settled = () => {
    pending -= 1;
    if (pending === 0) idleTimer = setTimeout(release, idleMs).unref();
  };
  const close = async () => {
    closed = true;
    await tail;
    clearTimeout(idleTimer);
    release();
  };
  return { run, close };
}

/**
 * Opens the file, retrying while another process holds its lock; a writable session also creates
 * the ledger. Gives up with a TransientError when the lock is still held after `lockWaitMs`.
 */
export async function openSession(
  file: string,
  lockWaitMs: number,
  readOnly: boolean,
): Promise<Session> {
  if (!readOnly) await fs.mkdir(path.dirname(file), { recursive: true });
  const deadline = Date.now() + lockWaitMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    let instance: DuckDBInstance | undefined;
    try {
      instance = await DuckDBInstance.create(file, readOnly ? { access_mode: 'READ_ONLY' } : {});
      const connection = await instance.connect();
      if (!readOnly) await connection.run(LEDGER_DDL);
      return { instance, connection };
    } catch (error) {
      instance?.closeSync();
      const locked = /Could not set lock|Conflicting lock/i.test(errorMessage(error));
      if (locked && Date.now() + delay < deadline) {
        await new Promise((resolve) => setTimeout(resolve, delay));
        continue;
      }
      const message = `DuckDB file ${file} cannot be opened: ${firstLine(errorMessage(error))}`;
      if (locked || /^IO Error/.test(errorMessage(error)))
        throw new TransientError(message, { cause: error });
      throw new Error(message, { cause: error });
    }
  }
}

export function closeSession(session: Session): void {
  session.connection.closeSync();
  session.instance.closeSync();
}
