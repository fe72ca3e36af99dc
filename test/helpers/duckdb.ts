import { spawn } from 'node:child_process';
import { closeSession, openSession } from '../../src/warehouses/duckdb/session';

/** Runs a read-only query against a warehouse file, waiting (up to 10 s) while the receiver holds it. */
export async function queryDuckDb(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const session = await openSession(file, 10_000, true);
  try {
    const reader = await session.connection.runAndReadAll(sql);
    return reader.getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    closeSession(session);
  }
}
export interface LockHolder {
  pid: number;
  /** Resolves when the holder has let go and exited. */
  exited: Promise<void>;
  /** Ends the holder now. */
  release(): Promise<void>;
}

/**
 * Opens the file read-write in another process and keeps it open for `ms` (or until `release`).
 * Resolves once it is open.
 */
export function holdLock(file: string, ms: number): Promise<LockHolder> {
  const script = `
    const { DuckDBInstance } = require(${JSON.stringify(require.resolve('@duckdb/node-api'))});
    DuckDBInstance.create(${JSON.stringify(file)}).then((db) => {
      console.log('open');
      setTimeout(() => db.closeSync(), ${ms});
    });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('error', reject);
    child.stdout.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes('open')) return;
      resolve({
        pid: child.pid ?? 0,
        exited,
        release: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill();
          await exited;
        },
      });
    });
    void exited.then(() => reject(new Error('the lock holder exited before it opened the file')));
  });
}
