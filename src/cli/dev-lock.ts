import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * One `dev` per LOCAL_DATA_DIR. Two would share the warehouse file, which DuckDB lets one process
 * open at a time: each waits for the other between loads, and events time out and are redelivered
 * with growing delays. The second is refused at start instead.
 */
export function claimDataDir(dataDir: string, url: string): () => void {
  const lock = path.join(dataDir, '.dev.lock');
  fs.mkdirSync(dataDir, { recursive: true });
  for (let attempt = 0; ; attempt += 1) {
    try {
      fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, url }), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const holder = readHolder(lock);
    if (holder && isRunning(holder.pid)) {
      throw new Error(
        `another gcs-bq-ingest dev (pid ${holder.pid}, ${holder.url}) already uses ${dataDir}: use that one, stop it, or give this one its own LOCAL_DATA_DIR`,
      );
    }
    fs.rmSync(lock, { force: true }); // left by a dev that did not stop cleanly
  }
}

function readHolder(lock: string): { pid: number; url: string } | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid?: unknown; url?: unknown };
    return typeof parsed.pid === 'number'
      ? { pid: parsed.pid, url: String(parsed.url) }
      : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
