import { promises as fs } from 'node:fs';
import { openForWriting, canSeeWriters } from './writers';

/** Quiet time after which a file nobody has open for writing counts as finalized. */
export const STABLE_MS_WITH_WRITERS = 200;
/** Without /proc, writers cannot be seen: only a longer quiet time says a file is complete. */
export const STABLE_MS_WITHOUT_WRITERS = 2000;
const TICK_MS = 50;

export interface FinalityInput {
  now: number;
  /** The file's last modification, ms since the epoch. */
  mtimeMs: number;
  /** Since when size and mtime have been seen unchanged. */
  unchangedSince: number;
  /** Whether some process has the file open for writing; undefined when that cannot be known. */
  writing: boolean | undefined;
  stableMs: number;
}

/**
 * Cloud Storage finalizes an object once, complete; a local file counts as finalized when nobody
 * has it open for writing and it has not changed for `stableMs`. A file renamed into place carries
 * its old mtime and counts at once.
 */
export function isFinal(input: FinalityInput): boolean {
  if (input.writing === true) return false;
  const quietFor = input.now - Math.min(input.mtimeMs, input.unchangedSince);
  return quietFor >= input.stableMs;
}

interface Tracked {
  mtimeNs: bigint;
  size: bigint;
  unchangedSince: number;
  done: Promise<boolean>;
  resolve: (final: boolean) => void;
}

export interface FinalityGate {
  /** Resolves true once the file counts as finalized, false if it went away or the gate closed. */
  whenFinal(file: string): Promise<boolean>;
  /** Files still waiting. */
  waiting(): string[];
  close(): void;
}

/** Watches files until they count as finalized, checking all waiting files together each tick. */
export function createFinalityGate(
  options: {
    stableMs?: number;
    writers?: (files: ReadonlySet<string>) => Promise<ReadonlySet<string>>;
  } = {},
): FinalityGate {
  const writers = options.writers ?? (canSeeWriters() ? openForWriting : undefined);
  const stableMs =
    options.stableMs ?? (writers ? STABLE_MS_WITH_WRITERS : STABLE_MS_WITHOUT_WRITERS);
  const tracked = new Map<string, Tracked>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const settle = (file: string, final: boolean) => {
    tracked.get(file)?.resolve(final);
    tracked.delete(file);
  };

  const tick = async () => {
    const now = Date.now();
    const quiet = new Set<string>();
    for (const [file, entry] of tracked) {
      const stats = await fs.lstat(file, { bigint: true }).catch(() => undefined);
      if (!stats?.isFile()) {
        settle(file, false);
        continue;
      }
      if (stats.mtimeNs !== entry.mtimeNs || stats.size !== entry.size) {
        Object.assign(entry, { mtimeNs: stats.mtimeNs, size: stats.size, unchangedSince: now });
      }
      const mtimeMs = Number(stats.mtimeNs / 1_000_000n);
      const input = { now, mtimeMs, unchangedSince: entry.unchangedSince, stableMs };
      if (isFinal({ ...input, writing: false })) quiet.add(file);
    }
    // Only files that look complete are checked for writers, all in one pass.
    const open = writers && quiet.size > 0 ? await writers(quiet) : new Set<string>();
    for (const file of quiet) {
      if (closed) return;
      if (!open.has(file)) settle(file, true);
    }
  };

  const schedule = () => {
    if (timer || closed || tracked.size === 0) return;
    timer = setTimeout(() => {
      void tick().finally(() => {
        timer = undefined;
        schedule();
      });
    }, TICK_MS);
  };

  return {
    whenFinal(file) {
      if (closed) return Promise.resolve(false);
      const known = tracked.get(file);
      if (known) return known.done;
      let resolve: (final: boolean) => void = () => undefined;
      const done = new Promise<boolean>((r) => (resolve = r));
      tracked.set(file, { mtimeNs: -1n, size: -1n, unchangedSince: Date.now(), done, resolve });
      schedule();
      return done;
    },
    waiting: () => [...tracked.keys()],
    close() {
      closed = true;
      clearTimeout(timer);
      for (const file of [...tracked.keys()]) settle(file, false);
    },
  };
}
